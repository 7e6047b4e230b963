/** STORE / UID STORE handler on a fake session over the memory store. */
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/protocol/ast.js';
import { storeCommand } from '../../src/server/commands/store.js';
import { mail, openSession, seqSet, tagged, type TestSession } from './messages-helpers.js';

type StoreCmd = Extract<Command, { name: 'STORE' }>;

const msg = mail({ From: 'a@example.org', Subject: 'x' });

async function store(
  s: TestSession,
  set: string,
  action: StoreCmd['action'],
  flags: string[],
  o: { uid?: boolean; silent?: boolean; unchangedSince?: bigint } = {},
): Promise<string> {
  s.ctx.clear();
  const cmd: StoreCmd = {
    tag: 'A1',
    name: 'STORE',
    uid: o.uid ?? false,
    sequence: seqSet(set),
    action,
    silent: o.silent ?? false,
    flags,
    unchangedSince: o.unchangedSince,
  };
  return tagged(await storeCommand(s.ctx, cmd));
}

async function flagsOf(s: TestSession, uid: number): Promise<string[]> {
  return (await s.handle.get([uid]))[0].flags;
}

describe('STORE', () => {
  it('adds flags and reports the new flags of every message named', async () => {
    const s = await openSession([msg, { data: msg, flags: ['\\Seen'] }]);
    expect(await store(s, '1:2', 'add', ['\\Seen'])).toBe('OK Store completed.');
    expect(s.ctx.lines).toEqual(['* 1 FETCH (FLAGS (\\Seen))', '* 2 FETCH (FLAGS (\\Seen))']);
    expect(await flagsOf(s, 1)).toEqual(['\\Seen']);
  });

  it('removes and replaces flags, canonicalising system flag case', async () => {
    const s = await openSession([{ data: msg, flags: ['\\Seen', '\\Flagged', 'work'] }]);
    await store(s, '1', 'remove', ['\\flagged']);
    expect(await flagsOf(s, 1)).toEqual(['\\Seen', 'work']);
    await store(s, '1', 'set', ['\\DRAFT', 'home']);
    expect([...(await flagsOf(s, 1))].sort()).toEqual(['\\Draft', 'home']);
    expect(s.ctx.lines[0]).toMatch(/^\* 1 FETCH \(FLAGS \(/);
  });

  it('is silent with .SILENT but still remembers what the client now knows', async () => {
    const s = await openSession([msg]);
    await store(s, '1', 'add', ['\\Deleted'], { silent: true });
    expect(s.ctx.lines).toEqual([]);
    expect(s.sel.meta.get(1)?.flags).toEqual(['\\Deleted']);
  });

  it('includes UID in UID STORE answers and MODSEQ once CONDSTORE is active', async () => {
    const s = await openSession([msg, msg], { enable: ['CONDSTORE'] });
    await store(s, '2', 'add', ['\\Answered'], { uid: true });
    const [m] = await s.handle.get([2]);
    expect(s.ctx.lines).toEqual([`* 2 FETCH (UID 2 FLAGS (\\Answered) MODSEQ (${m.modSeq}))`]);
  });

  it('includes UID in STORE answers too once CONDSTORE is active (RFC 7162 3.1)', async () => {
    const s = await openSession([msg], { enable: ['CONDSTORE'] });
    await store(s, '1', 'add', ['\\Seen']);
    const [m] = await s.handle.get([1]);
    expect(s.ctx.lines).toEqual([`* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (${m.modSeq}))`]);
  });

  it('reports MODSEQ for changed messages even with .SILENT under CONDSTORE (RFC 7162 3.1.3)', async () => {
    const s = await openSession([msg, { data: msg, flags: ['\\Deleted'] }], { enable: ['CONDSTORE'] });
    await store(s, '1:2', 'add', ['\\Deleted'], { silent: true, uid: true });
    const [m] = await s.handle.get([1]);
    expect(s.ctx.lines).toEqual([`* 1 FETCH (UID 1 MODSEQ (${m.modSeq}))`]);
  });

  it('UNCHANGEDSINCE changes only unmodified messages and names the rest in MODIFIED', async () => {
    const s = await openSession([msg, msg, msg]);
    const base = (await s.handle.status()).highestModSeq;
    await s.handle.updateFlags([2], { action: 'add', flags: ['x'] }, 'other');
    const r = await store(s, '1:3', 'add', ['\\Seen'], { unchangedSince: base });
    expect(r).toBe('OK [MODIFIED 2] Conditional store failed.');
    expect(await flagsOf(s, 1)).toEqual(['\\Seen']);
    expect(await flagsOf(s, 2)).toEqual(['x']);
    expect(s.ctx.condstoreActive).toBe(true);
    expect(s.ctx.lines.filter((l) => l.includes('FETCH')).map((l) => l.split(' ')[1])).toEqual(['1', '3']);
  });

  it('names UIDs in MODIFIED for UID STORE and sequence numbers for STORE', async () => {
    const s = await openSession([{ data: msg, flags: ['\\Deleted'] }, msg, msg]);
    await s.handle.expunge(undefined, 'other');
    s.sel.uids = [2, 3];
    const base = (await s.handle.status()).highestModSeq;
    await s.handle.updateFlags([3], { action: 'add', flags: ['x'] }, 'other');
    expect(await store(s, '1:*', 'add', ['\\Flagged'], { uid: true, unchangedSince: base })).toBe('OK [MODIFIED 3] Conditional store failed.');
    // UID 2 (sequence 1) changed in the first STORE, UID 3 (sequence 2) before it.
    expect(await store(s, '1:*', 'add', ['\\Answered'], { unchangedSince: base })).toBe('OK [MODIFIED 1:2] Conditional store failed.');
  });

  it('refuses \\Recent and unknown system flags with BAD', async () => {
    const s = await openSession([msg]);
    expect(await store(s, '1', 'add', ['\\Recent'])).toBe('BAD Error in IMAP command STORE: Invalid system flag \\RECENT');
    expect(await store(s, '1', 'add', ['\\Bogus'])).toMatch(/^BAD/);
    expect(await flagsOf(s, 1)).toEqual([]);
  });

  it('refuses changes in a read-only mailbox', async () => {
    const s = await openSession([msg], { readOnly: true });
    expect(await store(s, '1', 'add', ['\\Seen'])).toMatch(/^NO .*read-only/);
    expect(await flagsOf(s, 1)).toEqual([]);
  });

  it('answers BAD for a sequence number beyond the mailbox', async () => {
    const s = await openSession([msg]);
    expect(await store(s, '2', 'add', ['\\Seen'])).toMatch(/^BAD .*Invalid messageset/);
  });

  it('updates the session view so the change is not echoed later', async () => {
    const s = await openSession([msg]);
    await store(s, '1', 'add', ['\\Flagged']);
    const [m] = await s.handle.get([1]);
    expect(s.sel.meta.get(1)).toEqual(m);
  });
});
