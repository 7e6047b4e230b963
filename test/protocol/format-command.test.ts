import { describe, expect, it } from 'vitest';
import { formatCommand } from '../../src/protocol/format-command.js';
import type { Command, SearchKey, SequenceSet } from '../../src/protocol/ast.js';

const f = (cmd: Command, literalPlus = true): string => formatCommand(cmd, { literalPlus }).toString('utf8');
const set = (...ranges: Array<[number | '*', number | '*']>): SequenceSet => ({
  kind: 'ranges',
  ranges: ranges.map(([start, end]) => ({ start, end })),
});
const search = (criteria: SearchKey): string => f({ tag: 's', name: 'SEARCH', uid: false, criteria });

describe('formatCommand', () => {
  it('formats commands without arguments', () => {
    for (const name of ['CAPABILITY', 'NOOP', 'LOGOUT', 'STARTTLS', 'IDLE', 'CHECK', 'CLOSE', 'UNSELECT', 'NAMESPACE'] as const) {
      expect(f({ tag: 'a1', name })).toBe(`a1 ${name}\r\n`);
    }
  });

  it('formats LOGIN with atoms, quoted strings and literals as the content needs', () => {
    expect(f({ tag: 'a1', name: 'LOGIN', user: 'fred', password: 'secret' })).toBe('a1 LOGIN fred secret\r\n');
    expect(f({ tag: 'a1', name: 'LOGIN', user: 'fred smith', password: 'p"w\\d' })).toBe(
      'a1 LOGIN "fred smith" "p\\"w\\\\d"\r\n',
    );
    expect(f({ tag: 'a1', name: 'LOGIN', user: '', password: 'a]b' })).toBe('a1 LOGIN "" "a]b"\r\n');
    expect(f({ tag: 'a1', name: 'LOGIN', user: 'jürgen', password: 'x\ny' })).toBe(
      'a1 LOGIN {7+}\r\njürgen {3+}\r\nx\ny\r\n',
    );
    expect(f({ tag: 'a1', name: 'LOGIN', user: 'jürgen', password: 'x' }, false)).toBe('a1 LOGIN {7}\r\njürgen x\r\n');
  });

  it('formats AUTHENTICATE, ENABLE, ID and COMPRESS', () => {
    expect(f({ tag: 'a', name: 'AUTHENTICATE', mechanism: 'PLAIN' })).toBe('a AUTHENTICATE PLAIN\r\n');
    expect(f({ tag: 'a', name: 'AUTHENTICATE', mechanism: 'PLAIN', initialResponse: 'AGZyZWQAc2VjcmV0' })).toBe(
      'a AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0\r\n',
    );
    expect(f({ tag: 'a', name: 'AUTHENTICATE', mechanism: 'PLAIN', initialResponse: '=' })).toBe('a AUTHENTICATE PLAIN =\r\n');
    expect(f({ tag: 'a', name: 'ENABLE', capabilities: ['CONDSTORE', 'UTF8=ACCEPT'] })).toBe('a ENABLE CONDSTORE UTF8=ACCEPT\r\n');
    expect(f({ tag: 'a', name: 'ID', params: null })).toBe('a ID NIL\r\n');
    expect(f({ tag: 'a', name: 'ID', params: [['name', 'imapkit'], ['version', null], ['x', 'NIL']] })).toBe(
      'a ID ("name" "imapkit" "version" NIL "x" "NIL")\r\n',
    );
    expect(f({ tag: 'a', name: 'COMPRESS', mechanism: 'DEFLATE' })).toBe('a COMPRESS DEFLATE\r\n');
  });

  it('formats SELECT and EXAMINE with CONDSTORE and QRESYNC parameters', () => {
    expect(f({ tag: 'a', name: 'SELECT', mailbox: 'INBOX', condstore: false })).toBe('a SELECT INBOX\r\n');
    expect(f({ tag: 'a', name: 'EXAMINE', mailbox: 'Sent Items', condstore: true })).toBe('a EXAMINE "Sent Items" (CONDSTORE)\r\n');
    expect(
      f({
        tag: 'a',
        name: 'SELECT',
        mailbox: 'INBOX',
        condstore: false,
        qresync: { uidValidity: 67890007, modSeq: 20050715194045000n, knownUids: set([41, 211], [214, 541]) },
      }),
    ).toBe('a SELECT INBOX (QRESYNC (67890007 20050715194045000 41:211,214:541))\r\n');
    expect(
      f({
        tag: 'a',
        name: 'SELECT',
        mailbox: 'INBOX',
        condstore: true,
        qresync: {
          uidValidity: 1,
          modSeq: 2n,
          seqMatch: { seqs: set([1, 1], [5, 5]), uids: set([10, 10], [50, 50]) },
        },
      }),
    ).toBe('a SELECT INBOX (CONDSTORE QRESYNC (1 2 (1,5 10,50)))\r\n');
  });

  it('formats mailbox management commands', () => {
    expect(f({ tag: 'a', name: 'CREATE', mailbox: 'Archive/2024' })).toBe('a CREATE Archive/2024\r\n');
    expect(f({ tag: 'a', name: 'CREATE', mailbox: 'Drafts', specialUse: ['\\Drafts'] })).toBe('a CREATE Drafts (USE (\\Drafts))\r\n');
    expect(f({ tag: 'a', name: 'DELETE', mailbox: '&ZeVnLIqe-' })).toBe('a DELETE &ZeVnLIqe-\r\n');
    expect(f({ tag: 'a', name: 'SUBSCRIBE', mailbox: 'a%b' })).toBe('a SUBSCRIBE "a%b"\r\n');
    expect(f({ tag: 'a', name: 'UNSUBSCRIBE', mailbox: 'x' })).toBe('a UNSUBSCRIBE x\r\n');
    expect(f({ tag: 'a', name: 'RENAME', from: 'old', to: 'new box' })).toBe('a RENAME old "new box"\r\n');
    expect(f({ tag: 'a', name: 'STATUS', mailbox: 'INBOX', items: ['MESSAGES', 'UIDNEXT', 'HIGHESTMODSEQ'] })).toBe(
      'a STATUS INBOX (MESSAGES UIDNEXT HIGHESTMODSEQ)\r\n',
    );
    expect(f({ tag: 'a', name: 'LSUB', reference: '', pattern: '*' })).toBe('a LSUB "" *\r\n');
  });

  it('formats plain and extended LIST', () => {
    const base = { tag: 'a', name: 'LIST' as const, selection: [], returnSubscribed: false, returnChildren: false, returnSpecialUse: false };
    expect(f({ ...base, reference: '', patterns: ['%'], extended: false })).toBe('a LIST "" %\r\n');
    expect(f({ ...base, reference: '~/Mail', patterns: ['foo*bar'], extended: false })).toBe('a LIST ~/Mail foo*bar\r\n');
    expect(
      f({
        ...base,
        reference: '',
        patterns: ['INBOX', 'Drafts/%'],
        selection: ['SUBSCRIBED', 'RECURSIVEMATCH'],
        returnChildren: true,
        returnSpecialUse: true,
        returnStatus: ['MESSAGES', 'UNSEEN'],
        extended: true,
      }),
    ).toBe('a LIST (SUBSCRIBED RECURSIVEMATCH) "" (INBOX Drafts/%) RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n');
    expect(f({ ...base, reference: '', patterns: ['*'], returnSubscribed: true, extended: true })).toBe(
      'a LIST () "" * RETURN (SUBSCRIBED)\r\n',
    );
  });

  it('formats APPEND with flags, date, binary and UTF8 literals, and MULTIAPPEND', () => {
    const data = Buffer.from('Subject: hi\r\n\r\nbody\r\n');
    const date = new Date(Date.UTC(2024, 0, 5, 9, 8, 7));
    expect(
      f({ tag: 'a', name: 'APPEND', mailbox: 'INBOX', messages: [{ flags: ['\\Seen'], date, data, binary: false, utf8: false }] }),
    ).toBe(`a APPEND INBOX (\\Seen) " 5-Jan-2024 09:08:07 +0000" {${data.length}+}\r\n${data}\r\n`);
    expect(
      f({ tag: 'a', name: 'APPEND', mailbox: 'INBOX', messages: [{ flags: [], data, binary: false, utf8: false }] }, false),
    ).toBe(`a APPEND INBOX {${data.length}}\r\n${data}\r\n`);
    const bin = Buffer.from([0x00, 0x01, 0xff]);
    expect(formatCommand({ tag: 'a', name: 'APPEND', mailbox: 'x', messages: [{ flags: [], data: bin, binary: true, utf8: false }] })).toEqual(
      Buffer.concat([Buffer.from('a APPEND x ~{3}\r\n'), bin, Buffer.from('\r\n')]),
    );
    expect(
      f({ tag: 'a', name: 'APPEND', mailbox: 'x', messages: [{ flags: [], data: Buffer.from('é'), binary: true, utf8: true }] }),
    ).toBe('a APPEND x UTF8 (~{2+}\r\né)\r\n');
    expect(
      f({
        tag: 'a',
        name: 'APPEND',
        mailbox: 'x',
        messages: [
          { flags: ['\\Draft'], data: Buffer.from('one'), binary: false, utf8: false },
          { flags: [], date: new Date(Date.UTC(1999, 11, 31, 23, 59, 59)), data: Buffer.from('two'), binary: false, utf8: false },
        ],
      }),
    ).toBe('a APPEND x (\\Draft) {3+}\r\none "31-Dec-1999 23:59:59 +0000" {3+}\r\ntwo\r\n');
  });

  it('formats EXPUNGE and UID EXPUNGE', () => {
    expect(f({ tag: 'a', name: 'EXPUNGE', uid: false })).toBe('a EXPUNGE\r\n');
    expect(f({ tag: 'a', name: 'EXPUNGE', uid: true, sequence: set([3000, 3002], [3005, '*']) })).toBe('a UID EXPUNGE 3000:3002,3005:*\r\n');
  });

  it('formats FETCH items, sections, partials and modifiers', () => {
    expect(
      f({
        tag: 'a',
        name: 'FETCH',
        uid: false,
        sequence: set([1, '*']),
        items: [{ type: 'UID' }, { type: 'FLAGS' }, { type: 'RFC822.SIZE' }, { type: 'BODY[]', peek: true, section: { part: [] } }],
        vanished: false,
      }),
    ).toBe('a FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[])\r\n');
    expect(
      f({
        tag: 'a',
        name: 'FETCH',
        uid: true,
        sequence: { kind: 'saved' },
        items: [
          { type: 'BODY[]', peek: false, section: { part: [1, 2], text: 'MIME' }, partial: { offset: 0, length: 1024 } },
          { type: 'BODY[]', peek: true, section: { part: [], text: 'HEADER.FIELDS', fields: ['From', 'Subject'] } },
          { type: 'BODY[]', peek: false, section: { part: [3], text: 'HEADER.FIELDS.NOT', fields: ['X Odd'] } },
          { type: 'BINARY[]', peek: true, part: [1], partial: { offset: 10, length: 5 } },
          { type: 'BINARY.SIZE', part: [2, 1] },
          { type: 'ENVELOPE' },
          { type: 'MODSEQ' },
        ],
        changedSince: 12345n,
        vanished: true,
      }),
    ).toBe(
      'a UID FETCH $ (BODY[1.2.MIME]<0.1024> BODY.PEEK[HEADER.FIELDS (From Subject)] BODY[3.HEADER.FIELDS.NOT ("X Odd")] ' +
        'BINARY.PEEK[1]<10.5> BINARY.SIZE[2.1] ENVELOPE MODSEQ) (CHANGEDSINCE 12345 VANISHED)\r\n',
    );
  });

  it('formats STORE in every form', () => {
    const base = { tag: 'a', name: 'STORE' as const, uid: false, sequence: set([2, 4]), silent: false, flags: ['\\Deleted'] };
    expect(f({ ...base, action: 'add' })).toBe('a STORE 2:4 +FLAGS (\\Deleted)\r\n');
    expect(f({ ...base, action: 'remove', silent: true })).toBe('a STORE 2:4 -FLAGS.SILENT (\\Deleted)\r\n');
    expect(f({ ...base, action: 'set', flags: [], uid: true })).toBe('a UID STORE 2:4 FLAGS ()\r\n');
    expect(f({ ...base, action: 'add', unchangedSince: 320162338n })).toBe('a STORE 2:4 (UNCHANGEDSINCE 320162338) +FLAGS (\\Deleted)\r\n');
  });

  it('formats COPY and MOVE', () => {
    expect(f({ tag: 'a', name: 'COPY', uid: false, sequence: set([2, 4]), mailbox: 'Trash' })).toBe('a COPY 2:4 Trash\r\n');
    expect(f({ tag: 'a', name: 'MOVE', uid: true, sequence: set([7, 7]), mailbox: 'Ordner ü' })).toBe('a UID MOVE 7 {9+}\r\nOrdner ü\r\n');
  });

  it('formats SEARCH keys', () => {
    expect(search({ type: 'all' })).toBe('s SEARCH ALL\r\n');
    expect(
      search({
        type: 'and',
        keys: [
          { type: 'flag', flag: '\\Seen', set: false },
          { type: 'flag', flag: '\\Recent', set: false },
          { type: 'flag', flag: '$Junk', set: true },
          { type: 'flag', flag: 'work', set: false },
          { type: 'header', field: 'from', value: 'alice@example.com' },
          { type: 'header', field: 'List-Id', value: '' },
          { type: 'date', field: 'internal', op: 'since', date: '1994-02-01' },
          { type: 'date', field: 'sent', op: 'before', date: '2024-12-31' },
          { type: 'date', field: 'saved', op: 'on', date: '2000-01-09' },
          { type: 'size', op: 'larger', value: 1000 },
          { type: 'seq', set: set([1, 100]) },
          { type: 'uid', set: { kind: 'saved' } },
        ],
      }),
    ).toBe(
      's SEARCH UNSEEN OLD KEYWORD $Junk UNKEYWORD work FROM alice@example.com HEADER List-Id "" SINCE 1-Feb-1994 ' +
        'SENTBEFORE 31-Dec-2024 SAVEDON 9-Jan-2000 LARGER 1000 1:100 UID $\r\n',
    );
    expect(
      search({
        type: 'or',
        left: { type: 'not', key: { type: 'body', value: 'a b' } },
        right: { type: 'and', keys: [{ type: 'text', value: 'x' }, { type: 'flag', flag: '\\Answered', set: true }] },
      }),
    ).toBe('s SEARCH OR NOT BODY "a b" (TEXT x ANSWERED)\r\n');
    expect(search({ type: 'modseq', modseq: 620162338n, entry: { name: '/flags/\\draft', kind: 'all' } })).toBe(
      's SEARCH MODSEQ "/flags/\\\\draft" all 620162338\r\n',
    );
    expect(search({ type: 'modseq', modseq: 5n })).toBe('s SEARCH MODSEQ 5\r\n');
    expect(search({ type: 'and', keys: [{ type: 'older', seconds: 60 }, { type: 'younger', seconds: 3600 }] })).toBe(
      's SEARCH OLDER 60 YOUNGER 3600\r\n',
    );
    expect(search({ type: 'and', keys: [{ type: 'emailid', id: 'M6d99ac3275bb4e' }, { type: 'threadid', id: 'T64b478a75b7ea9' }] })).toBe(
      's SEARCH EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9\r\n',
    );
    expect(search({ type: 'savedatesupported' })).toBe('s SEARCH SAVEDATESUPPORTED\r\n');
  });

  it('formats SEARCH with RETURN and CHARSET, SORT and THREAD', () => {
    expect(
      f({ tag: 'a', name: 'SEARCH', uid: true, charset: 'UTF-8', criteria: { type: 'text', value: 'grüß' }, returnOptions: ['MIN', 'COUNT'] }),
    ).toBe('a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 TEXT {6+}\r\ngrüß\r\n');
    expect(f({ tag: 'a', name: 'SEARCH', uid: false, criteria: { type: 'all' }, returnOptions: [] })).toBe('a SEARCH RETURN () ALL\r\n');
    expect(
      f({
        tag: 'a',
        name: 'SORT',
        uid: true,
        criteria: [{ key: 'SUBJECT', reverse: false }, { key: 'DATE', reverse: true }],
        charset: 'UTF-8',
        search: { type: 'and', keys: [{ type: 'flag', flag: '\\Deleted', set: false }, { type: 'seq', set: set([1, '*']) }] },
        returnOptions: ['ALL'],
      }),
    ).toBe('a UID SORT RETURN (ALL) (SUBJECT REVERSE DATE) UTF-8 UNDELETED 1:*\r\n');
    expect(f({ tag: 'a', name: 'THREAD', uid: false, algorithm: 'REFERENCES', charset: 'US-ASCII', search: { type: 'all' } })).toBe(
      'a THREAD REFERENCES US-ASCII ALL\r\n',
    );
  });

  it('formats quota commands', () => {
    expect(f({ tag: 'a', name: 'GETQUOTA', root: '' })).toBe('a GETQUOTA ""\r\n');
    expect(f({ tag: 'a', name: 'GETQUOTAROOT', mailbox: 'INBOX' })).toBe('a GETQUOTAROOT INBOX\r\n');
    expect(f({ tag: 'a', name: 'SETQUOTA', root: '', limits: [{ resource: 'STORAGE', limit: 512 }, { resource: 'MESSAGE', limit: 1000 }] })).toBe(
      'a SETQUOTA "" (STORAGE 512 MESSAGE 1000)\r\n',
    );
  });
});
