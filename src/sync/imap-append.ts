/**
 * Bulk APPEND over a connection of its own, for what imapflow cannot do: MULTIAPPEND (RFC 3502,
 * many messages in one command, all or none) and LITERAL+ (RFC 7888, no round trip waiting for
 * "+" per literal). Without MULTIAPPEND but with LITERAL+, APPENDs are pipelined; with neither,
 * each literal waits for its continuation as the protocol requires.
 *
 * It only ever sends CAPABILITY, STARTTLS, LOGIN, APPEND and LOGOUT, and never selects a folder, so
 * the responses it reads are simple lines.
 */
import net from 'node:net';
import tls, { type ConnectionOptions, type TLSSocket } from 'node:tls';
import { encodeMailboxName } from '../protocol/utf7.js';
import type { TlsMode } from './imap-repository.js';
import type { AppendItem, AppendResult } from './repository.js';

/** Options of an appender connection. */
export interface AppenderOptions {
  host: string;
  port: number;
  tls: TlsMode;
  tlsOptions?: ConnectionOptions;
  /** Pinned SHA-256 fingerprint (colon hex, upper case). */
  pin?: string;
  user: string;
  password: () => Promise<string>;
  label: string;
  timeoutMs: number;
  /** Capabilities imapflow saw after login (used until our own CAPABILITY answers). */
  caps?: Map<string, boolean | number>;
}

/** An error from a tagged NO/BAD, with its response code like imapflow's. */
class AppendError extends Error {
  serverResponseCode?: string;
  responseText?: string;
  code?: string;
}

interface Tagged {
  status: 'OK' | 'NO' | 'BAD';
  code: string;
  text: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** IMAP date-time ("02-Jan-2006 15:04:05 +0000"), in UTC. */
export function imapDateTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `"${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000"`;
}

/** A quoted string, or null when the value needs a literal. */
function quoted(s: string): string | null {
  if (/[\x00-\x1f\x7f\r\n]/.test(s) || Buffer.byteLength(s) !== s.length) return null;
  return `"${s.replace(/(["\\])/g, '\\$1')}"`;
}

/** Expand an APPENDUID uid-set ("5:7,9") into UIDs in order. */
export function expandUidSet(set: string): number[] {
  const out: number[] = [];
  for (const part of set.split(',')) {
    const [a, b] = part.split(':').map(Number) as [number, number | undefined];
    if (b === undefined) out.push(a);
    else for (let i = Math.min(a, b); i <= Math.max(a, b); i++) out.push(i);
  }
  return out;
}

/** One raw IMAP connection that only appends. */
export class ImapAppender {
  private socket: net.Socket | TLSSocket | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private tagN = 0;
  private readonly waiting = new Map<string, { resolve: (t: Tagged) => void; reject: (e: Error) => void }>();
  private readonly conts: Array<() => void> = [];
  private lineWaiter: ((line: string) => void) | null = null;
  private caps = new Set<string>();
  private utf8 = false;
  private ready: Promise<void> | null = null;
  private dead: Error | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: AppenderOptions) {
    if (opts.caps) for (const k of opts.caps.keys()) this.caps.add(k.toUpperCase());
  }

  private fail(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    this.socket?.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const nl = this.buf.indexOf('\r\n');
      if (nl < 0) return;
      const line = this.buf.subarray(0, nl).toString('utf8');
      // A line ending in {n} announces n bytes of literal: skip them (never expected here).
      const lit = /\{(\d+)\}$/.exec(line);
      if (lit) {
        const n = Number(lit[1]);
        if (this.buf.length < nl + 2 + n) return;
        this.buf = this.buf.subarray(nl + 2 + n);
        continue;
      }
      this.buf = this.buf.subarray(nl + 2);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    if (this.lineWaiter) {
      const w = this.lineWaiter;
      this.lineWaiter = null;
      w(line);
      return;
    }
    if (line.startsWith('+')) {
      this.conts.shift()?.();
      return;
    }
    if (line.startsWith('* ')) {
      const m = /^\* (?:OK \[)?CAPABILITY ([^\]]*)/i.exec(line);
      if (m) this.caps = new Set(m[1]!.toUpperCase().split(' '));
      if (/^\* BYE/i.test(line)) this.fail(Object.assign(new Error(`${this.opts.label}: server closed the connection: ${line.slice(6)}`), { code: 'EConnectionClosed' }));
      return;
    }
    const m = /^(\S+) (OK|NO|BAD)(?: \[([^\]]*)\])?\s*(.*)$/i.exec(line);
    if (!m) return;
    const w = this.waiting.get(m[1]!);
    if (!w) return;
    this.waiting.delete(m[1]!);
    w.resolve({ status: m[2]!.toUpperCase() as Tagged['status'], code: m[3] ?? '', text: m[4] ?? '' });
  }

  private nextLine(): Promise<string> {
    return new Promise((resolve) => {
      this.lineWaiter = resolve;
    });
  }

  private write(data: Buffer | string): void {
    if (this.dead) throw this.dead;
    this.socket!.write(data);
  }

  /** Send a command (parts separated at synchronising literals) and wait for its tagged response. */
  private command(parts: Array<Buffer | string>, waitsForCont: boolean[] = []): Promise<Tagged> {
    const tag = `A${++this.tagN}`;
    const done = new Promise<Tagged>((resolve, reject) => this.waiting.set(tag, { resolve, reject }));
    const send = async () => {
      this.write(`${tag} `);
      for (let i = 0; i < parts.length; i++) {
        if (waitsForCont[i]) await new Promise<void>((r) => this.conts.push(r));
        this.write(parts[i]!);
      }
    };
    send().catch((err: Error) => this.fail(err));
    return done;
  }

  private async check(t: Tagged, what: string): Promise<void> {
    if (t.status === 'OK') return;
    const err = new AppendError(`${what}: ${t.status} ${t.code ? `[${t.code}] ` : ''}${t.text}`);
    err.serverResponseCode = t.code.split(' ')[0]!.toUpperCase();
    err.responseText = t.text;
    if (what === 'LOGIN') (err as AppendError & { authenticationFailed?: boolean }).authenticationFailed = true;
    throw err;
  }

  private async connectSocket(): Promise<void> {
    const { host, port, timeoutMs } = this.opts;
    const sock = await new Promise<net.Socket | TLSSocket>((resolve, reject) => {
      const timer = setTimeout(() => reject(Object.assign(new Error(`${this.opts.label}: connection timed out`), { code: 'CONNECT_TIMEOUT' })), timeoutMs);
      const onErr = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      const s =
        this.opts.tls === 'implicit'
          ? tls.connect({ ...this.opts.tlsOptions, host, port, ...(net.isIP(host) ? {} : { servername: host }) }, () => {
              clearTimeout(timer);
              resolve(s);
            })
          : net.connect({ host, port }, () => {
              clearTimeout(timer);
              resolve(s);
            });
      s.once('error', onErr);
    });
    this.socket = sock;
    this.checkPin(sock);
    sock.on('data', (c: Buffer) => this.onData(c));
    sock.on('error', (err) => this.fail(err));
    sock.on('close', () => this.fail(Object.assign(new Error(`${this.opts.label}: connection closed`), { code: 'EConnectionClosed' })));
  }

  private checkPin(sock: net.Socket | TLSSocket): void {
    if (!this.opts.pin || !('getPeerCertificate' in sock)) return;
    const fp = sock.getPeerCertificate()?.fingerprint256;
    if (fp !== this.opts.pin) {
      const err = Object.assign(new Error(`${this.opts.label}: server certificate fingerprint ${fp ?? '(none)'} does not match the pinned ${this.opts.pin}`), { code: 'ERR_TLS_CERT_PIN' });
      sock.destroy();
      throw err;
    }
  }

  private async connect(): Promise<void> {
    const greetingP = this.nextLine();
    await this.connectSocket();
    const greeting = await greetingP;
    if (!/^\* OK/i.test(greeting)) throw new Error(`${this.opts.label}: unexpected greeting ${greeting}`);
    if (this.opts.tls === 'starttls') {
      await this.check(await this.command(['STARTTLS\r\n']), 'STARTTLS');
      const plain = this.socket as net.Socket;
      plain.removeAllListeners('data');
      plain.removeAllListeners('close');
      plain.removeAllListeners('error');
      const secure = await new Promise<TLSSocket>((resolve, reject) => {
        const s = tls.connect({ ...this.opts.tlsOptions, socket: plain, ...(net.isIP(this.opts.host) ? {} : { servername: this.opts.host }) }, () => resolve(s));
        s.once('error', reject);
      });
      this.socket = secure;
      this.checkPin(secure);
      secure.on('data', (c: Buffer) => this.onData(c));
      secure.on('error', (err) => this.fail(err));
      secure.on('close', () => this.fail(Object.assign(new Error(`${this.opts.label}: connection closed`), { code: 'EConnectionClosed' })));
    }
    const pass = await this.opts.password();
    const u = quoted(this.opts.user);
    const p = quoted(pass);
    if (u !== null && p !== null) {
      await this.check(await this.command([`LOGIN ${u} ${p}\r\n`]), 'LOGIN');
    } else {
      // Non-ASCII or control characters: literals (synchronising, to be safe before capabilities are known).
      const ub = Buffer.from(this.opts.user);
      const pb = Buffer.from(pass);
      await this.check(await this.command([`LOGIN {${ub.length}}\r\n`, Buffer.concat([ub, Buffer.from(` {${pb.length}}\r\n`)]), Buffer.concat([pb, Buffer.from('\r\n')])], [false, true, true]), 'LOGIN');
    }
    await this.check(await this.command(['CAPABILITY\r\n']), 'CAPABILITY');
    if (this.caps.has('UTF8=ACCEPT')) {
      const t = await this.command(['ENABLE UTF8=ACCEPT\r\n']);
      this.utf8 = t.status === 'OK';
    }
  }

  private async ensure(): Promise<void> {
    if (this.dead) {
      this.ready = null;
      this.dead = null;
      this.buf = Buffer.alloc(0);
      this.conts.length = 0;
    }
    if (!this.ready) {
      this.ready = this.connect();
      this.ready.catch(() => {
        this.ready = null;
      });
    }
    await this.ready;
  }

  private mailbox(path: string): string {
    const wire = this.utf8 ? path : encodeMailboxName(path);
    return quoted(wire) ?? `"${wire}"`;
  }

  /** Append items to a server path in batches; returns UIDs (null where the server gave none). */
  append(path: string, items: AppendItem[], batch: number): Promise<AppendResult> {
    // One batch at a time on this connection; callers queue.
    const run = this.queue.then(() => this.appendNow(path, items, batch));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async appendNow(path: string, items: AppendItem[], batch: number): Promise<AppendResult> {
    await this.ensure();
    const plus = this.caps.has('LITERAL+');
    const multi = this.caps.has('MULTIAPPEND');
    const binary = this.caps.has('BINARY');
    const box = this.mailbox(path);
    const uids: Array<number | null> = [];
    let uidValidity: number | undefined;
    const one = (it: AppendItem, parts: Array<Buffer | string>, waits: boolean[], prefix: string) => {
      const flags = `(${it.flags.filter((f) => f !== '\\Recent').join(' ')})`;
      const date = it.internalDate && !Number.isNaN(it.internalDate.getTime()) ? ` ${imapDateTime(it.internalDate)}` : '';
      const lit8 = it.data.includes(0) && binary ? '~' : '';
      const head = `${prefix}${flags}${date} ${lit8}{${it.data.length}${plus ? '+' : ''}}\r\n`;
      // With LITERAL+ the data follows at once; otherwise it waits for the server's "+".
      if (parts.length === 0) {
        parts.push(head);
        waits.push(false);
      } else parts[parts.length - 1] = Buffer.concat([toBuf(parts[parts.length - 1]!), Buffer.from(head)]);
      parts.push(it.data);
      waits.push(!plus);
    };
    const record = (t: Tagged, n: number) => {
      const m = /^APPENDUID (\d+) ([\d:,]+)/i.exec(t.code);
      if (m) {
        uidValidity = Number(m[1]);
        const got = expandUidSet(m[2]!);
        for (let i = 0; i < n; i++) uids.push(got[i] ?? null);
      } else for (let i = 0; i < n; i++) uids.push(null);
    };
    for (let i = 0; i < items.length; i += batch) {
      const chunk = items.slice(i, i + batch);
      if (multi) {
        const parts: Array<Buffer | string> = [];
        const waits: boolean[] = [];
        chunk.forEach((it, k) => one(it, parts, waits, k === 0 ? `APPEND ${box} ` : ' '));
        parts[parts.length - 1] = Buffer.concat([toBuf(parts[parts.length - 1]!), Buffer.from('\r\n')]);
        const t = await this.command(parts, waits);
        await this.check(t, 'APPEND');
        record(t, chunk.length);
      } else {
        // Single APPENDs: pipelined with LITERAL+ (nothing to wait for), one after another without.
        const build = (it: AppendItem) => {
          const parts: Array<Buffer | string> = [];
          const waits: boolean[] = [];
          one(it, parts, waits, `APPEND ${box} `);
          parts[parts.length - 1] = Buffer.concat([toBuf(parts[parts.length - 1]!), Buffer.from('\r\n')]);
          return this.command(parts, waits);
        };
        const results: Tagged[] = [];
        if (plus) results.push(...(await Promise.all(chunk.map(build))));
        else for (const it of chunk) results.push(await build(it));
        for (const t of results) {
          await this.check(t, 'APPEND');
          record(t, 1);
        }
      }
    }
    const res: AppendResult = { uids };
    if (uidValidity !== undefined) res.uidValidity = uidValidity;
    return res;
  }

  /** LOGOUT and close. */
  async close(): Promise<void> {
    if (!this.socket || this.dead) return;
    try {
      const t = this.command(['LOGOUT\r\n']);
      await Promise.race([t, new Promise((r) => setTimeout(r, 1000).unref())]);
    } catch {
      // Closing anyway.
    }
    this.socket.destroy();
  }
}

function toBuf(x: Buffer | string): Buffer {
  return typeof x === 'string' ? Buffer.from(x) : x;
}
