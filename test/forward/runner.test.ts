import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { runForwards, type ForwardSession, type SessionFactory } from '../../src/forward/runner.js';
import { backoffDelay } from '../../src/forward/backoff.js';
import { resolveForwardConfig, forwardConfigSchema } from '../../src/forward/config.js';
import { formatStatuses, readStatuses } from '../../src/forward/status.js';
import { RepositoryError } from '../../src/sync/repository.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-runner-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function config(names: string[]) {
  const data = forwardConfigSchema.parse({
    stateDir: dir,
    forward: names.map((name) => ({
      name,
      source: { host: 'src.example', user: name, password: 'p' },
      target: { user: `${name}@gmail.com`, password: 'p' },
      pollInterval: 1,
    })),
  });
  return resolveForwardConfig(data, path.join(dir, 'f.toml'));
}

function memoryLog(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c.toString()); cb(); } });
  return { log: pino({ level: 'debug' }, stream), lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('runForwards', () => {
  it('keeps a healthy forward going while another keeps failing, with growing backoff', async () => {
    const controller = new AbortController();
    const opens: Record<string, number[]> = { alice: [], bob: [] };
    let aliceCycles = 0;
    const factory: SessionFactory = (spec, ctx): ForwardSession => ({
      open: async () => {
        opens[spec.name]!.push(Date.now());
        if (spec.name === 'bob') throw new RepositoryError('connect', 'connect ECONNREFUSED 192.0.2.1:993');
      },
      cycle: async () => {
        aliceCycles++;
        ctx.events.forwarded({ folder: 'INBOX', uid: aliceCycles, messageId: `<m${aliceCycles}@x>`, arrivedAt: new Date(Date.now() - 500), confirmedAt: new Date() });
        if (aliceCycles === 20) controller.abort();
        return { forwarded: 1, rejected: 0 };
      },
      waitForChange: (signal) => new Promise((r) => setTimeout(r, signal.aborted ? 0 : 5)),
      close: async () => undefined,
      canIdle: () => true,
    });
    const { log, lines } = memoryLog();
    const results = await runForwards(config(['alice', 'bob']), {
      log, signal: controller.signal, sessionFactory: factory, backoff: { baseMs: 2, maxMs: 40, random: () => 0.5 },
    });
    expect(results.find((r) => r.name === 'alice')).toMatchObject({ ok: true, forwarded: 20 });
    expect(opens.alice).toHaveLength(1);
    expect(opens.bob!.length).toBeGreaterThan(2);
    const retries = lines().filter((l) => l.forward === 'bob' && l.msg === 'forward interrupted; reconnecting').map((l) => l.retryInMs as number);
    // Ceilings 2, 4, 8, 16 (capped at 40), of which 3/4 with random 0.5; 1.5 rounds to 2.
    expect(retries.slice(0, 4)).toEqual([2, 3, 6, 12]);
    expect(Math.max(...retries)).toBeLessThanOrEqual(40);
    const statuses = await readStatuses(dir, ['alice', 'bob']);
    const text = formatStatuses(statuses, Date.now(), () => false);
    expect(text).toContain('alice: not running');
    expect(text).toMatch(/last forwarded: .*<m20@x>.*lag 0\.\d\ds/);
    expect(text).toContain('bob@src.example:993/INBOX -> bob@gmail.com@imap.gmail.com:993/INBOX');
    expect(text).toMatch(/bob:[\s\S]*last error \(\d+s ago\): connect ECONNREFUSED/);
  });

  it('re-issues IDLE on time and polls at the interval when IDLE is off', async () => {
    const controller = new AbortController();
    const waits: Array<{ maxMs: number; idle: boolean }> = [];
    const factory: SessionFactory = (spec): ForwardSession => ({
      open: async () => undefined,
      cycle: async () => ({ forwarded: 0, rejected: 0 }),
      waitForChange: async (_s, maxMs, idle) => {
        waits.push({ maxMs, idle });
        if (waits.length === 6) controller.abort();
      },
      close: async () => undefined,
      canIdle: () => spec.name !== 'noidle',
    });
    const { log } = memoryLog();
    await runForwards(config(['alice', 'noidle']), { log, signal: controller.signal, sessionFactory: factory, idleRenewMs: 1234 });
    expect(waits.filter((w) => w.idle).every((w) => w.maxMs === 1234)).toBe(true);
    expect(waits.filter((w) => !w.idle).every((w) => w.maxMs === 1000)).toBe(true);
    expect(waits.some((w) => w.idle) && waits.some((w) => !w.idle)).toBe(true);
    controller.abort();
    const waits2: boolean[] = [];
    const c2 = new AbortController();
    await runForwards(config(['alice']), {
      log, noIdle: true, signal: c2.signal,
      sessionFactory: () => ({ open: async () => undefined, cycle: async () => ({ forwarded: 0, rejected: 0 }), waitForChange: async (_s, _m, idle) => { waits2.push(idle); c2.abort(); }, close: async () => undefined, canIdle: () => true }),
    });
    expect(waits2).toEqual([false]);
  });

  it('with --once reports failure instead of retrying, and a thrown bug stops only its forward', async () => {
    const { log } = memoryLog();
    const results = await runForwards(config(['good', 'bad']), {
      log, once: true, signal: new AbortController().signal,
      sessionFactory: (spec) => ({
        open: async () => undefined,
        cycle: async () => {
          if (spec.name === 'bad') throw new RepositoryError('auth', 'bad@src.example: authentication failed');
          return { forwarded: 0, rejected: 0 };
        },
        waitForChange: async () => undefined,
        close: async () => undefined,
        canIdle: () => true,
      }),
    });
    expect(results.find((r) => r.name === 'good')!.ok).toBe(true);
    const bad = results.find((r) => r.name === 'bad')!;
    expect(bad.ok).toBe(false);
    expect(bad.error).toMatch(/authentication failed \(check the credentials of forward bad\)/);
    const st = JSON.parse(readFileSync(path.join(dir, 'forward-bad.status.json'), 'utf8')) as { state: string; lastError: { message: string } };
    expect(st.state).toBe('stopped');
    expect(st.lastError.message).toMatch(/authentication failed/);
  });
});

describe('backoffDelay', () => {
  it('grows exponentially, stays within [ceiling/2, ceiling] and is capped', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(300_000, 1000 * 2 ** attempt);
      expect(backoffDelay(attempt, { random: () => 0 })).toBe(Math.round(ceiling / 2));
      expect(backoffDelay(attempt, { random: () => 0.999999 })).toBeLessThanOrEqual(ceiling);
    }
    expect(backoffDelay(3)).toBeGreaterThanOrEqual(4000);
    expect(backoffDelay(3)).toBeLessThanOrEqual(8000);
  });
});
