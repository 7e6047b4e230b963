/** SORT / UID SORT and THREAD / UID THREAD handlers on a fake session over the memory store. */
import { describe, expect, it, vi } from 'vitest';
import type { Command, SearchKey, SearchReturn, SortKey } from '../../src/protocol/ast.js';
import { sortCommand } from '../../src/server/commands/sort.js';
import { threadCommand } from '../../src/server/commands/thread.js';
import { subjectIsReply } from '../../src/server/search/sortdata.js';
import { mail, openSession, tagged, type TestMessage, type TestSession } from './messages-helpers.js';

type SortCmd = Extract<Command, { name: 'SORT' }>;
type ThreadCmd = Extract<Command, { name: 'THREAD' }>;

async function sort(
  s: TestSession,
  criteria: Array<SortKey['key'] | `-${SortKey['key']}`>,
  o: { uid?: boolean; search?: SearchKey; returnOptions?: SearchReturn; charset?: string } = {},
): Promise<string> {
  s.ctx.clear();
  const cmd: SortCmd = {
    tag: 'A1',
    name: 'SORT',
    uid: o.uid ?? false,
    criteria: criteria.map((c) => (c.startsWith('-') ? { key: c.slice(1) as SortKey['key'], reverse: true } : { key: c as SortKey['key'], reverse: false })),
    charset: o.charset ?? 'UTF-8',
    search: o.search ?? { type: 'all' },
    returnOptions: o.returnOptions,
  };
  return tagged(await sortCommand(s.ctx, cmd));
}

async function thread(s: TestSession, algorithm: string, o: { uid?: boolean; search?: SearchKey } = {}): Promise<string> {
  s.ctx.clear();
  const cmd: ThreadCmd = { tag: 'A1', name: 'THREAD', uid: o.uid ?? false, algorithm, charset: 'UTF-8', search: o.search ?? { type: 'all' } };
  return tagged(await threadCommand(s.ctx, cmd));
}

const corpus: TestMessage[] = [
  { data: mail({ From: 'Zed <zed@example.org>', To: 'amy@example.org', Cc: 'm@example.org', Subject: 'Re: banana', Date: 'Tue, 02 Jan 2024 10:00:00 +0000' }), date: new Date('2024-01-05T00:00:00Z') },
  { data: mail({ From: 'bob@example.org', To: '"Yvonne" <carl@example.org>', Subject: 'apple', Date: 'Mon, 01 Jan 2024 10:00:00 +0000' }, 'x'.repeat(500)), date: new Date('2024-01-04T00:00:00Z') },
  { data: mail({ From: 'Al <cid@example.org>', To: 'Xavier <bea@example.org>', Cc: 'a@example.org', Subject: 'Cherry', Date: 'Wed, 03 Jan 2024 10:00:00 +0100' }), date: new Date('2024-01-06T00:00:00Z') },
  // No Date header: sorts by its INTERNALDATE, the earliest of all.
  { data: mail({ From: 'dan@example.org', Subject: '[list] Fwd: Apple' }), date: new Date('2023-12-01T00:00:00Z') },
];

describe('SORT', () => {
  it('sorts by ARRIVAL, SIZE and DATE (missing Date uses INTERNALDATE)', async () => {
    const s = await openSession(corpus);
    await sort(s, ['ARRIVAL']);
    expect(s.ctx.lines).toEqual(['* SORT 4 2 1 3']);
    await sort(s, ['-SIZE', 'ARRIVAL']);
    expect(s.ctx.lines[0].startsWith('* SORT 2 ')).toBe(true);
    await sort(s, ['DATE']);
    expect(s.ctx.lines).toEqual(['* SORT 4 2 1 3']);
  });

  it('sorts by base subject, case-insensitively, ties in sequence order', async () => {
    const s = await openSession(corpus);
    await sort(s, ['SUBJECT']);
    // "apple" (2) and "[list] Fwd: Apple" (4) share the base subject "APPLE".
    expect(s.ctx.lines).toEqual(['* SORT 2 4 1 3']);
    await sort(s, ['-SUBJECT']);
    expect(s.ctx.lines).toEqual(['* SORT 3 1 2 4']);
  });

  it('sorts by FROM, TO, CC mailbox and by DISPLAYFROM / DISPLAYTO', async () => {
    const s = await openSession(corpus);
    await sort(s, ['FROM']);
    expect(s.ctx.lines).toEqual(['* SORT 2 3 4 1']);
    await sort(s, ['TO']);
    // Message 4 has no To: the empty string sorts first.
    expect(s.ctx.lines).toEqual(['* SORT 4 1 3 2']);
    await sort(s, ['CC']);
    expect(s.ctx.lines).toEqual(['* SORT 2 4 3 1']);
    await sort(s, ['DISPLAYFROM']);
    expect(s.ctx.lines).toEqual(['* SORT 3 2 4 1']);
    await sort(s, ['DISPLAYTO']);
    expect(s.ctx.lines).toEqual(['* SORT 4 1 3 2']);
  });

  it('sorts only the search matches and answers UIDs for UID SORT', async () => {
    const s = await openSession(corpus);
    await sort(s, ['-ARRIVAL'], { uid: true, search: { type: 'header', field: 'subject', value: 'apple' } });
    expect(s.ctx.lines).toEqual(['* SORT 2 4']);
  });

  it('does not read messages for ARRIVAL or SIZE', async () => {
    const s = await openSession(corpus);
    const spy = vi.spyOn(s.ctx, 'message');
    await sort(s, ['SIZE', 'ARRIVAL']);
    expect(spy).not.toHaveBeenCalled();
  });

  it('answers ESORT (RFC 5267): ALL in sort order, MIN/MAX first and last', async () => {
    const s = await openSession(corpus);
    await sort(s, ['ARRIVAL'], { returnOptions: ['MIN', 'MAX', 'ALL', 'COUNT'] });
    expect(s.ctx.lines).toEqual(['* ESEARCH (TAG "A1") MIN 4 MAX 3 ALL 4,2,1,3 COUNT 4']);
    await sort(s, ['ARRIVAL'], { returnOptions: ['SAVE'] });
    expect(s.ctx.lines).toEqual([]);
    expect(s.sel.savedResult).toEqual([1, 2, 3, 4]);
  });

  it('refuses an unknown charset', async () => {
    const s = await openSession(corpus);
    expect(await sort(s, ['ARRIVAL'], { charset: 'X-NONE' })).toMatch(/^NO \[BADCHARSET/);
  });
});

describe('reply detection', () => {
  it('knows the subject markers RFC 5256 strips', () => {
    expect(subjectIsReply('Re: x')).toBe(true);
    expect(subjectIsReply('[list] FWD: x')).toBe(true);
    expect(subjectIsReply('x (fwd)')).toBe(true);
    expect(subjectIsReply('[Fwd: x]')).toBe(true);
    expect(subjectIsReply('Regarding x')).toBe(false);
    expect(subjectIsReply('[list] x')).toBe(false);
  });
});

describe('THREAD', () => {
  const threaded: TestMessage[] = [
    mail({ 'Message-ID': '<a@x>', Subject: 'Plans', Date: 'Mon, 01 Jan 2024 10:00:00 +0000' }),
    mail({ 'Message-ID': '<b@x>', Subject: 'Re: Plans', 'In-Reply-To': '<a@x>', Date: 'Mon, 01 Jan 2024 11:00:00 +0000' }),
    mail({ 'Message-ID': '<c@x>', Subject: 'Other', Date: 'Mon, 01 Jan 2024 09:00:00 +0000' }),
    mail({ 'Message-ID': '<d@x>', Subject: 'Re: Plans', References: '<a@x> <b@x>', Date: 'Mon, 01 Jan 2024 12:00:00 +0000' }),
    mail({ 'Message-ID': '<e@x>', Subject: 'Re: Plans', References: '<a@x>', Date: 'Mon, 01 Jan 2024 13:00:00 +0000' }),
  ];

  it('threads by REFERENCES', async () => {
    const s = await openSession(threaded);
    expect(await thread(s, 'REFERENCES')).toBe('OK Thread completed.');
    expect(s.ctx.lines).toEqual(['* THREAD (3)(1 (2 4)(5))']);
  });

  it('threads by ORDEREDSUBJECT', async () => {
    const s = await openSession(threaded);
    await thread(s, 'orderedsubject');
    expect(s.ctx.lines).toEqual(['* THREAD (3)(1 (2)(4)(5))']);
  });

  it('answers UIDs for UID THREAD, only for matches, and an empty THREAD for none', async () => {
    const s = await openSession(threaded);
    await thread(s, 'REFERENCES', { uid: true, search: { type: 'uid', set: { kind: 'ranges', ranges: [{ start: 1, end: 2 }] } } });
    expect(s.ctx.lines).toEqual(['* THREAD (1 2)']);
    await thread(s, 'REFERENCES', { search: { type: 'flag', flag: '\\Flagged', set: true } });
    expect(s.ctx.lines).toEqual(['* THREAD']);
  });

  it('refuses an unknown algorithm', async () => {
    const s = await openSession(threaded);
    expect(await thread(s, 'REFS2')).toMatch(/^BAD/);
  });
});
