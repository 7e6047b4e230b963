/**
 * Test helpers for the proxy: a raw IMAP test client, peers (Dovecot and friends) that skip loudly
 * when missing (and fail under CI=true), free ports, throwaway certificates.
 */
import net from 'node:net';
import tls from 'node:tls';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** Is a peer program installed? Under CI=true a missing peer throws (the test fails); elsewhere it warns loudly. */
export function peer(bin: string): boolean {
  const found = spawnSync('sh', ['-c', `command -v ${bin} || test -x /usr/sbin/${bin}`]).status === 0;
  if (found) return true;
  if (process.env.CI === 'true') throw new Error(`peer "${bin}" is not installed (CI=true: failing instead of skipping)`);
  console.warn(`\n########## ${bin} is not installed: this proxy interop test is SKIPPED (run scripts/install-peers.sh) ##########\n`);
  return false;
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A private Dovecot on a random port (scripts/dovecot.sh). */
export interface Dovecot {
  port: number;
  dir: string;
  stop(): void;
}

/** Start a Dovecot; `env` passes DOVECOT_USERS / DOVECOT_OAUTH2_URL. */
export async function startDovecot(env: Record<string, string> = {}): Promise<Dovecot> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-proxy-dovecot-'));
  // Dovecot's auth process (an unprivileged user) must reach the passwd-file inside.
  chmodSync(dir, 0o755);
  let lastErr: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = await freePort();
    try {
      // The daemon inherits the script's stdio: pipes would keep execFileSync waiting, so use a file.
      execFileSync('bash', ['-c', 'bash "$0" start "$1" "$2" > "$1/start.log" 2>&1', path.join(ROOT, 'scripts/dovecot.sh'), dir, String(port)], {
        env: { ...process.env, ...env },
        stdio: 'ignore',
        timeout: 30_000,
      });
      return {
        port,
        dir,
        stop: () => {
          spawnSync('bash', [path.join(ROOT, 'scripts/dovecot.sh'), 'stop', dir]);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      lastErr = existsSync(path.join(dir, 'start.log')) ? readFileSync(path.join(dir, 'start.log'), 'utf8') : err;
    }
  }
  throw new Error(`dovecot did not start: ${String(lastErr)}`);
}

/** A throwaway self-signed certificate for 127.0.0.1/localhost (needs openssl). */
export function selfSignedCert(): { cert: string; key: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-proxy-cert-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ], { stdio: 'pipe' });
    return { cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8'), key: readFileSync(path.join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A tagged reply as the test client saw it. */
export interface Reply {
  status: string;
  text: string;
  /** Untagged and continuation lines before the tagged one (literal bodies inlined). */
  lines: string[];
  line: string;
}

/** A raw IMAP client for tests: exact bytes out, lines (with literals) in. */
export class TestClient {
  greeting = '';
  /** Every complete response line received, in order (literal bodies inlined). */
  readonly received: string[] = [];
  readonly closed: Promise<void>;
  private buf: Buffer = Buffer.alloc(0);
  private literal = 0;
  private partial = '';
  private waiters: Array<{ test: (line: string, i: number) => boolean; resolve: (i: number) => void }> = [];
  private seq = 0;
  private consumed = 0;

  private constructor(public socket: net.Socket) {
    socket.setNoDelay(true);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (d) => this.onData(d));
    socket.on('error', () => undefined);
  }

  /** Connect (optionally with implicit TLS) and read the greeting. */
  static async connect(port: number, opts: { tls?: boolean; host?: string } = {}): Promise<TestClient> {
    const host = opts.host ?? '127.0.0.1';
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s: net.Socket = opts.tls
        ? tls.connect({ host, port, rejectUnauthorized: false }, () => resolve(s))
        : net.connect({ host, port }, () => resolve(s));
      s.once('error', reject);
    });
    const c = new TestClient(socket);
    c.greeting = c.received[0] ?? (await c.nextLine());
    c.consumed = 1;
    return c;
  }

  /** Upgrade after a STARTTLS OK. */
  async startTls(): Promise<void> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const t = tls.connect({ socket: raw, rejectUnauthorized: false }, () => resolve(t));
      t.once('error', reject);
    });
    s.on('data', (d) => this.onData(d));
    s.on('error', () => undefined);
    this.socket = s;
  }

  /** Write raw bytes. */
  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Send `tag text\r\n` and wait for the tagged reply. */
  async cmd(text: string, tag = `t${++this.seq}`): Promise<Reply> {
    this.send(`${tag} ${text}\r\n`);
    return this.reply(tag);
  }

  /** Wait for the tagged reply of `tag`; returns it with the lines since the previous reply. */
  async reply(tag: string): Promise<Reply> {
    const idx = await this.waitLine((l) => l.startsWith(`${tag} `));
    const lines = this.received.slice(this.consumed, idx);
    this.consumed = idx + 1;
    const line = this.received[idx];
    const rest = line.slice(tag.length + 1);
    const sp = rest.indexOf(' ');
    return { status: sp === -1 ? rest : rest.slice(0, sp), text: sp === -1 ? '' : rest.slice(sp + 1), lines, line };
  }

  /** Wait for a line matching `re` (from the start of the session). */
  async waitFor(re: RegExp): Promise<string> {
    const i = await this.waitLine((l) => re.test(l));
    return this.received[i];
  }

  /** The next line not yet received. */
  nextLine(): Promise<string> {
    const n = this.received.length;
    return this.waitLine((_l) => true, n).then((i) => this.received[i]);
  }

  /** Close the socket. */
  close(): void {
    this.socket.destroy();
  }

  private waitLine(test: (line: string) => boolean, from = 0): Promise<number> {
    for (let i = from; i < this.received.length; i++) if (test(this.received[i])) return Promise.resolve(i);
    return new Promise((resolve, reject) => {
      const w = { test: (l: string, i: number) => i >= from && test(l), resolve };
      this.waiters.push(w);
      void this.closed.then(() => {
        if (this.waiters.includes(w)) reject(new Error(`connection closed; received:\n${this.received.join('\n')}`));
      });
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      if (this.literal > 0) {
        if (this.buf.length < this.literal) return;
        this.partial += this.buf.subarray(0, this.literal).toString('latin1');
        this.buf = this.buf.subarray(this.literal);
        this.literal = 0;
        continue;
      }
      const lf = this.buf.indexOf(0x0a);
      if (lf === -1) return;
      const text = this.buf.subarray(0, lf + 1).toString('latin1');
      this.buf = this.buf.subarray(lf + 1);
      const m = /\{(\d+)\}\r\n$/.exec(text);
      if (m) {
        this.partial += text;
        this.literal = Number(m[1]);
        continue;
      }
      const line = (this.partial + text).replace(/\r?\n$/, '');
      this.partial = '';
      this.received.push(line);
      const i = this.received.length - 1;
      this.waiters = this.waiters.filter((w) => {
        if (w.test(line, i)) {
          w.resolve(i);
          return false;
        }
        return true;
      });
    }
  }
}

/** Run a program asynchronously (the proxy under test lives in this process), returning stdout; rejects with stderr. */
export function run(cmd: string, args: string[], opts: { input?: string; timeout?: number; env?: Record<string, string> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeout ?? 60_000, env: { ...process.env, ...opts.env }, maxBuffer: 64 * 1024 * 1024, encoding: 'latin1' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}
