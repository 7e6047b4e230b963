/**
 * Helpers of the sync interop tests and the sync benchmark: a private Dovecot on a random port
 * (scripts/dovecot.sh), filling a Dovecot user's Maildir directly (fast, and how mail arrives by
 * an MDA), and reading a Maildir or an IMAP folder back as (Message-ID, body hash) for checks.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Run a program; resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 120_000, env: opts.env ?? process.env, cwd: opts.cwd, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Absolute path of a program on PATH (or /usr/sbin), or undefined. */
export function which(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin']) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** Is the peer installed? With CI=true a missing one throws (the test fails); else warn loudly and skip. */
export function havePeer(name: string, purpose: string): boolean {
  if (which(name)) return true;
  if (process.env.CI === 'true') throw new Error(`${name} is not installed (CI=true: failing instead of skipping ${purpose})`);
  console.warn(`\n########## ${name} is not installed: ${purpose} SKIPPED (run scripts/install-peers.sh) ##########\n`);
  return false;
}

/** A free TCP port on 127.0.0.1. */
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

/** A running private Dovecot. */
export interface Dovecot {
  dir: string;
  port: number;
  /** Maildir of a user (test1..test9). */
  maildir(user: string): string;
  stop(): Promise<void>;
}

/**
 * Start a private Dovecot in a fresh temporary directory. IDLE there also polls the mailbox every
 * second: Dovecot otherwise relies on inotify, whose per-user instance limit a busy test machine
 * exhausts (then it only looks every 30 s).
 */
export async function startDovecot(prefix = 'imapkit-sync-'): Promise<Dovecot> {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  // Dovecot's unprivileged processes read the passwd file and mail under it.
  chmodSync(dir, 0o755);
  const port = await freePort();
  // Output goes to a file: the daemon keeps inherited pipes open, which would hold execFile until its timeout.
  const log = path.join(dir, 'start.log');
  const r = await run('bash', ['-c', `"$0" start "$1" "$2" > "$3" 2>&1`, path.join(ROOT, 'scripts/dovecot.sh'), dir, String(port), log], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`dovecot.sh start failed (${r.code}): ${existsSync(log) ? readFileSync(log, 'utf8') : ''}`);
  appendFileSync(path.join(dir, 'dovecot.conf'), 'mailbox_idle_check_interval = 1 secs\n');
  const pid = Number(readFileSync(path.join(dir, 'run', 'master.pid'), 'utf8').trim());
  process.kill(pid, 'SIGHUP');
  // The reload restarts the login listener: wait until it answers again.
  for (let i = 0; i < 100; i++) {
    await new Promise((res) => setTimeout(res, 50));
    const ok = await new Promise<boolean>((res) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.destroy();
        res(true);
      });
      sock.on('error', () => res(false));
    });
    if (ok) break;
  }
  return {
    dir,
    port,
    maildir: (user) => path.join(dir, 'home', user, 'Maildir'),
    stop: async () => {
      await run('bash', [path.join(ROOT, 'scripts/dovecot.sh'), 'stop', dir], { timeoutMs: 30_000 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Owner of Dovecot's mail files (scripts/dovecot.sh: imapkit-test when root). */
function mailOwner(home: string): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const st = statSync(home);
  return { uid: st.uid, gid: st.gid };
}

function mkdirOwned(dir: string, owner: { uid: number; gid: number } | null): void {
  if (existsSync(dir)) return;
  mkdirOwned(path.dirname(dir), owner);
  mkdirSync(dir);
  if (owner) chownSync(dir, owner.uid, owner.gid);
}

let seq = 0;

/**
 * Put messages straight into a Maildir++ folder ('' or 'INBOX' for INBOX, 'A/B' for .A.B) as an
 * MDA would, with flags in the file names ("S", "FS", ...). Owned like the Maildir's home.
 */
export function fillMaildir(maildir: string, folder: string, messages: Array<{ raw: Buffer; flags?: string }>): void {
  const home = path.dirname(maildir);
  const owner = existsSync(home) ? mailOwner(home) : null;
  const dir = folder === '' || folder === 'INBOX' ? maildir : path.join(maildir, '.' + folder.split('/').join('.'));
  for (const sub of ['cur', 'new', 'tmp']) mkdirOwned(path.join(dir, sub), owner);
  if (dir !== maildir && !existsSync(path.join(dir, 'maildirfolder'))) {
    writeFileSync(path.join(dir, 'maildirfolder'), '');
    if (owner) chownSync(path.join(dir, 'maildirfolder'), owner.uid, owner.gid);
  }
  const host = os.hostname().replace(/[/:]/g, '_');
  const now = Math.floor(Date.now() / 1000);
  for (const m of messages) {
    const base = `${now}.M${++seq}P${process.pid}R${randomBytes(4).toString('hex')}.${host},S=${m.raw.length}`;
    const file = m.flags !== undefined ? path.join(dir, 'cur', `${base}:2,${m.flags}`) : path.join(dir, 'new', base);
    writeFileSync(file, m.raw);
    if (owner) chownSync(file, owner.uid, owner.gid);
  }
}

/**
 * Identity of a message for the checks: Message-ID (or "-") and SHA-256 of the CRLF-normalised
 * bytes; `stripTuid` drops the X-TUID header mbsync adds to messages it copies.
 */
export function identity(raw: Buffer, stripTuid = false): string {
  let text = raw.toString('latin1').replace(/\r\n/g, '\n');
  if (stripTuid) text = text.replace(/^X-TUID: [^\n]*\n/m, '');
  const head = text.split('\n\n', 1)[0] ?? '';
  const mid = /^message-id:[ \t]*(.*(?:\n[ \t].*)*)/im.exec(head)?.[1]?.replace(/\s+/g, '') ?? '-';
  return `${mid} ${createHash('sha256').update(text, 'latin1').digest('hex').slice(0, 16)}`;
}

/** Messages of one Maildir++ folder (all files in cur/ and new/), as sorted identities. */
export function maildirIdentities(maildir: string, folder = 'INBOX', stripTuid = false): string[] {
  const dir = folder === 'INBOX' ? maildir : path.join(maildir, '.' + folder.split('/').join('.'));
  const out: string[] = [];
  for (const sub of ['cur', 'new']) {
    const d = path.join(dir, sub);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) out.push(identity(readFileSync(path.join(d, f)), stripTuid));
  }
  return out.sort();
}

/** Maildir++ folder names ('INBOX', 'A/B') of a Maildir. */
export function maildirFolders(maildir: string): string[] {
  const out = ['INBOX'];
  for (const d of readdirSync(maildir)) if (d.startsWith('.') && d !== '.' && d !== '..' && statSync(path.join(maildir, d)).isDirectory()) out.push(d.slice(1).split('.').join('/'));
  return out.sort();
}

/** An imapflow client logged in to the private Dovecot. */
export async function imapClient(port: number, user: string): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, doSTARTTLS: false, auth: { user, pass: 'pass' }, logger: false, disableAutoIdle: true });
  await c.connect();
  return c;
}

/** Messages of an IMAP folder as sorted identities, and their flags by identity. */
export async function imapIdentities(port: number, user: string, folder = 'INBOX'): Promise<{ ids: string[]; flags: Map<string, string[]> }> {
  const c = await imapClient(port, user);
  try {
    const mb = await c.mailboxOpen(folder);
    const ids: string[] = [];
    const flags = new Map<string, string[]>();
    if (mb.exists > 0) {
      for await (const m of c.fetch('1:*', { source: true, flags: true, uid: true })) {
        const id = identity(m.source!);
        ids.push(id);
        flags.set(id, [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort());
      }
    }
    return { ids: ids.sort(), flags };
  } finally {
    await c.logout().catch(() => undefined);
  }
}

/** A simple message with a Message-ID. */
export function simpleMessage(id: string, body = `body of ${id}`): Buffer {
  return Buffer.from(`From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: ${id}\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\nMessage-ID: <${id}@sync.test>\r\n\r\n${body}\r\n`);
}

/** A fresh temporary directory. */
export function tempDir(prefix = 'imapkit-sync-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * How to run `imapkit …` as a child process: the built CLI when dist/ is current and registers
 * sync, else src/cli/main.ts through tsx when commands.ts registers sync, else the test shim.
 */
export function cliCommand(): { command: string; args: string[] } {
  const commandsSrc = readFileSync(path.join(ROOT, 'src/cli/commands.ts'), 'utf8');
  const registered = /['"]\.\/sync\.js['"]/.test(commandsSrc);
  const dist = path.join(ROOT, 'dist/cli/main.js');
  const distCommands = path.join(ROOT, 'dist/cli/commands.js');
  const built = path.join(ROOT, 'dist/sync/engine.js');
  const engineSrc = statSync(path.join(ROOT, 'src/sync/engine.ts')).mtimeMs;
  if (registered && existsSync(dist) && existsSync(distCommands) && /sync\.js/.test(readFileSync(distCommands, 'utf8')) && existsSync(built) && statSync(built).mtimeMs >= engineSrc) {
    return { command: process.execPath, args: [dist] };
  }
  if (registered) return { command: process.execPath, args: ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')] };
  return { command: process.execPath, args: ['--import', 'tsx', path.join(ROOT, 'test/interop/sync-cli.ts')] };
}

/**
 * A fast-starting `imapkit sync` for tests that spawn it many times: src/cli/sync.ts bundled once
 * with esbuild (tsx's own dependency) into node_modules/.cache, packages left external. Falls
 * back to cliCommand() when esbuild cannot be loaded.
 */
export async function bundledCli(): Promise<{ command: string; args: string[] }> {
  try {
    const esbuild = (await import('esbuild')) as { build: (o: Record<string, unknown>) => Promise<unknown> };
    const outdir = path.join(ROOT, 'node_modules', '.cache', 'imapkit-sync-test');
    mkdirSync(outdir, { recursive: true });
    // Bundles of earlier runs (one per test process) go once they are an hour old.
    for (const f of readdirSync(outdir)) {
      const p = path.join(outdir, f);
      if (Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { force: true });
    }
    const outfile = path.join(outdir, `cli-${process.pid}-${Date.now()}.mjs`);
    await esbuild.build({
      entryPoints: [path.join(ROOT, 'test/interop/sync-cli.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      outfile,
      logLevel: 'silent',
    });
    return { command: process.execPath, args: [outfile] };
  } catch {
    return cliCommand();
  }
}
