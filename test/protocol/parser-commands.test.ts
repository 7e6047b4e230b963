import { describe, expect, it } from 'vitest';
import { CommandParser } from '../../src/protocol/parser.js';
import type { Command, ParserEvent } from '../../src/protocol/ast.js';
import { parseDateTime } from '../../src/protocol/commands.js';

function run(input: string | Buffer): ParserEvent[] {
  const p = new CommandParser();
  p.push(typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
  const out: ParserEvent[] = [];
  for (let e = p.next(); e; e = p.next()) out.push(e);
  return out;
}

/** The one command a complete input yields (continuation events are skipped). */
function cmd(input: string): Command {
  const evs = run(input.endsWith('\n') ? input : `${input}\r\n`).filter((e) => e.kind !== 'continue');
  expect(evs).toHaveLength(1);
  const e = evs[0]!;
  if (e.kind !== 'command') throw new Error(`expected a command, got ${JSON.stringify(e)}`);
  return e.command;
}

/** The error a complete input yields. */
function err(input: string): Extract<ParserEvent, { kind: 'error' }> {
  const evs = run(input.endsWith('\n') ? input : `${input}\r\n`).filter((e) => e.kind !== 'continue');
  expect(evs).toHaveLength(1);
  const e = evs[0]!;
  if (e.kind !== 'error') throw new Error(`expected an error, got ${JSON.stringify(e)}`);
  expect(e.fatal).toBe(false);
  return e;
}

describe('commands without arguments', () => {
  for (const name of ['CAPABILITY', 'NOOP', 'LOGOUT', 'STARTTLS', 'IDLE', 'CHECK', 'CLOSE', 'UNSELECT', 'NAMESPACE', 'EXPUNGE']) {
    it(name, () => {
      const c = cmd(`t1 ${name.toLowerCase()}`);
      expect(c.tag).toBe('t1');
      expect(c.name).toBe(name);
    });
  }

  it('rejects extra arguments and names the command', () => {
    const e = err('t1 NOOP extra');
    expect(e.tag).toBe('t1');
    expect(e.name).toBe('NOOP');
    expect(e.message).toMatch(/extra arguments to NOOP/);
  });

  it('rejects a trailing space', () => {
    expect(err('t1 NOOP ').message).toMatch(/trailing space/);
  });

  it('plain EXPUNGE has uid false and no set', () => {
    expect(cmd('a EXPUNGE')).toEqual({ tag: 'a', name: 'EXPUNGE', uid: false });
  });
});

describe('tag and command name', () => {
  it('unknown command is a non-fatal error with the tag', () => {
    const e = err('x9 FROBNICATE 1 2');
    expect(e).toMatchObject({ tag: 'x9', message: 'Unknown command', fatal: false });
  });

  it('invalid tag reports tag *', () => {
    expect(err('+abc NOOP').tag).toBe('*');
    expect(err('* NOOP').tag).toBe('*');
    expect(err('a(b NOOP').tag).toBe('*');
  });

  it('missing command name', () => {
    expect(err('abc').message).toMatch(/Missing argument: command name/);
  });

  it('tags may hold ] and other astring characters', () => {
    expect(cmd('a]1.x NOOP').tag).toBe('a]1.x');
  });

  it('unknown UID command', () => {
    const e = err('a UID LOGIN x y');
    expect(e.message).toMatch(/Unknown UID command/);
  });
});

describe('LOGIN', () => {
  it('atoms, quoted strings and literals', () => {
    expect(cmd('a LOGIN joe secret')).toEqual({ tag: 'a', name: 'LOGIN', user: 'joe', password: 'secret' });
    expect(cmd('a LOGIN "joe smith" "p\\"w\\\\d"')).toMatchObject({ user: 'joe smith', password: 'p"w\\d' });
    expect(cmd('a LOGIN {3}\r\njoe {6+}\r\nsecret\r\n')).toMatchObject({ user: 'joe', password: 'secret' });
  });

  it('UTF-8 in quoted strings and in atoms', () => {
    expect(cmd('a LOGIN "jörg" pässword')).toMatchObject({ user: 'jörg', password: 'pässword' });
  });

  it('says which argument is missing', () => {
    expect(err('a LOGIN joe').message).toBe('Missing argument: password');
    expect(err('a LOGIN').message).toBe('Missing argument: user name');
  });

  it('refuses a binary literal', () => {
    const evs = run('a LOGIN ~{3}\r\n');
    expect(evs).toHaveLength(1);
    expect(evs[0]).toMatchObject({ kind: 'error', tag: 'a', message: expect.stringMatching(/Binary literal/) });
  });

  it('refuses bad escapes and unterminated strings', () => {
    expect(err('a LOGIN "a\\b" c').message).toMatch(/escape/);
    expect(err('a LOGIN "abc').message).toMatch(/Unterminated/);
  });
});

describe('AUTHENTICATE', () => {
  it('mechanism only', () => {
    expect(cmd('a authenticate plain')).toEqual({ tag: 'a', name: 'AUTHENTICATE', mechanism: 'PLAIN' });
  });
  it('SASL-IR initial response and =', () => {
    expect(cmd('a AUTHENTICATE PLAIN AGpvZQBzZWNyZXQ=')).toMatchObject({ initialResponse: 'AGpvZQBzZWNyZXQ=' });
    expect(cmd('a AUTHENTICATE EXTERNAL =')).toMatchObject({ initialResponse: '=' });
  });
  it('rejects non-base64', () => {
    expect(err('a AUTHENTICATE PLAIN ab=cd').message).toMatch(/base64/);
  });
});

describe('ENABLE, ID, COMPRESS, NAMESPACE', () => {
  it('ENABLE with several capabilities', () => {
    expect(cmd('a ENABLE condstore QRESYNC UTF8=ACCEPT')).toEqual({
      tag: 'a',
      name: 'ENABLE',
      capabilities: ['CONDSTORE', 'QRESYNC', 'UTF8=ACCEPT'],
    });
    expect(err('a ENABLE').message).toBe('Missing argument: capability');
  });

  it('ID with parameters and NIL', () => {
    expect(cmd('a ID ("name" "sodr" "version" NIL)')).toEqual({
      tag: 'a',
      name: 'ID',
      params: [
        ['name', 'sodr'],
        ['version', null],
      ],
    });
    expect(cmd('a ID NIL')).toMatchObject({ params: null });
    expect(cmd('a ID ()')).toMatchObject({ params: [] });
    expect(err('a ID ("name")').message).toMatch(/ID field value/);
  });

  it('COMPRESS DEFLATE', () => {
    expect(cmd('a COMPRESS deflate')).toEqual({ tag: 'a', name: 'COMPRESS', mechanism: 'DEFLATE' });
  });
});

describe('SELECT / EXAMINE', () => {
  it('plain and CONDSTORE', () => {
    expect(cmd('a SELECT INBOX')).toEqual({ tag: 'a', name: 'SELECT', mailbox: 'INBOX', condstore: false });
    expect(cmd('a EXAMINE "Sent Items" (CONDSTORE)')).toEqual({ tag: 'a', name: 'EXAMINE', mailbox: 'Sent Items', condstore: true });
  });

  it('QRESYNC with known UIDs and sequence match data', () => {
    const c = cmd('A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3 41,43:45)))');
    expect(c).toMatchObject({
      name: 'SELECT',
      qresync: {
        uidValidity: 67890007,
        modSeq: 20050715194045000n,
        knownUids: { kind: 'ranges', ranges: [{ start: 41, end: 41 }, { start: 43, end: 211 }, { start: 214, end: 541 }] },
        seqMatch: {
          seqs: { kind: 'ranges', ranges: [{ start: 1, end: 3 }] },
          uids: { kind: 'ranges', ranges: [{ start: 41, end: 41 }, { start: 43, end: 45 }] },
        },
      },
    });
  });

  it('QRESYNC minimal and with only sequence match data', () => {
    expect(cmd('a SELECT INBOX (QRESYNC (1 2))')).toMatchObject({ qresync: { uidValidity: 1, modSeq: 2n } });
    const c = cmd('a SELECT INBOX (QRESYNC (1 2 (1 5)) CONDSTORE)');
    expect(c).toMatchObject({ condstore: true, qresync: { seqMatch: { seqs: { kind: 'ranges' } } } });
    if (c.name !== 'SELECT') throw new Error('not SELECT');
    expect(c.qresync?.knownUids).toBeUndefined();
  });

  it('rejects unknown parameters and * in known UIDs', () => {
    expect(err('a SELECT INBOX (FOO)').message).toMatch(/Unknown SELECT parameter/);
    expect(err('a SELECT INBOX (QRESYNC (1 2 1:*))').message).toMatch(/\* not allowed/);
    expect(err('a SELECT INBOX (QRESYNC (0 2))').message).toMatch(/zero/);
    expect(err('a SELECT').message).toBe('Missing argument: mailbox name');
  });
});

describe('mailbox commands', () => {
  it('CREATE with and without USE', () => {
    expect(cmd('a CREATE foo/bar')).toEqual({ tag: 'a', name: 'CREATE', mailbox: 'foo/bar' });
    expect(cmd('a CREATE MyDrafts (USE (\\Drafts \\Sent))')).toEqual({
      tag: 'a',
      name: 'CREATE',
      mailbox: 'MyDrafts',
      specialUse: ['\\Drafts', '\\Sent'],
    });
    expect(err('a CREATE x (USE (Drafts))').message).toMatch(/special-use/);
    expect(err('a CREATE x (FOO)').message).toMatch(/Unknown CREATE parameter/);
  });

  it('DELETE, SUBSCRIBE, UNSUBSCRIBE, RENAME', () => {
    expect(cmd('a DELETE "a b"')).toEqual({ tag: 'a', name: 'DELETE', mailbox: 'a b' });
    expect(cmd('a subscribe x')).toEqual({ tag: 'a', name: 'SUBSCRIBE', mailbox: 'x' });
    expect(cmd('a UNSUBSCRIBE {1}\r\nx\r\n')).toEqual({ tag: 'a', name: 'UNSUBSCRIBE', mailbox: 'x' });
    expect(cmd('a RENAME old "new one"')).toEqual({ tag: 'a', name: 'RENAME', from: 'old', to: 'new one' });
    expect(err('a RENAME old').message).toBe('Missing argument: new mailbox name');
  });

  it('mailbox names keep the wire form (modified UTF-7)', () => {
    expect(cmd('a SELECT "&AOQ-bc"')).toMatchObject({ mailbox: '&AOQ-bc' });
  });

  it('STATUS with every item', () => {
    expect(cmd('a STATUS blurdybloop (UIDNEXT MESSAGES size appendlimit MAILBOXID DELETED HIGHESTMODSEQ UNSEEN RECENT UIDVALIDITY)')).toEqual({
      tag: 'a',
      name: 'STATUS',
      mailbox: 'blurdybloop',
      items: ['UIDNEXT', 'MESSAGES', 'SIZE', 'APPENDLIMIT', 'MAILBOXID', 'DELETED', 'HIGHESTMODSEQ', 'UNSEEN', 'RECENT', 'UIDVALIDITY'],
    });
    expect(err('a STATUS x (FOO)').message).toMatch(/Unknown status item/);
    expect(err('a STATUS x ()').message).toMatch(/Empty status items/);
    expect(err('a STATUS x').message).toBe('Missing argument: status items');
  });

  it('LSUB', () => {
    expect(cmd('a LSUB "#news." "comp.mail.*"')).toEqual({ tag: 'a', name: 'LSUB', reference: '#news.', pattern: 'comp.mail.*' });
  });
});

describe('LIST', () => {
  it('basic LIST is not extended', () => {
    expect(cmd('a LIST "" *')).toEqual({
      tag: 'a',
      name: 'LIST',
      reference: '',
      patterns: ['*'],
      selection: [],
      returnSubscribed: false,
      returnChildren: false,
      returnSpecialUse: false,
      extended: false,
    });
    expect(cmd('a LIST ~/Mail/ %')).toMatchObject({ reference: '~/Mail/', patterns: ['%'] });
    expect(cmd('a LIST "" foo/%/bar*')).toMatchObject({ patterns: ['foo/%/bar*'] });
  });

  it('selection options, several patterns and RETURN', () => {
    expect(cmd('a LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" "Drafts/%") RETURN (CHILDREN SPECIAL-USE SUBSCRIBED STATUS (MESSAGES UNSEEN))')).toEqual({
      tag: 'a',
      name: 'LIST',
      reference: '',
      patterns: ['INBOX', 'Drafts/%'],
      selection: ['SUBSCRIBED', 'RECURSIVEMATCH'],
      returnSubscribed: true,
      returnChildren: true,
      returnSpecialUse: true,
      returnStatus: ['MESSAGES', 'UNSEEN'],
      extended: true,
    });
  });

  it('SPECIAL-USE and REMOTE selection, empty lists', () => {
    expect(cmd('a LIST (SPECIAL-USE) "" *')).toMatchObject({ selection: ['SPECIAL-USE'], extended: true });
    expect(cmd('a LIST () "" * RETURN ()')).toMatchObject({ selection: [], extended: true });
    expect(cmd('a LIST "" % RETURN (STATUS (SIZE))')).toMatchObject({ returnStatus: ['SIZE'], extended: true });
  });

  it('errors', () => {
    expect(err('a LIST (RECURSIVEMATCH) "" *').message).toMatch(/RECURSIVEMATCH/);
    expect(err('a LIST (FOO) "" *').message).toMatch(/Unknown LIST selection option/);
    expect(err('a LIST "" * RETURN (FOO)').message).toMatch(/Unknown LIST return option/);
    expect(err('a LIST "" * FOO').message).toMatch(/Expected RETURN/);
    expect(err('a LIST ""').message).toBe('Missing argument: mailbox pattern');
  });
});

describe('APPEND', () => {
  const msg = 'Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nSubject: hi\r\n\r\nHello\r\n';
  const n = Buffer.byteLength(msg);

  it('with flags and date', () => {
    const evs = run(`A003 APPEND saved-messages (\\Seen) " 7-Feb-1994 21:52:25 -0800" {${n}}\r\n${msg}\r\n`);
    expect(evs.map((e) => e.kind)).toEqual(['continue', 'command']);
    expect(evs[0]).toEqual({ kind: 'continue', tag: 'A003', name: 'APPEND', size: n });
    const c = (evs[1] as Extract<ParserEvent, { kind: 'command' }>).command;
    expect(c).toEqual({
      tag: 'A003',
      name: 'APPEND',
      mailbox: 'saved-messages',
      messages: [{ flags: ['\\Seen'], date: new Date('1994-02-08T05:52:25Z'), data: Buffer.from(msg), binary: false, utf8: false }],
    });
  });

  it('without flags or date; day without leading space', () => {
    expect(cmd(`a APPEND INBOX {${n}+}\r\n${msg}\r\n`)).toMatchObject({ messages: [{ flags: [], data: Buffer.from(msg) }] });
    const c = cmd(`a APPEND INBOX "7-Feb-1994 21:52:25 +0100" {1+}\r\nx\r\n`);
    if (c.name !== 'APPEND') throw new Error('not APPEND');
    expect(c.messages[0]!.date).toEqual(new Date('1994-02-07T20:52:25Z'));
  });

  it('MULTIAPPEND: several messages, mixed literal kinds', () => {
    const c = cmd('a APPEND INBOX (\\Seen) {3}\r\none ~{4+}\r\nt\0wo UTF8 (~{5}\r\nthree)\r\n');
    expect(c).toEqual({
      tag: 'a',
      name: 'APPEND',
      mailbox: 'INBOX',
      messages: [
        { flags: ['\\Seen'], data: Buffer.from('one'), binary: false, utf8: false },
        { flags: [], data: Buffer.from('t\0wo'), binary: true, utf8: false },
        { flags: [], data: Buffer.from('three'), binary: true, utf8: true },
      ],
    });
  });

  it('rejects invalid dates before asking for the literal', () => {
    for (const d of ['30-Feb-1994 10:00:00 +0000', '7-Foo-1994 10:00:00 +0000', '7-Feb-1994 24:00:00 +0000', '7-Feb-1994 10:00:00 0000', '7-Feb-94 10:00:00 +0000']) {
      const evs = run(`a APPEND INBOX "${d}" {3}\r\n`);
      expect(evs).toHaveLength(1);
      expect(evs[0]).toMatchObject({ kind: 'error', tag: 'a', message: expect.stringMatching(/Invalid date-time/) });
    }
  });

  it('date-time forms and validation', () => {
    expect(parseDateTime('17-Jul-1996 02:44:25 -0700')).toEqual(new Date('1996-07-17T09:44:25Z'));
    expect(parseDateTime(' 7-jul-1996 02:44:25 +0000')).toEqual(new Date('1996-07-07T02:44:25Z'));
    expect(parseDateTime('07-JUL-1996 02:44:25 +0130')).toEqual(new Date('1996-07-07T01:14:25Z'));
    expect(parseDateTime('29-Feb-2024 23:59:59 +0000')).toEqual(new Date('2024-02-29T23:59:59Z'));
    expect(parseDateTime('01-Jan-0050 00:00:00 +0000')?.getUTCFullYear()).toBe(50);
    for (const bad of ['29-Feb-2023 10:00:00 +0000', '1-Jan-2000 10:00:60 +0000', '1-Jan-2000 10:60:00 +0000', '1-Jan-2000 10:00:00 +0060', '1-Jan-2000 10:00:00 +00000', '1-Jan-2000 10:00 +0000', '1-Jan-2000  10:00:00 +0000', '1-Jan-2000T10:00:00 +0000', '', '123-Jan-2000 10:00:00 +0000']) {
      expect(parseDateTime(bad), bad).toBeNull();
    }
  });

  it('needs a literal', () => {
    expect(err('a APPEND INBOX').message).toBe('Missing argument: message literal');
    expect(err('a APPEND INBOX (\\Seen)').message).toBe('Missing argument: message literal');
    expect(err('a APPEND INBOX "hello"').message).toMatch(/Invalid date-time/);
    expect(err('a APPEND INBOX hello').message).toBe('Expected message literal');
    expect(err('a APPEND INBOX CATENATE (TEXT {1+}\r\nx)').message).toMatch(/CATENATE/);
  });

  it('a zero-length literal', () => {
    expect(cmd('a APPEND INBOX {0}\r\n\r\n')).toMatchObject({ messages: [{ data: Buffer.alloc(0) }] });
  });
});

describe('UID commands, COPY, MOVE, EXPUNGE', () => {
  it('COPY and MOVE', () => {
    expect(cmd('a COPY 2:4 MEETING')).toEqual({
      tag: 'a',
      name: 'COPY',
      uid: false,
      sequence: { kind: 'ranges', ranges: [{ start: 2, end: 4 }] },
      mailbox: 'MEETING',
    });
    expect(cmd('a uid move 42:* "Junk"')).toMatchObject({ name: 'MOVE', uid: true, sequence: { ranges: [{ start: 42, end: '*' }] }, mailbox: 'Junk' });
    expect(cmd('a MOVE $ Trash')).toMatchObject({ sequence: { kind: 'saved' } });
  });

  it('UID EXPUNGE needs a set', () => {
    expect(cmd('a UID EXPUNGE 3000:3002')).toEqual({
      tag: 'a',
      name: 'EXPUNGE',
      uid: true,
      sequence: { kind: 'ranges', ranges: [{ start: 3000, end: 3002 }] },
    });
    expect(err('a UID EXPUNGE').message).toBe('Missing argument: UID set');
  });

  it('bad sequence sets', () => {
    for (const s of ['0', '1:0', '1,,2', '1:', 'x', '4294967296', '1:3x', '$,1']) {
      expect(err(`a COPY ${s} INBOX`).tag).toBe('a');
    }
  });
});

describe('STORE', () => {
  it('all actions', () => {
    expect(cmd('a STORE 2:4 +FLAGS (\\Deleted)')).toEqual({
      tag: 'a',
      name: 'STORE',
      uid: false,
      sequence: { kind: 'ranges', ranges: [{ start: 2, end: 4 }] },
      action: 'add',
      silent: false,
      flags: ['\\Deleted'],
    });
    expect(cmd('a STORE 1 -flags.silent \\Seen $Forwarded')).toMatchObject({ action: 'remove', silent: true, flags: ['\\Seen', '$Forwarded'] });
    expect(cmd('a UID STORE 1 FLAGS ()')).toMatchObject({ uid: true, action: 'set', silent: false, flags: [] });
  });

  it('UNCHANGEDSINCE', () => {
    expect(cmd('a STORE 1:* (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)')).toMatchObject({
      unchangedSince: 320162338n,
      silent: true,
    });
    expect(cmd('a STORE 1 (UNCHANGEDSINCE 0) FLAGS ()')).toMatchObject({ unchangedSince: 0n });
    expect(err('a STORE 1 (UNCHANGEDSINCE 99999999999999999999) FLAGS ()').message).toMatch(/out of range|Invalid number/);
    expect(err('a STORE 1 (FOO 1) FLAGS ()').message).toMatch(/Unknown STORE modifier/);
  });

  it('errors', () => {
    expect(err('a STORE 1 FLAG (\\Seen)').message).toMatch(/Invalid store action/);
    expect(err('a STORE 1 +FLAGS').message).toBe('Missing argument: flags');
    expect(err('a STORE 1 +FLAGS (\\*)').message).toMatch(/\\\*/);
  });
});

describe('SORT and THREAD', () => {
  it('SORT with criteria, charset and keys', () => {
    expect(cmd('a UID SORT (REVERSE ARRIVAL subject DISPLAYFROM) UTF-8 SINCE 1-Feb-1994 UNSEEN')).toEqual({
      tag: 'a',
      name: 'SORT',
      uid: true,
      criteria: [
        { key: 'ARRIVAL', reverse: true },
        { key: 'SUBJECT', reverse: false },
        { key: 'DISPLAYFROM', reverse: false },
      ],
      charset: 'UTF-8',
      search: {
        type: 'and',
        keys: [
          { type: 'date', field: 'internal', op: 'since', date: '1994-02-01' },
          { type: 'flag', flag: '\\Seen', set: false },
        ],
      },
    });
  });

  it('ESORT RETURN options', () => {
    expect(cmd('a SORT RETURN (MIN COUNT) (DATE) US-ASCII ALL')).toMatchObject({ returnOptions: ['MIN', 'COUNT'], search: { type: 'all' } });
  });

  it('THREAD', () => {
    expect(cmd('a THREAD references UTF-8 SINCE 5-MAR-2000')).toEqual({
      tag: 'a',
      name: 'THREAD',
      uid: false,
      algorithm: 'REFERENCES',
      charset: 'UTF-8',
      search: { type: 'date', field: 'internal', op: 'since', date: '2000-03-05' },
    });
  });

  it('errors', () => {
    expect(err('a SORT (FOO) UTF-8 ALL').message).toMatch(/Unknown sort key/);
    expect(err('a SORT () UTF-8 ALL').message).toMatch(/Empty sort criteria/);
    expect(err('a SORT (DATE) KLINGON ALL')).toMatchObject({ code: 'BADCHARSET' });
    expect(err('a THREAD REFERENCES UTF-8').message).toBe('Missing argument: search criteria');
  });
});

describe('QUOTA', () => {
  it('GETQUOTA, GETQUOTAROOT, SETQUOTA', () => {
    expect(cmd('a GETQUOTA ""')).toEqual({ tag: 'a', name: 'GETQUOTA', root: '' });
    expect(cmd('a GETQUOTAROOT INBOX')).toEqual({ tag: 'a', name: 'GETQUOTAROOT', mailbox: 'INBOX' });
    expect(cmd('a SETQUOTA "" (STORAGE 512 message 1000)')).toEqual({
      tag: 'a',
      name: 'SETQUOTA',
      root: '',
      limits: [
        { resource: 'STORAGE', limit: 512 },
        { resource: 'MESSAGE', limit: 1000 },
      ],
    });
    expect(cmd('a SETQUOTA x ()')).toMatchObject({ limits: [] });
    expect(err('a SETQUOTA x (STORAGE)').message).toBe('Expected space before quota limit');
  });
});
