/**
 * `imapkit forward` killed with SIGKILL at 30 random moments while mail keeps arriving, restarted
 * each time; at the end every message of the source is on the target exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendRaw, cliEntry, duplicates, forwardBlock, haveDovecot, listMailbox, message, rawLogin, ROOT, startDovecot, type TestDovecot } from '../forward/helpers.js';

const enabled = haveDovecot();
let src: TestDovecot;
let dst: TestDovecot;
let dir: string;

beforeAll(async () => {
  if (!enabled) return;
  [src, dst] = await Promise.all([startDovecot(), startDovecot()]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-fwd-crash-'));
});
afterAll(() => {
  src?.destroy();
  dst?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('imapkit forward killed with SIGKILL', () => {
  it('forwards every message exactly once across 30 kills at random moments', async () => {
    if (!enabled) return;
    const cfg = path.join(dir, 'forward.toml');
    writeFileSync(cfg, `stateDir = "state"\n${forwardBlock({ name: 'crash', src: src.port, srcUser: 'test1', dst: dst.port, dstUser: 'test1' })}`);
    const statusFile = path.join(dir, 'state', 'forward-crash.status.json');
    const logFile = path.join(dir, 'forward.log');
    const run = (extra: string[] = []) =>
      spawn(process.execPath, ['--import', 'tsx', ...cliEntry(), 'forward', '--config', cfg, '--log', logFile, ...extra], { cwd: ROOT, stdio: 'ignore' });

    // Mail keeps arriving during the whole test.
    const feed = await rawLogin(src.port, 'test1');
    let feeding = true;
    let sentCount = 0;
    const feeder = (async () => {
      while (feeding) {
        await appendRaw(feed, 'INBOX', message({ id: `crash-${sentCount}@family.example`, body: 'x'.repeat(200 + ((sentCount * 7919) % 4000)) }));
        sentCount++;
        await sleep(120);
      }
    })();

    const moments: number[] = [];
    for (let k = 0; k < 30; k++) {
      const child = run();
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const duringStartup = k % 5 === 0;
      if (!duringStartup) {
        // Wait until this process is connected and forwarding (its pid and state in the status
        // file), then pick the moment: new mail is then being copied every ~120 ms.
        for (let i = 0; i < 300; i++) {
          const st = existsSync(statusFile) ? readFileSync(statusFile, 'utf8') : '';
          if (st.includes(`"pid": ${child.pid}`) && /"state": "(forwarding|idle)"/.test(st)) break;
          await sleep(10);
        }
      }
      const moment = Math.floor(Math.random() * (duringStartup ? 1200 : 400));
      moments.push(moment);
      await sleep(moment);
      child.kill('SIGKILL');
      await exited;
    }
    feeding = false;
    await feeder;
    await feed.close();

    // One last run forwards what is left and exits.
    const last = run(['--once']);
    const code = await new Promise<number | null>((r) => last.once('exit', (c) => r(c)));
    expect(code).toBe(0);

    const source = await listMailbox(src.port, 'test1');
    const target = await listMailbox(dst.port, 'test1');
    expect(source).toHaveLength(sentCount);
    expect(duplicates(target)).toEqual([]);
    expect(target.map((m) => m.messageId).sort()).toEqual(source.map((m) => m.messageId).sort());
    const log = readFileSync(logFile, 'utf8');
    const recovered = (log.match(/an unconfirmed copy was found on the target/g) ?? []).length;
    console.log(`forward-crash: ${sentCount} messages, 30 kills (moments ${Math.min(...moments)}-${Math.max(...moments)} ms), ${recovered} unconfirmed copies found on the target instead of appended again`);
  }, 240_000);
});
