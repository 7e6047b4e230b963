/** SEARCH / UID SEARCH, ESEARCH and SEARCHRES on a fake session over the memory store. */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Command, SearchKey, SearchReturn } from '../../src/protocol/ast.js';
import { searchCommand } from '../../src/server/commands/search.js';
import { dayAtOffset, parseHeaderDate, searchDay } from '../../src/server/search/dates.js';
import { mail, openSession, seqSet, tagged, type TestMessage, type TestSession } from './messages-helpers.js';

beforeAll(() => {
  process.env.TZ = 'Europe/Berlin';
});

type SearchCmd = Extract<Command, { name: 'SEARCH' }>;

async function search(
  s: TestSession,
  criteria: SearchKey,
  o: { uid?: boolean; returnOptions?: SearchReturn; charset?: string } = {},
): Promise<string> {
  s.ctx.clear();
  const cmd: SearchCmd = { tag: 'A1', name: 'SEARCH', uid: o.uid ?? false, criteria, returnOptions: o.returnOptions, charset: o.charset };
  return tagged(await searchCommand(s.ctx, cmd));
}

/** Runs a UID SEARCH and returns the matching UIDs. */
async function uids(s: TestSession, criteria: SearchKey): Promise<number[]> {
  const r = await search(s, criteria, { uid: true });
  expect(r).toBe('OK Search completed.');
  const line = s.ctx.lines.find((l) => l.startsWith('* SEARCH'));
  expect(line).toBeDefined();
  return line!
    .slice('* SEARCH'.length)
    .trim()
    .split(' ')
    .filter((x) => x !== '')
    .map(Number);
}

const and = (...keys: SearchKey[]): SearchKey => ({ type: 'and', keys });
const header = (field: string, value: string): SearchKey => ({ type: 'header', field, value });
const flag = (f: string, set = true): SearchKey => ({ type: 'flag', flag: f, set });

const corpus: TestMessage[] = [
  {
    data: mail(
      { From: '"Alice Example" <alice@example.org>', To: 'bob@example.org', Subject: '=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=', Date: 'Mon, 01 Jan 2024 23:30:00 -0500', 'X-Tag': 'one' },
      'Plain body with the word banana.\n',
    ),
    flags: ['\\Seen'],
    date: new Date('2024-01-01T23:30:00Z'),
  },
  {
    data: mail(
      { From: 'carol@example.org', To: 'dave@example.org', Subject: 'Quarterly report', 'MIME-Version': '1.0', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Transfer-Encoding': 'base64' },
      Buffer.from('Die Zahlen für März sind gut.\n').toString('base64') + '\n',
    ),
    flags: ['\\Flagged', 'Work'],
    date: new Date('2024-03-10T12:00:00Z'),
  },
  {
    data: mail(
      { From: 'erin@example.org', Subject: 'latin', 'MIME-Version': '1.0', 'Content-Type': 'text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding': 'quoted-printable' },
      'caf=E9 cr=E8me\n',
    ),
    date: new Date('2024-06-30T22:30:00Z'),
  },
  {
    data: mail({ From: 'frank@example.org', Subject: 'no date header, large' }, 'x'.repeat(5000) + '\n'),
    flags: ['\\Deleted', '\\Answered'],
    date: new Date('2024-02-01T10:00:00Z'),
  },
];

describe('dates', () => {
  it('parses Date headers with their zone and finds the day there', () => {
    const d = parseHeaderDate('Mon, 01 Jan 2024 23:30:00 -0500 (EST)');
    expect(d).toEqual({ utcMs: Date.UTC(2024, 0, 2, 4, 30), offsetMinutes: -300 });
    expect(dayAtOffset(d!.utcMs, d!.offsetMinutes)).toBe(20240101);
    expect(parseHeaderDate('2 Feb 99 10:00 GMT')?.utcMs).toBe(Date.UTC(1999, 1, 2, 10, 0));
    expect(parseHeaderDate('not a date')).toBeNull();
    expect(searchDay('2024-03-05')).toBe(20240305);
  });
});

describe('metadata keys', () => {
  it('matches flags, keywords and their negations', async () => {
    const s = await openSession(corpus);
    expect(await uids(s, flag('\\Seen'))).toEqual([1]);
    expect(await uids(s, flag('\\Seen', false))).toEqual([2, 3, 4]);
    expect(await uids(s, flag('work'))).toEqual([2]);
    expect(await uids(s, and(flag('\\Deleted'), flag('\\Answered')))).toEqual([4]);
    // No session-recent tracking: RECENT matches nothing, OLD everything.
    expect(await uids(s, flag('\\Recent'))).toEqual([]);
    expect(await uids(s, flag('\\Recent', false))).toEqual([1, 2, 3, 4]);
  });

  it('matches sequence and UID sets, sizes, OR and NOT', async () => {
    const s = await openSession(corpus);
    expect(await uids(s, { type: 'seq', set: seqSet('2:3') })).toEqual([2, 3]);
    expect(await uids(s, { type: 'uid', set: seqSet('3:*') })).toEqual([3, 4]);
    expect(await uids(s, { type: 'seq', set: seqSet('9') })).toEqual([]);
    expect(await uids(s, { type: 'size', op: 'larger', value: 4000 })).toEqual([4]);
    expect(await uids(s, { type: 'or', left: flag('\\Seen'), right: flag('\\Flagged') })).toEqual([1, 2]);
    expect(await uids(s, { type: 'not', key: { type: 'size', op: 'smaller', value: 4000 } })).toEqual([4]);
  });

  it('compares INTERNALDATE by day in the server zone', async () => {
    const s = await openSession(corpus);
    // 2024-01-01T23:30Z is 2 January in Berlin.
    expect(await uids(s, { type: 'date', field: 'internal', op: 'on', date: '2024-01-02' })).toEqual([1]);
    expect(await uids(s, { type: 'date', field: 'internal', op: 'before', date: '2024-02-01' })).toEqual([1]);
    expect(await uids(s, { type: 'date', field: 'internal', op: 'since', date: '2024-07-01' })).toEqual([3]);
  });

  it('compares the sent date in the Date header zone, falling back to INTERNALDATE', async () => {
    const s = await openSession(corpus);
    expect(await uids(s, { type: 'date', field: 'sent', op: 'on', date: '2024-01-01' })).toEqual([1]);
    expect(await uids(s, { type: 'date', field: 'sent', op: 'on', date: '2024-02-01' })).toEqual([4]);
  });

  it('handles OLDER and YOUNGER against the clock', async () => {
    const now = Date.now();
    const s = await openSession([
      { data: mail({ Subject: 'old' }), date: new Date(now - 3 * 86400_000) },
      { data: mail({ Subject: 'new' }), date: new Date(now - 3600_000) },
    ]);
    expect(await uids(s, { type: 'older', seconds: 86400 })).toEqual([1]);
    expect(await uids(s, { type: 'younger', seconds: 86400 })).toEqual([2]);
  });

  it('matches EMAILID, THREADID, SAVEDATE keys', async () => {
    const s = await openSession(corpus);
    const [m2] = await s.handle.get([2]);
    expect(await uids(s, { type: 'emailid', id: m2.emailId })).toEqual([2]);
    expect(await uids(s, { type: 'threadid', id: m2.threadId })).toContain(2);
    expect(await uids(s, { type: 'savedatesupported' })).toEqual([1, 2, 3, 4]);
    expect(await uids(s, { type: 'date', field: 'saved', op: 'since', date: '2000-01-01' })).toEqual([1, 2, 3, 4]);
    expect(await uids(s, { type: 'date', field: 'saved', op: 'before', date: '2000-01-01' })).toEqual([]);
  });

  it('does not read messages when metadata decides', async () => {
    const s = await openSession(corpus);
    const spy = vi.spyOn(s.ctx, 'message');
    await uids(s, and(flag('\\Draft'), { type: 'body', value: 'banana' }));
    expect(spy).not.toHaveBeenCalled();
    await uids(s, and(flag('\\Seen'), { type: 'body', value: 'banana' }));
    expect(spy).toHaveBeenCalledTimes(1);
  });
});

describe('content keys', () => {
  it('matches decoded header text case-insensitively', async () => {
    const s = await openSession(corpus);
    expect(await uids(s, header('subject', 'grüße aus köln'))).toEqual([1]);
    expect(await uids(s, header('subject', 'REPORT'))).toEqual([2]);
    expect(await uids(s, header('from', 'alice example'))).toEqual([1]);
    expect(await uids(s, header('from', 'carol@'))).toEqual([2]);
  });

  it('matches any message having the header when the string is empty', async () => {
    const s = await openSession(corpus);
    expect(await uids(s, header('x-tag', ''))).toEqual([1]);
    expect(await uids(s, header('date', ''))).toEqual([1]);
  });

  it('matches decoded bodies: base64 UTF-8 and quoted-printable Latin-1', async () => {
    const s = await openSession(corpus);
    expect(await uids(s, { type: 'body', value: 'MÄRZ' })).toEqual([2]);
    expect(await uids(s, { type: 'body', value: 'café crème' })).toEqual([3]);
    expect(await uids(s, { type: 'body', value: 'Quarterly' })).toEqual([]);
  });

  it('TEXT matches header or body', async () => {
    const s = await openSession(corpus);
    expect(await uids(s, { type: 'text', value: 'quarterly' })).toEqual([2]);
    expect(await uids(s, { type: 'text', value: 'banana' })).toEqual([1]);
    expect(await uids(s, { type: 'text', value: 'dave@example' })).toEqual([2]);
    // Encoded words in the header are decoded for TEXT too.
    expect(await uids(s, { type: 'text', value: 'grüße aus köln' })).toEqual([1]);
  });
});

describe('TEXT and BODY answer as a full decode does, on the raw-byte shortcuts too', () => {
  // Messages where the raw bytes lack the needle but the decoded text has it, and the reverse.
  const tricky: TestMessage[] = [
    // UTF-16 text is all ASCII bytes here, yet "\0q\0u..." decodes to "quarterly".
    Buffer.concat([
      Buffer.from(mail({ Subject: 'utf16', 'MIME-Version': '1.0', 'Content-Type': 'text/plain; charset=utf-16be' }, '').trimEnd() + '\r\n\r\n'),
      Buffer.from('\0q\0u\0a\0r\0t\0e\0r\0l\0y'),
    ]),
    // KELVIN SIGN is canonically an ASCII "K" (NFC), so it folds to "k".
    mail({ Subject: 'sign', 'MIME-Version': '1.0', 'Content-Type': 'text/plain; charset=utf-8' }, 'five \u212Aelvin\n'),
    mail({ Subject: '=?us-ascii?Q?quart=65rly?=' }, 'nothing\n'),
    mail({ Subject: 'qp', 'MIME-Version': '1.0', 'Content-Type': 'text/plain; charset=us-ascii', 'Content-Transfer-Encoding': 'quoted-printable' }, 'quart=\nerly\n'),
    mail({ Subject: 'b64', 'MIME-Version': '1.0', 'Content-Transfer-Encoding': 'base64' }, Buffer.from('quarterly kelvin\n').toString('base64') + '\n'),
    mail({ Subject: 'utf7', 'MIME-Version': '1.0', 'Content-Type': 'text/plain; charset=utf-7' }, '+AHEAdQBh-rterly\n'),
    mail({ Subject: 'prose' }, 'the charset word in prose, and quarterly\n'),
    // The needle only in a non-text part or a boundary: not text, no match.
    mail(
      { Subject: 'attachment', 'MIME-Version': '1.0', 'Content-Type': 'multipart/mixed; boundary="b-quarterly"' },
      '--b-quarterly\nContent-Type: text/plain\n\nhello\n--b-quarterly\nContent-Type: application/octet-stream\n\nkelvin\n--b-quarterly--\n',
    ),
    mail({ Subject: 'plain' }, 'nothing to see\n'),
    // 8-bit UTF-8 straight in a header (no encoded word): decoded, it holds "kelvin" too.
    mail({ Subject: 'raw \u212Aelvin' }, 'nothing\n'),
  ];

  it('agrees with searching the fully decoded header and body text', async () => {
    const { generateCorpus } = await import('../fixtures/corpus.js');
    const { allHeaderText, bodyText, indexMessage } = await import('../../src/mime/index.js');
    const { fold } = await import('../../src/server/search/text.js');
    const messages: TestMessage[] = [...tricky, ...generateCorpus(150).map((m) => m.raw)];
    const s = await openSession(messages);
    const texts = messages.map((m) => {
      const raw = Buffer.isBuffer(m) ? m : Buffer.from(typeof m === 'string' ? m : m.data);
      const index = indexMessage(raw);
      return { headers: fold(allHeaderText(raw, index)), body: fold(bodyText(raw, index)) };
    });
    const needles = ['quarterly', 'kelvin', 'Report', 'hello', 'b-quarterly', 'example.org', 'the'];
    const check = async (): Promise<void> => {
      for (const needle of needles) {
        const n = fold(needle);
        const wantBody = texts.flatMap((t, i) => (t.body.includes(n) ? [i + 1] : []));
        const wantText = texts.flatMap((t, i) => (t.body.includes(n) || t.headers.includes(n) ? [i + 1] : []));
        expect(await uids(s, { type: 'body', value: needle }), `BODY ${needle}`).toEqual(wantBody);
        expect(await uids(s, { type: 'text', value: needle }), `TEXT ${needle}`).toEqual(wantText);
      }
    };
    await check();
    // Again, now from the layouts kept by the first round: same answers, and no message parsed.
    const parsed = vi.spyOn(s.ctx, 'message');
    await check();
    expect(parsed).not.toHaveBeenCalled();
    // The tricky ones do what they are there for.
    expect(texts[0]!.body).toContain('quarterly');
    expect(texts[1]!.body).toContain('kelvin');
    expect(texts[2]!.headers).toContain('quarterly');
  });
});

describe('responses', () => {
  it('answers sequence numbers for SEARCH and UIDs for UID SEARCH', async () => {
    const s = await openSession([...corpus, { data: mail({ Subject: 'x' }), flags: ['\\Flagged'] }]);
    // Drop UID 2 from the store and the view: sequence 2 is now UID 3.
    await s.handle.updateFlags([2], { action: 'add', flags: ['\\Deleted'] });
    await s.handle.expunge([2]);
    s.sel.uids = [1, 3, 4, 5];
    await search(s, flag('\\Flagged'));
    expect(s.ctx.lines).toEqual(['* SEARCH 4']);
    await search(s, flag('\\Flagged'), { uid: true });
    expect(s.ctx.lines).toEqual(['* SEARCH 5']);
    await search(s, flag('nothing'));
    expect(s.ctx.lines).toEqual(['* SEARCH']);
  });

  it('appends (MODSEQ n) for a MODSEQ search and turns CONDSTORE on', async () => {
    const s = await openSession(corpus);
    await s.handle.updateFlags([3], { action: 'add', flags: ['x'] });
    const [m3] = await s.handle.get([3]);
    await search(s, { type: 'modseq', modseq: m3.modSeq });
    expect(s.ctx.lines.at(-1)).toBe(`* SEARCH 3 (MODSEQ ${m3.modSeq})`);
    expect(s.ctx.condstoreActive).toBe(true);
  });

  it('answers ESEARCH with MIN MAX ALL COUNT (RFC 4731)', async () => {
    const s = await openSession(corpus);
    await search(s, flag('\\Seen', false), { uid: true, returnOptions: ['MIN', 'MAX', 'COUNT', 'ALL'] });
    expect(s.ctx.lines).toEqual(['* ESEARCH (TAG "A1") UID MIN 2 MAX 4 ALL 2:4 COUNT 3']);
    await search(s, flag('nothing'), { returnOptions: ['MIN', 'COUNT'] });
    expect(s.ctx.lines).toEqual(['* ESEARCH (TAG "A1") COUNT 0']);
    await search(s, flag('\\Seen'), { returnOptions: [] });
    expect(s.ctx.lines).toEqual(['* ESEARCH (TAG "A1") ALL 1']);
  });

  it('adds MODSEQ to ESEARCH, for the MIN/MAX messages when only those are asked', async () => {
    const s = await openSession(corpus);
    await s.handle.updateFlags([4], { action: 'add', flags: ['y'] });
    const metas = await s.handle.get([1, 2, 3, 4]);
    await search(s, { type: 'modseq', modseq: 1n }, { returnOptions: ['MIN'] });
    expect(s.ctx.lines.at(-1)).toBe(`* ESEARCH (TAG "A1") MIN 1 MODSEQ ${metas[0].modSeq}`);
    await search(s, { type: 'modseq', modseq: 1n }, { returnOptions: ['COUNT'] });
    expect(s.ctx.lines.at(-1)).toBe(`* ESEARCH (TAG "A1") COUNT 4 MODSEQ ${metas[3].modSeq}`);
  });

  it('answers ESEARCH to an IMAP4rev2 client without RETURN', async () => {
    const s = await openSession(corpus, { enable: ['IMAP4REV2'] });
    await search(s, flag('\\Seen'), { uid: true });
    expect(s.ctx.lines).toEqual(['* ESEARCH (TAG "A1") UID ALL 1']);
  });

  it('refuses an unknown charset with BADCHARSET', async () => {
    const s = await openSession(corpus);
    expect(await search(s, { type: 'all' }, { charset: 'X-NO-SUCH' })).toBe('NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset.');
    // Strings arrive decoded by the parser, so any charset it knows is fine here.
    expect(await search(s, { type: 'all' }, { charset: 'utf-8' })).toBe('OK Search completed.');
    expect(await search(s, { type: 'all' }, { charset: 'KOI8-R' })).toBe('OK Search completed.');
  });
});

describe('SEARCHRES (RFC 5182)', () => {
  it('SAVE alone answers nothing and $ then names the saved messages', async () => {
    const s = await openSession(corpus);
    await search(s, flag('\\Seen', false), { returnOptions: ['SAVE'] });
    expect(s.ctx.lines).toEqual([]);
    expect(s.sel.savedResult).toEqual([2, 3, 4]);
    expect(await uids(s, and({ type: 'uid', set: { kind: 'saved' } }, flag('\\Flagged')))).toEqual([2]);
    expect(await uids(s, { type: 'seq', set: { kind: 'saved' } })).toEqual([2, 3, 4]);
  });

  it('SAVE with MIN and MAX saves only those; with COUNT saves all', async () => {
    const s = await openSession(corpus);
    await search(s, { type: 'all' }, { returnOptions: ['SAVE', 'MIN', 'MAX'] });
    expect(s.ctx.lines).toEqual(['* ESEARCH (TAG "A1") MIN 1 MAX 4']);
    expect(s.sel.savedResult).toEqual([1, 4]);
    await search(s, { type: 'all' }, { returnOptions: ['SAVE', 'COUNT'] });
    expect(s.sel.savedResult).toEqual([1, 2, 3, 4]);
  });

  it('a failed SAVE search empties $', async () => {
    const s = await openSession(corpus);
    s.sel.savedResult = [1, 2];
    await search(s, { type: 'all' }, { returnOptions: ['SAVE'], charset: 'X-UNKNOWN' });
    expect(s.sel.savedResult).toEqual([]);
  });
});

describe('messages expunged by another session', () => {
  it('keep their metadata for metadata keys and match no content key', async () => {
    const s = await openSession([{ data: mail({ Subject: 'gone' }), flags: ['\\Deleted'] }, mail({ Subject: 'kept' })]);
    await s.handle.expunge(undefined, 'other');
    expect(await uids(s, flag('\\Deleted'))).toEqual([1]);
    expect(await uids(s, header('subject', 'gone'))).toEqual([]);
    expect(await uids(s, header('subject', 'kept'))).toEqual([2]);
  });
});
