/** MOVE / UID MOVE on a fake session over the memory store. */
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/protocol/ast.js';
import { moveCommand } from '../../src/server/commands/move.js';
import { mail, openSession, seqSet, tagged, type TestSession } from './messages-helpers.js';

type MoveCmd = Extract<Command, { name: 'COPY' | 'MOVE' }>;

async function move(s: TestSession, set: string, mailbox: string, uid = false): Promise<string> {
  s.ctx.clear();
  const cmd: MoveCmd = { tag: 'A1', name: 'MOVE', uid, sequence: seqSet(set), mailbox };
  return tagged(await moveCommand(s.ctx, cmd));
}

const m = (subject: string): string => mail({ From: 'a@example.org', Subject: subject });

describe('MOVE', () => {
  it('sends COPYUID untagged, then EXPUNGE with adjusted numbers, and updates the view', async () => {
    const s = await openSession([m('a'), m('b'), m('c'), m('d')], { mailboxes: ['Archive'] });
    const v = (await s.user.status('Archive')).uidValidity;
    s.sel.savedResult = [2, 4];
    expect(await move(s, '2,4', 'Archive')).toBe('OK Move completed.');
    expect(s.ctx.lines).toEqual([`* OK [COPYUID ${v} 2,4 1:2] Moved UIDs.`, '* 2 EXPUNGE', '* 3 EXPUNGE']);
    expect(s.sel.uids).toEqual([1, 3]);
    expect([...s.sel.meta.keys()].sort()).toEqual([1, 3]);
    expect(s.sel.savedResult).toEqual([]);
    expect((await s.handle.list()).map((x) => x.uid)).toEqual([1, 3]);
    expect((await s.user.status('Archive')).messages).toBe(2);
  });

  it('sends VANISHED instead of EXPUNGE under QRESYNC', async () => {
    const s = await openSession([m('a'), m('b'), m('c')], { mailboxes: ['Archive'], enable: ['QRESYNC'] });
    await move(s, '1:2', 'Archive', true);
    expect(s.ctx.lines.slice(1)).toEqual(['* VANISHED 1:2']);
    expect(s.sel.uids).toEqual([3]);
  });

  it('answers NO [TRYCREATE] for a missing target and leaves the view alone', async () => {
    const s = await openSession([m('a')]);
    expect(await move(s, '1', 'Nowhere')).toMatch(/^NO \[TRYCREATE\]/);
    expect(s.sel.uids).toEqual([1]);
    expect(s.ctx.lines).toEqual([]);
  });

  it('refuses a read-only mailbox', async () => {
    const s = await openSession([m('a')], { mailboxes: ['Archive'], readOnly: true });
    expect(await move(s, '1', 'Archive')).toMatch(/^NO .*read-only/);
    expect((await s.user.status('Archive')).messages).toBe(0);
  });

  it('answers BAD for a sequence number beyond the mailbox', async () => {
    const s = await openSession([m('a')], { mailboxes: ['Archive'] });
    expect(await move(s, '3', 'Archive')).toMatch(/^BAD/);
  });
});
