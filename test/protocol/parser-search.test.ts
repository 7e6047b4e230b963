import { describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { CommandParser } from '../../src/protocol/parser.js';
import type { Command, ParserEvent, SearchKey } from '../../src/protocol/ast.js';

function run(input: string | Buffer): ParserEvent[] {
  const p = new CommandParser();
  p.push(typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
  const out: ParserEvent[] = [];
  for (let e = p.next(); e; e = p.next()) out.push(e);
  return out;
}

function search(input: string | Buffer): Extract<Command, { name: 'SEARCH' }> {
  const raw = typeof input === 'string' ? Buffer.from(`${input}\r\n`) : input;
  const evs = run(raw).filter((e) => e.kind !== 'continue');
  expect(evs).toHaveLength(1);
  const e = evs[0]!;
  if (e.kind !== 'command' || e.command.name !== 'SEARCH') throw new Error(`expected SEARCH, got ${JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v))}`);
  return e.command;
}

/** The criteria of "a SEARCH <keys>". */
function keys(text: string): SearchKey {
  return search(`a SEARCH ${text}`).criteria;
}

function err(text: string): Extract<ParserEvent, { kind: 'error' }> {
  const evs = run(`${text}\r\n`);
  expect(evs).toHaveLength(1);
  const e = evs[0]!;
  if (e.kind !== 'error') throw new Error(`expected an error, got ${e.kind}`);
  expect(e.fatal).toBe(false);
  return e;
}

describe('SEARCH keys', () => {
  it('flag keys', () => {
    const table: Array<[string, string, boolean]> = [
      ['ANSWERED', '\\Answered', true],
      ['DELETED', '\\Deleted', true],
      ['DRAFT', '\\Draft', true],
      ['FLAGGED', '\\Flagged', true],
      ['SEEN', '\\Seen', true],
      ['RECENT', '\\Recent', true],
      ['OLD', '\\Recent', false],
      ['UNANSWERED', '\\Answered', false],
      ['UNDELETED', '\\Deleted', false],
      ['UNDRAFT', '\\Draft', false],
      ['UNFLAGGED', '\\Flagged', false],
      ['UNSEEN', '\\Seen', false],
    ];
    for (const [word, flag, set] of table) {
      expect(keys(word.toLowerCase())).toEqual({ type: 'flag', flag, set });
    }
  });

  it('ALL, NEW, KEYWORD, UNKEYWORD', () => {
    expect(keys('ALL')).toEqual({ type: 'all' });
    expect(keys('NEW')).toEqual({
      type: 'and',
      keys: [
        { type: 'flag', flag: '\\Recent', set: true },
        { type: 'flag', flag: '\\Seen', set: false },
      ],
    });
    expect(keys('KEYWORD $Junk')).toEqual({ type: 'flag', flag: '$Junk', set: true });
    expect(keys('UNKEYWORD foo')).toEqual({ type: 'flag', flag: 'foo', set: false });
  });

  it('address and subject keys become lower-case HEADER', () => {
    for (const f of ['BCC', 'CC', 'FROM', 'SUBJECT', 'TO']) {
      expect(keys(`${f} "Smith"`)).toEqual({ type: 'header', field: f.toLowerCase(), value: 'Smith' });
    }
    expect(keys('HEADER X-Mailer {4}\r\nmutt')).toEqual({ type: 'header', field: 'x-mailer', value: 'mutt' });
    expect(keys('HEADER Message-ID ""')).toEqual({ type: 'header', field: 'message-id', value: '' });
  });

  it('BODY and TEXT, including literal8', () => {
    expect(keys('BODY hello')).toEqual({ type: 'body', value: 'hello' });
    expect(keys('TEXT ~{5+}\r\nwor\0d')).toEqual({ type: 'text', value: 'wor\0d' });
  });

  it('dates of every field and operator', () => {
    const table: Array<[string, string, string]> = [
      ['BEFORE', 'internal', 'before'],
      ['ON', 'internal', 'on'],
      ['SINCE', 'internal', 'since'],
      ['SENTBEFORE', 'sent', 'before'],
      ['SENTON', 'sent', 'on'],
      ['SENTSINCE', 'sent', 'since'],
      ['SAVEDBEFORE', 'saved', 'before'],
      ['SAVEDON', 'saved', 'on'],
      ['SAVEDSINCE', 'saved', 'since'],
    ];
    for (const [word, field, op] of table) {
      expect(keys(`${word} 1-Feb-1994`)).toEqual({ type: 'date', field, op, date: '1994-02-01' });
    }
    expect(keys('ON "29-feb-2000"')).toMatchObject({ date: '2000-02-29' });
    expect(keys('ON 31-DEC-1999')).toMatchObject({ date: '1999-12-31' });
  });

  it('invalid dates are errors', () => {
    for (const d of ['30-Feb-2001', '29-Feb-1900', '1-Foo-2000', '2001-02-01', '0-Jan-2000', '32-Jan-2000', '1-Jan-99', '"1-Jan-2000', '123-Jan-2000']) {
      const e = err(`t SEARCH SINCE ${d}`);
      expect(e.tag).toBe('t');
      expect(e.message).toMatch(/date|quoted/i);
    }
  });

  it('sizes, UID and sequence sets', () => {
    expect(keys('LARGER 1000')).toEqual({ type: 'size', op: 'larger', value: 1000 });
    expect(keys('SMALLER 5')).toEqual({ type: 'size', op: 'smaller', value: 5 });
    expect(keys('UID 1:*')).toEqual({ type: 'uid', set: { kind: 'ranges', ranges: [{ start: 1, end: '*' }] } });
    expect(keys('2,4:6')).toEqual({
      type: 'seq',
      set: {
        kind: 'ranges',
        ranges: [
          { start: 2, end: 2 },
          { start: 4, end: 6 },
        ],
      },
    });
    expect(keys('*')).toEqual({ type: 'seq', set: { kind: 'ranges', ranges: [{ start: '*', end: '*' }] } });
    expect(keys('$')).toEqual({ type: 'seq', set: { kind: 'saved' } });
    expect(keys('UID $')).toEqual({ type: 'uid', set: { kind: 'saved' } });
  });

  it('NOT, OR, parentheses, nesting', () => {
    expect(keys('NOT SEEN')).toEqual({ type: 'not', key: { type: 'flag', flag: '\\Seen', set: true } });
    expect(keys('OR SEEN (FLAGGED DELETED)')).toEqual({
      type: 'or',
      left: { type: 'flag', flag: '\\Seen', set: true },
      right: {
        type: 'and',
        keys: [
          { type: 'flag', flag: '\\Flagged', set: true },
          { type: 'flag', flag: '\\Deleted', set: true },
        ],
      },
    });
    expect(keys('OR OR FROM a TO b NOT (NOT SEEN)')).toEqual({
      type: 'or',
      left: {
        type: 'or',
        left: { type: 'header', field: 'from', value: 'a' },
        right: { type: 'header', field: 'to', value: 'b' },
      },
      right: { type: 'not', key: { type: 'not', key: { type: 'flag', flag: '\\Seen', set: true } } },
    });
    expect(keys('((SEEN))')).toEqual({ type: 'flag', flag: '\\Seen', set: true });
  });

  it('several top-level keys make one "and"; one key stays itself', () => {
    expect(keys('SEEN')).toEqual({ type: 'flag', flag: '\\Seen', set: true });
    expect(keys('FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')).toEqual({
      type: 'and',
      keys: [
        { type: 'flag', flag: '\\Flagged', set: true },
        { type: 'date', field: 'internal', op: 'since', date: '1994-02-01' },
        { type: 'not', key: { type: 'header', field: 'from', value: 'Smith' } },
      ],
    });
  });

  it('MODSEQ with and without entry', () => {
    expect(keys('MODSEQ 620162338')).toEqual({ type: 'modseq', modseq: 620162338n });
    expect(keys('MODSEQ "/flags/\\\\draft" all 620162338')).toEqual({
      type: 'modseq',
      modseq: 620162338n,
      entry: { name: '/flags/\\draft', kind: 'all' },
    });
    expect(keys('MODSEQ "/flags/$Junk" PRIV 0')).toMatchObject({ entry: { name: '/flags/$Junk', kind: 'priv' } });
    expect(err('a SEARCH MODSEQ "/flags/x" bogus 5').message).toMatch(/entry type/);
    expect(err('a SEARCH MODSEQ "/other" all 5').message).toMatch(/entry name/);
  });

  it('OLDER, YOUNGER, SAVEDATESUPPORTED, EMAILID, THREADID', () => {
    expect(keys('OLDER 3600')).toEqual({ type: 'older', seconds: 3600 });
    expect(keys('YOUNGER 60')).toEqual({ type: 'younger', seconds: 60 });
    expect(keys('SAVEDATESUPPORTED')).toEqual({ type: 'savedatesupported' });
    expect(keys('EMAILID M6d99ac3275bb4e')).toEqual({ type: 'emailid', id: 'M6d99ac3275bb4e' });
    expect(keys('THREADID T64b478a75b7ea9')).toEqual({ type: 'threadid', id: 'T64b478a75b7ea9' });
    expect(err('a SEARCH OLDER 0').message).toMatch(/zero/);
    expect(err('a SEARCH EMAILID a.b').message).toMatch(/object id/);
  });

  it('errors name what is missing', () => {
    expect(err('a SEARCH').message).toBe('Missing argument: search criteria');
    expect(err('a SEARCH FROM').message).toBe('Missing argument: FROM value');
    expect(err('a SEARCH OR SEEN').message).toBe('Missing argument: second search key of OR');
    expect(err('a SEARCH BOGUS').message).toMatch(/Unknown search key BOGUS/);
    expect(err('a SEARCH (SEEN').message).toMatch(/Missing \)/);
    expect(err('a SEARCH SEEN)').message).toMatch(/extra/);
    expect(err('a SEARCH SEEN ').message).toBe('Missing argument: search key');
  });
});

describe('SEARCH program', () => {
  it('UID SEARCH with RETURN and CHARSET', () => {
    expect(search('a UID SEARCH RETURN (MIN MAX ALL COUNT SAVE) CHARSET utf-8 SUBJECT "ä"')).toEqual({
      tag: 'a',
      name: 'SEARCH',
      uid: true,
      charset: 'UTF-8',
      returnOptions: ['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE'],
      criteria: { type: 'header', field: 'subject', value: 'ä' },
    });
  });

  it('RETURN () and plain SEARCH', () => {
    expect(search('a SEARCH RETURN () ALL')).toMatchObject({ returnOptions: [] });
    const plain = search('a SEARCH ALL');
    expect(plain.returnOptions).toBeUndefined();
    expect(plain.charset).toBeUndefined();
    expect(plain.uid).toBe(false);
  });

  it('decodes strings from the CHARSET', () => {
    const latin1 = iconv.encode('Grüße', 'ISO-8859-1');
    const input = Buffer.concat([Buffer.from(`a SEARCH CHARSET ISO-8859-1 SUBJECT {${latin1.length}}\r\n`), latin1, Buffer.from(' BODY "'), latin1, Buffer.from('"\r\n')]);
    expect(search(input).criteria).toEqual({
      type: 'and',
      keys: [
        { type: 'header', field: 'subject', value: 'Grüße' },
        { type: 'body', value: 'Grüße' },
      ],
    });
    const koi = iconv.encode('привет', 'KOI8-R');
    const k = Buffer.concat([Buffer.from(`a SEARCH CHARSET KOI8-R TEXT {${koi.length}+}\r\n`), koi, Buffer.from('\r\n')]);
    expect(search(k).criteria).toEqual({ type: 'text', value: 'привет' });
  });

  it('unknown charset is BADCHARSET', () => {
    const e = err('a SEARCH CHARSET X-KLINGON TEXT foo');
    expect(e).toMatchObject({ tag: 'a', code: 'BADCHARSET', name: 'SEARCH' });
  });

  it('unknown RETURN option', () => {
    expect(err('a SEARCH RETURN (PARTIAL 1:5) ALL').message).toMatch(/Unknown RETURN option/);
  });
});
