/**
 * imapkit forward between two private Dovecots: the first-run window, duplicates by Message-ID,
 * mail without one, INTERNALDATE, live forwarding with IDLE and with polling, two forwards in one
 * process, afterForward, resuming after a stop, and the status display.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendRaw, duplicates, forwardBlock, haveDovecot, listMailbox, message, rawLogin, startDovecot, startForward, waitFor, type TestDovecot } from '../forward/helpers.js';
import { formatStatuses, readStatuses } from '../../src/forward/status.js';

const enabled = haveDovecot();
let src: TestDovecot;
let dst: TestDovecot;
let dir: string;
const DAY = 86_400_000;

beforeAll(async () => {
  if (!enabled) return;
  [src, dst] = await Promise.all([startDovecot(), startDovecot()]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-fwd-basic-'));
});
afterAll(() => {
  src?.destroy();
  dst?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('imapkit forward (Dovecot to Dovecot)', () => {
  it('forwards the window, each Message-ID once, keeps dates, follows live mail, resumes after a stop', async () => {
    if (!enabled) return;
    const now = Date.now();
    const a = await rawLogin(src.port, 'test1');
    await appendRaw(a, 'INBOX', message({ id: 'old@family.example' }), new Date(now - 10 * DAY));
    await appendRaw(a, 'INBOX', message({ id: 'recent@family.example' }), new Date(now - 3 * DAY));
    await appendRaw(a, 'INBOX', message({ id: null, subject: 'no id at all' }), new Date(now - 2 * DAY));
    await appendRaw(a, 'INBOX', message({ id: 'dup@family.example' }), new Date(now - DAY));
    await appendRaw(a, 'INBOX', message({ id: 'dup@family.example' }), new Date(now - DAY));
    const b = await rawLogin(src.port, 'test2');
    await appendRaw(b, 'INBOX', message({ id: 'b1@family.example' }));

    const toml =
      forwardBlock({ name: 'alice', src: src.port, srcUser: 'test1', dst: dst.port, dstUser: 'test1', targetExtra: 'label = "family"' }) +
      forwardBlock({ name: 'bob', src: src.port, srcUser: 'test2', dst: dst.port, dstUser: 'test2', extra: 'idle = false\npollInterval = "1s"\nafterForward = "move:Forwarded"' });
    let fwd = await startForward(dir, toml);
    try {
      await waitFor('the window on the target', async () => (await listMailbox(dst.port, 'test1')).length >= 3);
      await waitFor('bob moved', async () => (await listMailbox(src.port, 'test2', 'Forwarded')).length === 1);
      const t1 = await listMailbox(dst.port, 'test1');
      expect(t1.map((m) => m.messageId).sort()).toEqual([null, '<dup@family.example>', '<recent@family.example>'].sort());
      const s1 = await listMailbox(src.port, 'test1');
      const srcRecent = s1.find((m) => m.messageId === '<recent@family.example>')!;
      expect(t1.find((m) => m.messageId === '<recent@family.example>')!.internalDate.getTime()).toBe(srcRecent.internalDate.getTime());
      expect(await listMailbox(src.port, 'test2')).toHaveLength(0);
      expect((await listMailbox(dst.port, 'test2')).map((m) => m.messageId)).toEqual(['<b1@family.example>']);
      // Dovecot has no Gmail labels: said once, and the forward goes on.
      expect(fwd.logs().some((l) => l.forward === 'alice' && /label ignored/.test(String(l.msg)))).toBe(true);

      // Live: IDLE for alice, polling every second for bob.
      await appendRaw(a, 'INBOX', message({ id: 'live1@family.example' }));
      await appendRaw(b, 'INBOX', message({ id: 'b2@family.example' }));
      await waitFor('live mail', async () => (await listMailbox(dst.port, 'test1')).some((m) => m.messageId === '<live1@family.example>'), 10_000);
      await waitFor('polled mail', async () => (await listMailbox(dst.port, 'test2')).some((m) => m.messageId === '<b2@family.example>'), 10_000);
    } finally {
      const outcomes = await fwd.stop();
      expect(outcomes.every((o) => o.ok)).toBe(true);
    }

    // Mail that arrives while imapkit is stopped is forwarded when it starts again.
    await appendRaw(a, 'INBOX', message({ id: 'while-down@family.example' }));
    fwd = await startForward(dir, toml);
    try {
      await waitFor('mail from the downtime', async () => (await listMailbox(dst.port, 'test1')).some((m) => m.messageId === '<while-down@family.example>'), 15_000);
    } finally {
      await fwd.stop();
    }
    await a.close();
    await b.close();
    const t1 = await listMailbox(dst.port, 'test1');
    expect(duplicates(t1)).toEqual([]);
    expect(t1).toHaveLength(5);
    expect(t1.some((m) => m.messageId === '<old@family.example>')).toBe(false);

    const text = formatStatuses(await readStatuses(fwd.stateDir, ['alice', 'bob']));
    expect(text).toMatch(/alice: not running/);
    expect(text).toMatch(/last forwarded: .*<while-down@family\.example>.*lag \d/);
    expect(text).toMatch(/bob:[\s\S]*<b2@family\.example>/);
  });
});
