/** FETCH / UID FETCH handler on a fake session over the memory store. */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Command, FetchItem, Section } from '../../src/protocol/ast.js';
import { fetchCommand } from '../../src/server/commands/fetch.js';
import { formatInternalDate, sectionName } from '../../src/server/fetch/format.js';
import { StructureCache } from '../../src/server/fetch/cache.js';
import { mail, openSession, seqSet, tagged, type TestSession } from './messages-helpers.js';

beforeAll(() => {
  // A zone with a non-zero, DST-changing offset makes the INTERNALDATE checks meaningful.
  process.env.TZ = 'Europe/Berlin';
});

type FetchCmd = Extract<Command, { name: 'FETCH' }>;

const it_ = (type: Exclude<FetchItem['type'], 'BODY[]' | 'BINARY[]' | 'BINARY.SIZE'>): FetchItem => ({ type }) as FetchItem;
const body = (section: Partial<Section> = {}, peek = true, partial?: { offset: number; length: number }): FetchItem => ({
  type: 'BODY[]',
  peek,
  section: { part: [], ...section },
  ...(partial ? { partial } : {}),
});
const binary = (part: number[], peek = true, partial?: { offset: number; length: number }): FetchItem => ({
  type: 'BINARY[]',
  peek,
  part,
  ...(partial ? { partial } : {}),
});

async function fetch(
  s: TestSession,
  set: string,
  items: FetchItem[],
  o: { uid?: boolean; changedSince?: bigint; vanished?: boolean } = {},
): Promise<string> {
  s.ctx.clear();
  const cmd: FetchCmd = {
    tag: 'A1',
    name: 'FETCH',
    uid: o.uid ?? false,
    sequence: seqSet(set),
    items,
    changedSince: o.changedSince,
    vanished: o.vanished ?? false,
  };
  return tagged(await fetchCommand(s.ctx, cmd));
}

const plain = mail(
  {
    From: 'Alice <alice@example.org>',
    To: 'Bob <bob@example.org>',
    Subject: 'Greetings',
    Date: 'Mon, 01 Jan 2024 10:00:00 +0000',
    'Message-ID': '<g1@example.org>',
  },
  'Hello Bob.\nSecond line.\n',
);

const multipart = mail(
  {
    From: 'carol@example.org',
    Subject: 'Parts',
    'MIME-Version': '1.0',
    'Content-Type': 'multipart/mixed; boundary="XX"',
  },
  [
    '--XX',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'first part',
    '--XX',
    'Content-Type: application/octet-stream',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from([0x61, 0x00, 0x62, 0x0a]).toString('base64'),
    '--XX',
    'Content-Type: text/plain',
    'Content-Transfer-Encoding: x-unknown',
    '',
    'mystery',
    '--XX--',
    '',
  ].join('\n'),
);

describe('formatting helpers', () => {
  it('formats INTERNALDATE in the server zone with its offset', () => {
    expect(formatInternalDate(new Date('2024-01-05T10:00:00Z'))).toBe('05-Jan-2024 11:00:00 +0100');
    expect(formatInternalDate(new Date('2024-07-15T23:30:05Z'))).toBe('16-Jul-2024 01:30:05 +0200');
  });

  it('names sections as Dovecot does', () => {
    expect(sectionName({ part: [] })).toBe('');
    expect(sectionName({ part: [1, 2], text: 'MIME' })).toBe('1.2.MIME');
    expect(sectionName({ part: [], text: 'HEADER.FIELDS', fields: ['From', 'x-Custom'] })).toBe('HEADER.FIELDS (FROM X-CUSTOM)');
    expect(sectionName({ part: [2], text: 'HEADER.FIELDS.NOT', fields: ['a b'] })).toBe('2.HEADER.FIELDS.NOT ("A B")');
  });
});

describe('metadata items', () => {
  it('answers UID FLAGS RFC822.SIZE INTERNALDATE from metadata without reading messages', async () => {
    const date = new Date('2024-03-01T08:00:00Z');
    const s = await openSession([{ data: plain, flags: ['\\Flagged', 'custom'], date }]);
    const read = vi.spyOn(s.handle, 'read');
    const message = vi.spyOn(s.ctx, 'message');
    const r = await fetch(s, '1', [it_('UID'), it_('FLAGS'), it_('RFC822.SIZE'), it_('INTERNALDATE')]);
    expect(r).toBe('OK Fetch completed.');
    const size = Buffer.byteLength(plain.replace(/\n/g, '\r\n'));
    expect(s.ctx.lines).toEqual([`* 1 FETCH (UID 1 FLAGS (\\Flagged custom) RFC822.SIZE ${size} INTERNALDATE "01-Mar-2024 09:00:00 +0100")`]);
    expect(read).not.toHaveBeenCalled();
    expect(message).not.toHaveBeenCalled();
  });

  it('puts UID first in UID FETCH and does not repeat it', async () => {
    const s = await openSession([plain, plain]);
    await fetch(s, '2', [it_('FLAGS'), it_('UID')], { uid: true });
    expect(s.ctx.lines).toEqual(['* 2 FETCH (UID 2 FLAGS ())']);
  });

  it('answers each item once even when asked twice', async () => {
    const s = await openSession([plain]);
    await fetch(s, '1', [it_('FLAGS'), it_('FLAGS')]);
    expect(s.ctx.lines).toEqual(['* 1 FETCH (FLAGS ())']);
  });

  it('reports EMAILID, THREADID, SAVEDATE and MODSEQ', async () => {
    const s = await openSession([plain]);
    const [meta] = await s.handle.get([1]);
    await fetch(s, '1', [it_('EMAILID'), it_('THREADID'), it_('SAVEDATE'), it_('MODSEQ')]);
    expect(s.ctx.lines.at(-1)).toBe(
      `* 1 FETCH (EMAILID (${meta.emailId}) THREADID (${meta.threadId}) SAVEDATE "${formatInternalDate(meta.saveDate)}" MODSEQ (${meta.modSeq}))`,
    );
  });

  it('turns CONDSTORE on with MODSEQ and announces HIGHESTMODSEQ once', async () => {
    const s = await openSession([plain]);
    expect(s.ctx.condstoreActive).toBe(false);
    await fetch(s, '1', [it_('MODSEQ')]);
    expect(s.ctx.condstoreActive).toBe(true);
    expect(s.ctx.lines[0]).toBe(`* OK [HIGHESTMODSEQ ${s.sel.syncedModSeq}] Highest`);
    await fetch(s, '1', [it_('MODSEQ')]);
    expect(s.ctx.lines.some((l) => l.includes('HIGHESTMODSEQ'))).toBe(false);
  });
});

describe('message sets', () => {
  it('answers BAD for a sequence number beyond the mailbox, as Dovecot does', async () => {
    const s = await openSession([plain, plain]);
    expect(await fetch(s, '3', [it_('FLAGS')])).toMatch(/^BAD .*Invalid messageset/);
    expect(await fetch(s, '1:5', [it_('FLAGS')])).toMatch(/^BAD/);
    expect(s.ctx.lines).toEqual([]);
  });

  it('answers OK with nothing for UIDs that do not exist', async () => {
    const s = await openSession([plain, plain]);
    expect(await fetch(s, '10:20', [it_('FLAGS')], { uid: true })).toBe('OK Fetch completed.');
    expect(s.ctx.lines).toEqual([]);
  });

  it('treats any set in an empty mailbox as invalid for FETCH but not UID FETCH', async () => {
    const s = await openSession([]);
    expect(await fetch(s, '1:*', [it_('FLAGS')])).toMatch(/^BAD/);
    expect(await fetch(s, '1:*', [it_('FLAGS')], { uid: true })).toMatch(/^OK/);
  });

  it('answers in sequence order with sequence numbers', async () => {
    const s = await openSession([plain, plain, plain]);
    await fetch(s, '3,1', [it_('UID')]);
    expect(s.ctx.lines).toEqual(['* 1 FETCH (UID 1)', '* 3 FETCH (UID 3)']);
  });

  it('drains output periodically on long fetches', async () => {
    const s = await openSession(Array.from({ length: 200 }, () => plain));
    await fetch(s, '1:*', [it_('FLAGS')]);
    expect(s.ctx.lines).toHaveLength(200);
    expect(s.ctx.drains).toBeGreaterThanOrEqual(3);
  });
});

describe('body sections', () => {
  it('sends BODY.PEEK[] as the raw bytes without parsing the message', async () => {
    const s = await openSession([plain]);
    const message = vi.spyOn(s.ctx, 'message');
    await fetch(s, '1', [body()]);
    const raw = (await s.handle.read(1))!;
    const v = s.ctx.values[0];
    expect(v[0]).toBe(1);
    const list = v[2] as unknown[];
    expect(list[0]).toEqual({ atom: 'BODY[]' });
    expect((list[1] as { literal: Buffer }).literal.equals(raw)).toBe(true);
    expect(message).not.toHaveBeenCalled();
  });

  it('replaces NUL with 0x80 in BODY[] as Dovecot does', async () => {
    const s = await openSession([Buffer.from('Subject: nul\r\n\r\na\0b\r\n', 'latin1')]);
    await fetch(s, '1', [body()]);
    const list = s.ctx.values[0][2] as unknown[];
    expect((list[1] as { literal: Buffer }).literal.toString('latin1')).toBe('Subject: nul\r\n\r\na\x80b\r\n');
  });

  it('serves a partial with the origin octet in the name', async () => {
    const s = await openSession([plain]);
    await fetch(s, '1', [body({}, true, { offset: 6, length: 5 })]);
    expect(s.ctx.lines[0]).toBe('* 1 FETCH (BODY[]<6> {5}\r\nAlice)');
    await fetch(s, '1', [body({}, true, { offset: 100000, length: 5 })]);
    expect(s.ctx.lines[0]).toBe('* 1 FETCH (BODY[]<100000> {0}\r\n)');
  });

  it('extracts HEADER.FIELDS with upper-cased names in the response', async () => {
    const s = await openSession([plain]);
    await fetch(s, '1', [body({ text: 'HEADER.FIELDS', fields: ['subject', 'From'] })]);
    const line = s.ctx.lines[0];
    expect(line.startsWith('* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {')).toBe(true);
    expect(line).toContain('From: Alice <alice@example.org>\r\n');
    expect(line).toContain('Subject: Greetings\r\n');
    expect(line).not.toContain('To:');
  });

  it('serves RFC822.HEADER, RFC822.TEXT and RFC822 under their own names', async () => {
    const s = await openSession([plain]);
    await fetch(s, '1', [it_('RFC822.HEADER')]);
    expect(s.ctx.lines[0]).toMatch(/^\* 1 FETCH \(RFC822\.HEADER \{\d+\}\r\nFrom: Alice/);
    expect(s.ctx.lines[0]).toMatch(/\r\n\r\n\)$/);
    await fetch(s, '1', [it_('RFC822.TEXT')]);
    // RFC822.TEXT is not a PEEK: it sets \Seen (RFC822.HEADER did not).
    expect(s.ctx.lines[0]).toBe('* 1 FETCH (RFC822.TEXT {26}\r\nHello Bob.\r\nSecond line.\r\n FLAGS (\\Seen))');
    await fetch(s, '1', [it_('RFC822')]);
    expect(s.ctx.lines[0]).toContain('RFC822 {');
  });

  it('extracts a MIME part and answers NIL for a part that does not exist', async () => {
    const s = await openSession([multipart]);
    await fetch(s, '1', [body({ part: [1] }), body({ part: [9] })]);
    expect(s.ctx.lines[0]).toBe('* 1 FETCH (BODY[1] {10}\r\nfirst part BODY[9] NIL)');
  });

  it('returns ENVELOPE, BODY and BODYSTRUCTURE from the MIME layer', async () => {
    const s = await openSession([plain]);
    await fetch(s, '1', [it_('ENVELOPE'), it_('BODY'), it_('BODYSTRUCTURE')]);
    const line = s.ctx.lines[0];
    expect(line).toMatch(/^\* 1 FETCH \(ENVELOPE \("Mon, 01 Jan 2024 10:00:00 \+0000" "Greetings" \(\("Alice" NIL "alice" "example.org"\)\)/);
    expect(line).toMatch(/BODY \("text" "plain"/i);
    expect(line).toMatch(/BODYSTRUCTURE \("text" "plain"/i);
  });
});

describe('implicit \\Seen', () => {
  it('sets \\Seen on a non-PEEK body fetch and reports FLAGS', async () => {
    const s = await openSession([plain, { data: plain, flags: ['\\Seen'] }]);
    await fetch(s, '1:2', [body({ text: 'TEXT' }, false)]);
    expect(s.ctx.lines[0]).toMatch(/^\* 1 FETCH \(BODY\[TEXT\] \{\d+\}\r\nHello Bob\.\r\nSecond line\.\r\n FLAGS \(\\Seen\)\)$/);
    // Already seen: no FLAGS added.
    expect(s.ctx.lines[1]).not.toContain('FLAGS');
    const [m1] = await s.handle.get([1]);
    expect(m1.flags).toContain('\\Seen');
    expect(s.sel.meta.get(1)?.flags).toContain('\\Seen');
  });

  it('adds UID and MODSEQ to the implicit FLAGS when CONDSTORE is active', async () => {
    const s = await openSession([plain], { enable: ['CONDSTORE'] });
    await fetch(s, '1', [it_('RFC822')]);
    const [m1] = await s.handle.get([1]);
    expect(s.ctx.lines[0]).toMatch(new RegExp(`FLAGS \\(\\\\Seen\\) UID 1 MODSEQ \\(${m1.modSeq}\\)\\)$`));
  });

  it('leaves flags alone with BODY.PEEK and in a read-only mailbox', async () => {
    const s = await openSession([plain]);
    await fetch(s, '1', [body({}, true)]);
    expect((await s.handle.get([1]))[0].flags).toEqual([]);
    const ro = await openSession([plain], { readOnly: true });
    await fetch(ro, '1', [body({}, false)]);
    expect((await ro.handle.get([1]))[0].flags).toEqual([]);
    expect(ro.ctx.lines[0]).not.toContain('FLAGS');
  });
});

describe('BINARY', () => {
  it('decodes a part and uses ~{n} when it holds NUL', async () => {
    const s = await openSession([multipart]);
    await fetch(s, '1', [binary([2]), { type: 'BINARY.SIZE', part: [2] }]);
    const list = s.ctx.values[0][2] as unknown[];
    expect(list[0]).toEqual({ atom: 'BINARY[2]' });
    expect(list[1]).toEqual({ literal: Buffer.from([0x61, 0x00, 0x62, 0x0a]), binary: true });
    expect(list.slice(2)).toEqual([{ atom: 'BINARY.SIZE[2]' }, 4]);
    expect(s.ctx.lines[0]).toContain('BINARY[2] ~{4}\r\n');
  });

  it('serves a partial of the decoded data', async () => {
    const s = await openSession([multipart]);
    await fetch(s, '1', [binary([1], true, { offset: 6, length: 100 })]);
    expect(s.ctx.lines[0]).toBe('* 1 FETCH (BINARY[1]<6> {4}\r\npart)');
  });

  it('answers NO [UNKNOWN-CTE] for an encoding it cannot decode', async () => {
    const s = await openSession([multipart]);
    expect(await fetch(s, '1', [binary([3])])).toMatch(/^NO \[UNKNOWN-CTE\]/);
  });
});

describe('CONDSTORE / QRESYNC modifiers', () => {
  it('CHANGEDSINCE returns only newer messages, with MODSEQ', async () => {
    const s = await openSession([plain, plain, plain]);
    const before = (await s.handle.status()).highestModSeq;
    await s.handle.updateFlags([2], { action: 'add', flags: ['\\Flagged'] }, 'other');
    await fetch(s, '1:*', [it_('FLAGS')], { changedSince: before });
    const [m2] = await s.handle.get([2]);
    expect(s.ctx.lines.filter((l) => l.includes('FETCH'))).toEqual([`* 2 FETCH (FLAGS (\\Flagged) MODSEQ (${m2.modSeq}))`]);
    expect(s.ctx.condstoreActive).toBe(true);
  });

  it('VANISHED (EARLIER) lists expunged UIDs of the set before the FETCH data', async () => {
    const s = await openSession([plain, plain, plain, plain], { enable: ['QRESYNC'] });
    const since = (await s.handle.status()).highestModSeq;
    await s.handle.updateFlags([2, 3], { action: 'add', flags: ['\\Deleted'] }, 'other');
    await s.handle.expunge(undefined, 'other');
    // The session machine would already have told the client; the view no longer has them.
    s.sel.uids = [1, 4];
    await fetch(s, '1:*', [it_('FLAGS')], { uid: true, changedSince: since, vanished: true });
    expect(s.ctx.lines[0]).toBe('* VANISHED (EARLIER) 2:3');
    await fetch(s, '3:*', [it_('FLAGS')], { uid: true, changedSince: since, vanished: true });
    expect(s.ctx.lines[0]).toBe('* VANISHED (EARLIER) 3');
  });

  it('refuses VANISHED without QRESYNC or outside UID FETCH', async () => {
    const s = await openSession([plain]);
    expect(await fetch(s, '1', [it_('FLAGS')], { uid: true, changedSince: 1n, vanished: true })).toMatch(/^BAD/);
    s.ctx.enabled.add('QRESYNC');
    expect(await fetch(s, '1', [it_('FLAGS')], { uid: false, changedSince: 1n, vanished: true })).toMatch(/^BAD/);
  });
});

describe('expunged meanwhile', () => {
  it('serves metadata from the view but answers NO [EXPUNGEISSUED] when bytes are gone', async () => {
    const s = await openSession([plain, { data: plain, flags: ['\\Deleted'] }]);
    await s.handle.expunge(undefined, 'other');
    expect(await fetch(s, '2', [it_('FLAGS')])).toBe('OK Fetch completed.');
    expect(s.ctx.lines).toEqual(['* 2 FETCH (FLAGS (\\Deleted))']);
    expect(await fetch(s, '1:2', [body()])).toMatch(/^NO \[EXPUNGEISSUED\]/);
    expect(s.ctx.lines).toHaveLength(1);
  });
});

describe('structure cache', () => {
  it('serves ENVELOPE and BODYSTRUCTURE again without reading or parsing the message', async () => {
    const s = await openSession([plain, multipart]);
    await fetch(s, '1:2', [it_('ENVELOPE'), it_('BODYSTRUCTURE')]);
    const first = [...s.ctx.lines];
    const message = vi.spyOn(s.ctx, 'message');
    const read = vi.spyOn(s.handle, 'read');
    await fetch(s, '1:2', [it_('ENVELOPE'), it_('BODYSTRUCTURE')]);
    expect(s.ctx.lines).toEqual(first);
    expect(message).not.toHaveBeenCalled();
    expect(read).not.toHaveBeenCalled();
    // BODY (non-extensible) is a different answer, but the first FETCH computed it too and wrote
    // all three back to the store (the memory store keeps structures): still no parse.
    await fetch(s, '1', [it_('BODY')]);
    expect(message).not.toHaveBeenCalled();
    expect(s.ctx.lines[0]).toMatch(/^\* 1 FETCH \(BODY \(/);
  });

  it('keeps literal-free ASCII answers as one pre-encoded atom and others as values', () => {
    const cache = new StructureCache(1 << 20);
    expect(cache.set('k', 'ENVELOPE', ['a b', null, 3], false)).toEqual({ atom: '("a b" NIL 3)', checked: true });
    const wide = ['Grüße'];
    expect(cache.set('k', 'BODY', wide, false)).toBe(wide);
    expect(cache.set('k2', 'BODY', ['x\r\ny'], true)).toEqual(['x\r\ny']);
    expect(cache.get('k', 'ENVELOPE')).toEqual({ atom: '("a b" NIL 3)', checked: true });
    expect(cache.values('k')).toEqual({ ENVELOPE: { atom: '("a b" NIL 3)', checked: true }, BODY: wide });
    expect(cache.values('nope')).toBeUndefined();
    expect(cache.get('k', 'BODYSTRUCTURE')).toBeUndefined();
  });

  it('stays within its byte bound, evicting the least recently used first', () => {
    const cache = new StructureCache(2000);
    for (let i = 0; i < 50; i++) cache.set(`m${i}`, 'ENVELOPE', ['x'.repeat(100)], false);
    expect(cache.bytes).toBeLessThanOrEqual(2000);
    expect(cache.get('m0', 'ENVELOPE')).toBeUndefined();
    expect(cache.get('m49', 'ENVELOPE')).toBeDefined();
    const kept = cache.size;
    // Touch the oldest survivor, add one more: the survivor stays, the next oldest goes.
    const oldest = 50 - kept;
    expect(cache.get(`m${oldest}`, 'ENVELOPE')).toBeDefined();
    cache.set('new', 'ENVELOPE', ['x'.repeat(100)], false);
    expect(cache.get(`m${oldest}`, 'ENVELOPE')).toBeDefined();
    expect(cache.get(`m${oldest + 1}`, 'ENVELOPE')).toBeUndefined();
  });
});
