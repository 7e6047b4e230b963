/** COPY / UID COPY on a fake session over the memory store. */
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/protocol/ast.js';
import { copyCommand } from '../../src/server/commands/copy.js';
import { formatSet, inRanges, invalidMessageSet } from '../../src/server/search/sets.js';
import { mail, openSession, seqSet, tagged, type TestSession } from './messages-helpers.js';

type CopyCmd = Extract<Command, { name: 'COPY' | 'MOVE' }>;

async function copy(s: TestSession, set: string, mailbox: string, uid = false): Promise<string> {
  s.ctx.clear();
  const cmd: CopyCmd = { tag: 'A1', name: 'COPY', uid, sequence: seqSet(set), mailbox };
  return tagged(await copyCommand(s.ctx, cmd));
}

const m = (subject: string): string => mail({ From: 'a@example.org', Subject: subject });

describe('set helpers', () => {
  it('formats runs in the given order', () => {
    expect(formatSet([1, 2, 3, 5, 7, 8])).toBe('1:3,5,7:8');
    expect(formatSet([5, 3, 4])).toBe('5,3:4');
    expect(formatSet([])).toBe('');
  });

  it('matches numbers against ranges with * and reversed ranges', () => {
    expect(inRanges(seqSet('5:2'), 3, 10)).toBe(true);
    expect(inRanges(seqSet('8:*'), 12, 12)).toBe(true);
    expect(inRanges(seqSet('8:*'), 7, 12)).toBe(false);
  });

  it('flags sequence numbers beyond the view', () => {
    expect(invalidMessageSet(seqSet('1:3'), 3)).toBe(false);
    expect(invalidMessageSet(seqSet('4'), 3)).toBe(true);
    expect(invalidMessageSet(seqSet('*'), 0)).toBe(true);
    expect(invalidMessageSet({ kind: 'saved' }, 0)).toBe(false);
  });
});

describe('COPY', () => {
  it('copies and answers COPYUID with matching source and destination sets', async () => {
    const s = await openSession([m('a'), m('b'), m('c')], { mailboxes: ['Archive'] });
    const archive = await s.user.status('Archive');
    const r = await copy(s, '1,3', 'Archive');
    expect(r).toBe(`OK [COPYUID ${archive.uidValidity} 1,3 1:2] Copy completed.`);
    expect((await s.user.status('Archive')).messages).toBe(2);
    // The source is untouched.
    expect(s.sel.uids).toEqual([1, 2, 3]);
    expect(s.ctx.lines).toEqual([]);
  });

  it('copies by UID and keeps flags', async () => {
    const s = await openSession([m('a'), { data: m('b'), flags: ['\\Flagged'] }], { mailboxes: ['Archive'] });
    expect(await copy(s, '2:*', 'Archive', true)).toMatch(/^OK \[COPYUID \d+ 2 1\]/);
    const target = await s.user.open('Archive');
    expect((await target.list())[0].flags).toEqual(['\\Flagged']);
  });

  it('answers NO [TRYCREATE] when the target does not exist, with or without messages', async () => {
    const s = await openSession([m('a')]);
    expect(await copy(s, '1', 'Nowhere')).toMatch(/^NO \[TRYCREATE\]/);
    expect(await copy(s, '99', 'Nowhere', true)).toMatch(/^NO \[TRYCREATE\]/);
  });

  it('answers OK without COPYUID when no message matches', async () => {
    const s = await openSession([m('a')], { mailboxes: ['Archive'] });
    expect(await copy(s, '50:60', 'Archive', true)).toBe('OK No messages found.');
  });

  it('answers BAD for a sequence number beyond the mailbox', async () => {
    const s = await openSession([m('a')], { mailboxes: ['Archive'] });
    expect(await copy(s, '2', 'Archive')).toMatch(/^BAD .*Invalid messageset/);
  });

  it('decodes the modified UTF-7 target name and refuses an invalid one', async () => {
    const s = await openSession([m('a')], { mailboxes: ['Entwürfe'] });
    expect(await copy(s, '1', 'Entw&APw-rfe')).toMatch(/^OK \[COPYUID/);
    expect(await copy(s, '1', 'Bad&-name&')).toMatch(/^NO/);
  });

  it('is allowed from a read-only mailbox', async () => {
    const s = await openSession([m('a')], { mailboxes: ['Archive'], readOnly: true });
    expect(await copy(s, '1', 'Archive')).toMatch(/^OK \[COPYUID/);
  });
});
