/** EXPUNGE / UID EXPUNGE on a fake session over the memory store. */
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/protocol/ast.js';
import { expungeCommand } from '../../src/server/commands/expunge.js';
import { mail, openSession, seqSet, tagged, type TestSession } from './messages-helpers.js';

type ExpungeCmd = Extract<Command, { name: 'EXPUNGE' }>;

async function expunge(s: TestSession, set?: string): Promise<string> {
  s.ctx.clear();
  const cmd: ExpungeCmd = set === undefined ? { tag: 'A1', name: 'EXPUNGE', uid: false } : { tag: 'A1', name: 'EXPUNGE', uid: true, sequence: seqSet(set) };
  return tagged(await expungeCommand(s.ctx, cmd));
}

const del = (subject: string): { data: string; flags: string[] } => ({ data: mail({ Subject: subject }), flags: ['\\Deleted'] });
const keep = (subject: string): string => mail({ Subject: subject });

describe('EXPUNGE', () => {
  it('removes \\Deleted messages with EXPUNGE numbers adjusted as it goes', async () => {
    const s = await openSession([keep('1'), del('2'), del('3'), keep('4'), del('5')]);
    expect(await expunge(s)).toBe('OK Expunge completed.');
    // Sequence 2 goes; then old 3 is now 2; then old 5 is now 3.
    expect(s.ctx.lines).toEqual(['* 2 EXPUNGE', '* 2 EXPUNGE', '* 3 EXPUNGE']);
    expect(s.sel.uids).toEqual([1, 4]);
    expect((await s.handle.list()).map((x) => x.uid)).toEqual([1, 4]);
  });

  it('UID EXPUNGE removes only \\Deleted messages of the set', async () => {
    const s = await openSession([del('1'), del('2'), keep('3'), del('4')]);
    await expunge(s, '2:3');
    expect(s.ctx.lines).toEqual(['* 2 EXPUNGE']);
    expect(s.sel.uids).toEqual([1, 3, 4]);
  });

  it('sends VANISHED under QRESYNC', async () => {
    const s = await openSession([del('1'), keep('2'), del('3')], { enable: ['QRESYNC'] });
    await expunge(s);
    expect(s.ctx.lines).toEqual(['* VANISHED 1,3']);
    expect(s.sel.uids).toEqual([2]);
  });

  it('says nothing when nothing is \\Deleted', async () => {
    const s = await openSession([keep('1')]);
    expect(await expunge(s)).toBe('OK Expunge completed.');
    expect(s.ctx.lines).toEqual([]);
  });

  it('refuses a read-only mailbox', async () => {
    const s = await openSession([del('1')], { readOnly: true });
    expect(await expunge(s)).toMatch(/^NO .*read-only/);
    expect(s.sel.uids).toEqual([1]);
  });

  it('does not report messages the client never saw', async () => {
    const s = await openSession([del('1')]);
    // Another session appends a \Deleted message; this view does not know it yet.
    await s.user.append('INBOX', [{ data: Buffer.from('Subject: new\r\n\r\nx\r\n'), flags: ['\\Deleted'] }], 'other');
    await expunge(s);
    expect(s.ctx.lines).toEqual(['* 1 EXPUNGE']);
    expect(s.sel.uids).toEqual([]);
  });
});
