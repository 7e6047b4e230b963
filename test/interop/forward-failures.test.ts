/**
 * Failures while mail keeps arriving, each ending with every message forwarded exactly once: the
 * source Dovecot killed and restarted during IDLE, and the target down for a while.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendRaw, duplicates, forwardBlock, haveDovecot, listMailbox, message, rawLogin, startDovecot, startForward, waitFor, type TestDovecot } from '../forward/helpers.js';

const enabled = haveDovecot();
const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

/** Append `n` messages to the source, `everyMs` apart, retrying each until the source takes it. */
function feeder(port: number, user: string, prefix: string, n: number, everyMs: number): { done: Promise<string[]>; sent: string[] } {
  const sent: string[] = [];
  const done = (async () => {
    for (let i = 0; i < n; i++) {
      const id = `${prefix}-${i}@family.example`;
      for (;;) {
        try {
          const c = await rawLogin(port, user);
          try {
            await appendRaw(c, 'INBOX', message({ id }));
          } finally {
            await c.close().catch(() => undefined);
          }
          break;
        } catch {
          // The source is down: mail waits at the sender's side too.
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      sent.push(`<${id}>`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
    return sent;
  })();
  return { done, sent };
}

function setup(): { dir: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-fwd-fail-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return { dir };
}

async function dovecots(): Promise<[TestDovecot, TestDovecot]> {
  const pair = await Promise.all([startDovecot(), startDovecot()]);
  cleanup.push(() => pair.forEach((d) => d.destroy()));
  return pair;
}

describe('imapkit forward under failures', () => {
  it('survives the source being killed and restarted during IDLE', async () => {
    if (!enabled) return;
    const [src, dst] = await dovecots();
    const { dir } = setup();
    const fwd = await startForward(dir, forwardBlock({ name: 'kill-src', src: src.port, srcUser: 'test1', dst: dst.port, dstUser: 'test1' }));
    try {
      const first = feeder(src.port, 'test1', 'before', 5, 50);
      await first.done;
      await waitFor('the first messages', async () => (await listMailbox(dst.port, 'test1')).length === 5, 15_000);
      // The forward is in IDLE now: kill every Dovecot process of the source, as a crash would.
      await waitFor('IDLE', () => fwd.logs().length > 0 && readState(fwd.stateDir, 'kill-src') === 'idle', 10_000);
      src.kill();
      const during = feeder(src.port, 'test1', 'after', 15, 60);
      await new Promise((r) => setTimeout(r, 1500));
      src.start();
      const sent = await during.done;
      await waitFor('every message', async () => (await listMailbox(dst.port, 'test1')).length >= 20, 30_000);
      const got = await listMailbox(dst.port, 'test1');
      expect(duplicates(got)).toEqual([]);
      expect(got.map((m) => m.messageId).sort()).toEqual([...first.sent, ...sent].sort());
      expect(fwd.logs().some((l) => l.msg === 'forward interrupted; reconnecting')).toBe(true);
    } finally {
      await fwd.stop();
    }
  });

  it('waits for a target that is down for a while and forwards everything once it is back', async () => {
    if (!enabled) return;
    const [src, dst] = await dovecots();
    const { dir } = setup();
    const fwd = await startForward(dir, forwardBlock({ name: 'kill-dst', src: src.port, srcUser: 'test2', dst: dst.port, dstUser: 'test2' }));
    try {
      const feed = feeder(src.port, 'test2', 'msg', 30, 80);
      await waitFor('some messages forwarded', async () => (await listMailbox(dst.port, 'test2')).length >= 3, 15_000);
      // Killed in the middle of the flow: an APPEND may be under way.
      dst.kill();
      await new Promise((r) => setTimeout(r, 2500));
      dst.start();
      const sent = await feed.done;
      await waitFor('every message', async () => (await listMailbox(dst.port, 'test2')).length >= 30, 30_000);
      await new Promise((r) => setTimeout(r, 500));
      const got = await listMailbox(dst.port, 'test2');
      expect(duplicates(got)).toEqual([]);
      expect(got.map((m) => m.messageId).sort()).toEqual([...sent].sort());
    } finally {
      await fwd.stop();
    }
  });
});

function readState(stateDir: string, name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(stateDir, `forward-${name}.status.json`), 'utf8')) as { state: string }).state;
  } catch {
    return undefined;
  }
}
