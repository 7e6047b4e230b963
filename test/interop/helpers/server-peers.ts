/**
 * Helpers for the server interop tests (test/interop/server-*.test.ts) and the server benchmarks:
 * start `imapkit serve` in-process or as a child process, start a private Dovecot, check that a
 * peer program is installed (fail under CI=true, skip loudly elsewhere), and run peer programs
 * without blocking the event loop (an in-process server must keep answering them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { startServe, type RunningServer, type ServeFlags } from '../../../src/cli/serve.js';
import { silentLogger } from '../../../src/log/logger.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Users every imapkit and Dovecot started here knows, all with password "pass" (as scripts/dovecot.sh). */
export const USERS = ['test1', 'test2', 'test3', 'test4', 'test5', 'test6', 'test7', 'test8', 'test9'];

const PEER_BINARIES: Record<string, string[]> = {
  dovecot: ['/usr/sbin/dovecot'],
  python3: [],
  curl: [],
  mbsync: [],
};

/** Absolute path of `name` on PATH (or a known location), or undefined. */
export function which(name: string): string | undefined {
  for (const p of PEER_BINARIES[name] ?? []) if (existsSync(p)) return p;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/**
 * Is the peer installed? Under CI=true a missing peer is an error (the test fails); elsewhere the
 * caller skips, and says so loudly so nobody mistakes a skip for a pass.
 */
export function havePeer(name: string, purpose: string): boolean {
  if (which(name)) return true;
  if (process.env.CI === 'true') throw new Error(`${name} is not installed (CI=true: failing instead of skipping ${purpose})`);
  console.warn(`\n########## ${name} is not installed: ${purpose} SKIPPED (run scripts/install-peers.sh) ##########\n`);
  return false;
}

/** A free TCP port on 127.0.0.1 (random, so parallel test runs do not collide). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A fresh temporary directory and a function that removes it. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `imapkit-${prefix}-`));
  // Dovecot's auth and mail processes run as other users and must reach into it (mkdtemp makes it 0700).
  chmodSync(dir, 0o755);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A Dovecot-style passwd-file with USERS (plain passwords: cheap logins, like the Dovecot peer's). */
export function writePasswdFile(file: string, users: string[] = USERS): void {
  writeFileSync(file, users.map((u) => `${u}:{PLAIN}pass`).join('\n') + '\n');
}

/** A running `imapkit serve` in this process. */
export interface ImapkitServer {
  port: number;
  running: RunningServer;
  stop(): Promise<void>;
}

/**
 * Run `imapkit serve` in this process, through the CLI's own startServe (flags, config, store,
 * user database), on 127.0.0.1 and a random port. `store` is a serve --store spec (default memory);
 * users come from a passwd-file in `dir` unless `flags.users` says otherwise.
 */
export async function startImapkit(dir: string, store = 'memory', flags: Partial<ServeFlags> = {}): Promise<ImapkitServer> {
  const passwd = path.join(dir, 'imapkit.passwd');
  if (!existsSync(passwd)) writePasswdFile(passwd);
  const running = await startServe(
    { host: '127.0.0.1', port: 0, store, users: `passwd:${passwd}`, failedLoginDelayMs: 0, maxConnectionsPerAddress: 0, ...flags },
    { stdout: new PassThrough(), env: { XDG_DATA_HOME: path.join(dir, 'xdg') } },
    silentLogger(),
  );
  return { port: running.port, running, stop: () => running.stop() };
}

/** `imapkit serve` as a child process. */
export interface ImapkitProcess {
  port: number;
  child: ChildProcess;
  /** What the process wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

/** The command line that runs the imapkit CLI from source: node --import tsx src/cli/main.ts. */
export function cliCommand(): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')] };
}

/**
 * Spawn `imapkit serve ARGS --host 127.0.0.1 --port PORT` and wait until it listens (it prints
 * "imapkit serving ..." then). Extra spawn options (environment) via `env`.
 */
export async function spawnImapkit(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; built?: boolean } = {}): Promise<ImapkitProcess> {
  const port = await freePort();
  // `built`: the compiled dist/ that `npx imapkit` runs (benchmarks), not the sources through tsx.
  const cli = opts.built ? { command: process.execPath, args: [path.join(ROOT, 'dist/cli/main.js')] } : cliCommand();
  const child = spawn(cli.command, [...cli.args, 'serve', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`imapkit serve did not start within ${opts.timeoutMs ?? 30_000} ms: ${err}`)), opts.timeoutMs ?? 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('imapkit serving')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`imapkit serve exited (${code}) before listening: ${err}`));
    });
  });
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
  };
  return { port, child, stderr: () => err, stop: () => signal('SIGTERM'), kill: () => signal('SIGKILL') };
}

/** A private Dovecot (scripts/dovecot.sh) on a random port. */
export interface DovecotServer {
  port: number;
  dir: string;
  stop(): Promise<void>;
}

/** Start a private Dovecot under `dir` (users test1..test9 / pass). */
export async function startDovecot(dir: string): Promise<DovecotServer> {
  const port = await freePort();
  const r = await run('bash', [path.join(ROOT, 'scripts/dovecot.sh'), 'start', dir, String(port)], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`dovecot.sh start failed (${r.code}): ${r.stderr}${r.stdout}`);
  return {
    port,
    dir,
    stop: async () => {
      await run('bash', [path.join(ROOT, 'scripts/dovecot.sh'), 'stop', dir], { timeoutMs: 30_000 });
    },
  };
}

/** Outcome of a program run. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/**
 * Run a program asynchronously (never spawnSync: an in-process server must keep serving it) and
 * collect its output. `input` goes to standard input; the program is killed after `timeoutMs`.
 */
export function run(command: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      err += `\n[killed after ${opts.timeoutMs ?? 60_000} ms]`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    let settled = false;
    const finish = (code: number | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const bytes = Buffer.concat(out);
      resolve({ code, stdout: bytes.toString('utf8'), stderr: err, stdoutBytes: bytes });
    };
    child.once('close', finish);
    // A daemon it started (dovecot) may hold our pipes open for ever: after exit, wait briefly, then stop reading.
    child.once('exit', (code) => {
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code);
      }, 200).unref();
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}
