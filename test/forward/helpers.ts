/**
 * Helpers of the forward tests: private Dovecots (scripts/dovecot.sh) that can be killed and
 * restarted, a local OAuth2 token + introspection server, messages, and a raw look at mailboxes.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RawImapClient, fetchItems, text, quote } from '../interop/helpers/raw-imap.js';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** Is Dovecot here? Under CI=true a missing Dovecot fails the test; elsewhere it skips loudly. */
export function haveDovecot(): boolean {
  const found = spawnSync('sh', ['-c', 'command -v dovecot || test -x /usr/sbin/dovecot']).status === 0;
  if (found) return true;
  if (process.env.CI === 'true') throw new Error('dovecot is not installed (CI=true: failing instead of skipping)');
  console.warn('\n########## dovecot is not installed: this forward interop test is SKIPPED (run scripts/install-peers.sh) ##########\n');
  return false;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A private Dovecot that can go down and come back on the same port with the same mail. */
export interface TestDovecot {
  port: number;
  dir: string;
  /** Stop it (SIGTERM to the master, then SIGKILL). */
  stop(): void;
  /** Kill every process of this instance with SIGKILL, as a crash would. */
  kill(): void;
  /** Start it again on the same port. */
  start(): void;
  /** Stop and delete everything. */
  destroy(): void;
  /** Disconnect a user's sessions (doveadm kick). */
  kick(user: string): void;
  /** The server log. */
  log(): string;
}

/**
 * Run scripts/dovecot.sh with its output going to a file: the Dovecot it starts inherits the
 * script's stdout/stderr and keeps them open, so a pipe (execFileSync's default) never ends.
 */
export function dovecotScript(args: string[], env: NodeJS.ProcessEnv, logFile: string): void {
  const fd = openSync(logFile, 'a');
  try {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts/dovecot.sh'), ...args], { stdio: ['ignore', fd, fd], env });
    if (r.status !== 0) throw new Error(`dovecot.sh ${args.join(' ')} failed:\n${readFileSync(logFile, 'utf8').slice(-1500)}`);
  } finally {
    closeSync(fd);
  }
}

/** Start a Dovecot with scripts/dovecot.sh; `env` passes DOVECOT_OAUTH2_URL and friends; `extraConf` is appended to its config. */
export async function startDovecot(env: Record<string, string> = {}, extraConf?: string): Promise<TestDovecot> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-fwd-dovecot-'));
  // Dovecot's unprivileged auth process must reach the passwd file inside.
  chmodSync(dir, 0o755);
  const script = path.join(ROOT, 'scripts/dovecot.sh');
  const fullEnv = { ...process.env, ...env };
  let port = 0;
  const conf = path.join(dir, 'dovecot.conf');
  const scriptLog = path.join(os.tmpdir(), `${path.basename(dir)}.script.log`);
  const startRaw = (): void => {
    if (extraConf) {
      // The script rewrites the config on each start: append our lines, then restart from it.
      spawnSync('bash', [script, 'stop', dir]);
      const base = readFileSync(conf, 'utf8');
      if (!base.includes(extraConf)) appendFileSync(conf, `\n${extraConf}\n`);
      const bin = spawnSync('sh', ['-c', 'command -v dovecot']).stdout.toString().trim() || '/usr/sbin/dovecot';
      const fd = openSync(scriptLog, 'a');
      try {
        spawnSync(bin, ['-c', conf], { stdio: ['ignore', fd, fd] });
      } finally {
        closeSync(fd);
      }
      for (let i = 0; i < 100; i++) {
        if (spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]).status === 0) return;
        spawnSync('sleep', ['0.1']);
      }
      throw new Error(`dovecot with extra config did not start:\n${readFileSync(path.join(dir, 'dovecot.log'), 'utf8').slice(-2000)}`);
    }
  };
  let lastErr: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    port = await freePort();
    try {
      dovecotScript(['start', dir, String(port)], fullEnv, scriptLog);
      startRaw();
      await (await rawLogin(port, 'test9')).close();
      lastErr = undefined;
      break;
    } catch (err) {
      lastErr = err;
    }
  }
  if (lastErr) throw new Error(`dovecot did not start: ${String(lastErr)}`);
  const pids = (): number[] => {
    // Every process of this instance has our config path (or base_dir) on its command line or is a child of the master.
    const out = spawnSync('ps', ['-eo', 'pid=,ppid=,args=']).stdout.toString();
    const rows = out
      .split('\n')
      .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!, m[3]!]);
    const master = rows.find((r) => (r[2] ?? '').includes(conf));
    if (!master) return [];
    const all = new Set([Number(master[0])]);
    let grew = true;
    while (grew) {
      grew = false;
      for (const r of rows) if (all.has(Number(r[1])) && !all.has(Number(r[0]))) {
        all.add(Number(r[0]));
        grew = true;
      }
    }
    return [...all];
  };
  const d: TestDovecot = {
    port,
    dir,
    stop: () => {
      spawnSync('bash', [script, 'stop', dir]);
    },
    kill: () => {
      for (const pid of pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      // A killed master leaves its pid file and sockets, and a new one refuses to start over them.
      rmSync(path.join(dir, 'run'), { recursive: true, force: true });
    },
    start: () => {
      for (let i = 0; i < 50; i++) {
        try {
          dovecotScript(['start', dir, String(port)], fullEnv, scriptLog);
          startRaw();
          return;
        } catch (err) {
          // The port may still be held by a dying process.
          if (i === 49) throw err;
          spawnSync('sleep', ['0.2']);
        }
      }
    },
    destroy: () => {
      spawnSync('bash', [script, 'stop', dir]);
      d.kill();
      rmSync(dir, { recursive: true, force: true });
    },
    kick: (user: string) => {
      const doveadm = spawnSync('sh', ['-c', 'command -v doveadm || echo /usr/bin/doveadm']).stdout.toString().trim();
      spawnSync(doveadm, ['-c', conf, 'kick', user], { stdio: 'pipe' });
    },
    log: () => {
      try {
        return readFileSync(path.join(dir, 'dovecot.log'), 'utf8');
      } catch {
        return '';
      }
    },
  };
  return d;
}

/** A local OAuth2 server: a token endpoint (refresh grant) and an introspection endpoint Dovecot asks. */
export interface TestOAuth {
  url: string;
  tokenUrl: string;
  introspectUrl: string;
  /** Refreshes served. */
  refreshes: number;
  /** Introspection requests answered (active or not). */
  introspections: number;
  /** Mint a token for the user (valid until revoked or `ttlMs` passes). */
  mint(user: string, ttlMs?: number): string;
  /** Make a token invalid at the server from now on (as if it expired early). */
  revoke(token: string): void;
  /** Revoke every token handed out so far. */
  revokeAll(): void;
  /** Lifetime given to refreshed tokens, and the expires_in reported. */
  refreshTtlMs: number;
  close(): Promise<void>;
}

/** Start the OAuth2 server. Refresh token "rt-<user>" refreshes tokens of <user>; client "cid"/"csecret". */
export async function startOAuth(): Promise<TestOAuth> {
  const tokens = new Map<string, { user: string; expires: number; revoked: boolean }>();
  let n = 0;
  const o: TestOAuth = {
    url: '',
    tokenUrl: '',
    introspectUrl: '',
    refreshes: 0,
    introspections: 0,
    refreshTtlMs: 3_600_000,
    mint: (user, ttlMs = 3_600_000) => {
      const t = `at-${user}-${++n}-${Math.random().toString(36).slice(2)}`;
      tokens.set(t, { user, expires: Date.now() + ttlMs, revoked: false });
      return t;
    },
    revoke: (t) => {
      const e = tokens.get(t);
      if (e) e.revoked = true;
    },
    revokeAll: () => {
      for (const e of tokens.values()) e.revoked = true;
    },
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const json = (status: number, obj: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(obj));
      };
      if (req.url === '/introspect') {
        o.introspections++;
        const e = tokens.get(form.get('token') ?? '');
        const active = !!e && !e.revoked && e.expires > Date.now();
        return json(200, active ? { active: true, username: e.user } : { active: false });
      }
      if (req.url === '/token') {
        if (form.get('grant_type') !== 'refresh_token' || form.get('client_id') !== 'cid' || form.get('client_secret') !== 'csecret') return json(400, { error: 'invalid_client' });
        const m = /^rt-(.+)$/.exec(form.get('refresh_token') ?? '');
        if (!m) return json(400, { error: 'invalid_grant' });
        o.refreshes++;
        return json(200, { access_token: o.mint(m[1]!, o.refreshTtlMs), expires_in: Math.round(o.refreshTtlMs / 1000), token_type: 'Bearer' });
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  o.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  o.tokenUrl = `${o.url}/token`;
  o.introspectUrl = `${o.url}/introspect`;
  o.close = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); });
  return o;
}

/** A message with a Message-ID (unless `id` is null), CRLF line ends. */
export function message(opts: { id: string | null; subject?: string; date?: Date; body?: string; extraHeaders?: string }): Buffer {
  const lines = [
    'From: Family Server <noreply@family.example>',
    'To: alice@family.example',
    `Subject: ${opts.subject ?? `test ${opts.id ?? 'no id'}`}`,
    `Date: ${(opts.date ?? new Date()).toUTCString().replace('GMT', '+0000')}`,
  ];
  if (opts.id !== null) lines.push(`Message-ID: <${opts.id}>`);
  if (opts.extraHeaders) lines.push(opts.extraHeaders);
  lines.push('MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', opts.body ?? `body of ${opts.id ?? 'a message without id'}`, '');
  return Buffer.from(lines.join('\r\n'));
}

/** IMAP date-time for APPEND. */
export function imapDate(d: Date): string {
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const p = (x: number): string => String(x).padStart(2, '0');
  return `"${p(d.getUTCDate())}-${mon}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000"`;
}

/** A logged-in raw client (password "pass"); retries while Dovecot's auth service starts ([UNAVAILABLE]). */
export async function rawLogin(port: number, user: string): Promise<RawImapClient> {
  for (let i = 0; ; i++) {
    const c = await RawImapClient.connect(port);
    const r = await c.command(`LOGIN ${quote(user)} "pass"`);
    if (r.status === 'OK') return c;
    await c.close();
    if (i > 50 || r.code !== 'UNAVAILABLE') throw new Error(`LOGIN ${user} failed: ${r.status} [${r.code ?? ''}] ${r.text}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** APPEND messages (optionally with an INTERNALDATE) on an open raw client. */
export async function appendRaw(c: RawImapClient, mailbox: string, msg: Buffer, date?: Date): Promise<void> {
  const r = await c.command([`APPEND ${quote(mailbox)} ${date ? `${imapDate(date)} ` : ''}`, msg]);
  if (r.status !== 'OK') throw new Error(`APPEND failed: ${r.status} ${r.text}`);
}

/** A message as the tests see it on a mailbox. */
export interface Seen {
  uid: number;
  messageId: string | null;
  internalDate: Date;
  size: number;
  flags: string[];
}

/** List a mailbox: UID, Message-ID, INTERNALDATE, size, flags. */
export async function listMailbox(port: number, user: string, mailbox = 'INBOX'): Promise<Seen[]> {
  const c = await rawLogin(port, user);
  try {
    const sel = await c.command(`EXAMINE ${quote(mailbox)}`);
    if (sel.status !== 'OK') return [];
    const r = await c.command('UID FETCH 1:* (UID INTERNALDATE RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])');
    const out: Seen[] = [];
    for (const u of r.untagged) {
      if (u.values[1] !== 'FETCH') continue;
      const items = fetchItems(u.values);
      let header = '';
      for (const [k, v] of items) if (k.startsWith('BODY[HEADER.FIELDS')) header = text(v) ?? '';
      const m = /message-id:\s*(<[^>]*>)/i.exec(header.replace(/\r\n\s+/g, ' '));
      const flags = items.get('FLAGS');
      out.push({
        uid: Number(text(items.get('UID'))),
        messageId: m ? m[1]! : null,
        internalDate: new Date(text(items.get('INTERNALDATE')) ?? ''),
        size: Number(text(items.get('RFC822.SIZE'))),
        flags: Array.isArray(flags) ? flags.map((f) => text(f) ?? '') : [],
      });
    }
    return out;
  } finally {
    await c.close();
  }
}

/** Poll until `check` returns true (or throw after `timeoutMs` with `what`). */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Message-IDs seen more than once. */
export function duplicates(list: Seen[]): string[] {
  const count = new Map<string, number>();
  for (const m of list) if (m.messageId) count.set(m.messageId, (count.get(m.messageId) ?? 0) + 1);
  return [...count].filter(([, c]) => c > 1).map(([id]) => id);
}

/** The CLI entry to run as a child process: src/cli/main.ts once forward is registered there, else a test entry. */
export function cliEntry(): string[] {
  const commands = readFileSync(path.join(ROOT, 'src/cli/commands.ts'), 'utf8');
  return commands.includes('forward.js') ? [path.join(ROOT, 'src/cli/main.ts')] : [path.join(ROOT, 'test/forward/cli-entry.ts')];
}

/** Account settings for a config: a user of a test Dovecot, plaintext on loopback. */
export function account(port: number, user: string, extra = ''): string {
  return `host = "127.0.0.1"\nport = ${port}\ntls = false\nuser = "${user}"\n${extra.includes('oauth2') ? '' : 'password = "pass"\n'}${extra}`;
}

/** A [[forward]] block. */
export function forwardBlock(o: { name: string; src: number; srcUser: string; dst: number; dstUser: string; extra?: string; sourceExtra?: string; targetExtra?: string }): string {
  return [
    '[[forward]]',
    `name = "${o.name}"`,
    o.extra ?? '',
    '[forward.source]',
    account(o.src, o.srcUser, o.sourceExtra),
    '[forward.target]',
    account(o.dst, o.dstUser, o.targetExtra),
    '',
  ].join('\n');
}

/** A forward running in this process, with its log lines kept. */
export interface InProcessForward {
  /** Abort the forwards and wait for them to stop. */
  stop(): Promise<import('../../src/forward/runner.js').ForwardOutcome[]>;
  /** Wait for the forwards to end by themselves (once mode). */
  done(): Promise<import('../../src/forward/runner.js').ForwardOutcome[]>;
  logs(): Array<Record<string, unknown>>;
  stateDir: string;
}

/** Write a config and run its forwards in this process until stop(). */
export async function startForward(dir: string, toml: string, opts: Partial<import('../../src/forward/runner.js').RunnerOptions> = {}): Promise<InProcessForward> {
  const { writeFileSync } = await import('node:fs');
  const { Writable } = await import('node:stream');
  const { pino } = await import('pino');
  const { loadForwardConfig } = await import('../../src/forward/config.js');
  const { runForwards } = await import('../../src/forward/runner.js');
  const file = path.join(dir, 'forward.toml');
  writeFileSync(file, `stateDir = "state"\n${toml}`);
  const config = await loadForwardConfig(file);
  const lines: string[] = [];
  const stream = new Writable({
    write(c: Buffer, _e, cb) {
      lines.push(c.toString());
      if (process.env.FORWARD_TEST_LOG) process.stderr.write(c);
      cb();
    },
  });
  const log = pino({ level: 'debug' }, stream);
  const controller = new AbortController();
  const done = runForwards(config, { log, signal: controller.signal, backoff: { baseMs: 200, maxMs: 1500, authBaseMs: 200 }, ...opts });
  return {
    stateDir: config.stateDir,
    stop: async () => {
      controller.abort();
      return done;
    },
    done: () => done,
    logs: () => lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
