/**
 * The proxy's side of a backend connection: connect (implicit TLS, or STARTTLS where offered),
 * authenticate, run the few commands the proxy itself needs (CAPABILITY, NOOP, UNSELECT, EXAMINE,
 * LOGOUT), then hand the raw socket to the byte pipe. Deliberately minimal instead of imapflow:
 * the proxy must own the socket after login and never parse the session it forwards.
 */
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { formatCommand } from '../protocol/format-command.js';
import { oauth2SaslResponse, type OAuth2Mechanism } from '../auth/oauth2/sasl.js';
import type { Backend } from './backend.js';

/** A tagged reply. */
export interface TaggedReply {
  status: 'OK' | 'NO' | 'BAD';
  /** Response code without brackets (e.g. "AUTHENTICATIONFAILED", "CAPABILITY IMAP4rev1 ..."). */
  code?: string;
  text: string;
  /** Untagged lines received while the command ran (literal bodies elided). */
  untagged: string[];
}

/** How to authenticate upstream. Secrets live only in these objects and never reach a log. */
export type UpstreamAuth =
  | { kind: 'login'; user: string; password: string }
  | { kind: 'plain'; authzid?: string; user: string; password: string }
  | { kind: 'oauth2'; mechanism: OAuth2Mechanism; user: string; accessToken: string };

/** The backend cannot be reached or misbehaves (as opposed to refusing a login). */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly code = 'UNAVAILABLE',
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

/** Timeouts for upstream operations. */
export interface UpstreamOptions {
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
}

const LF = 0x0a;
const LITERAL_AT_END = /(~?)\{(\d{1,10})([+-]?)\}\r?\n$/;
let connectionSeq = 0;

/** Parse a status response's text: optional `[CODE]` then free text. */
export function parseRespText(rest: string): { code?: string; text: string } {
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end > 0) return { code: rest.slice(1, end), text: rest.slice(end + 1).trimStart() };
  }
  return { text: rest };
}

/** Capabilities from a `CAPABILITY ...` response code or untagged line payload. */
export function parseCapabilities(list: string): string[] {
  return list.trim().split(/\s+/).filter((c) => c !== '' && c.toUpperCase() !== 'CAPABILITY');
}

/** Split a formatted command at synchronizing literals: each later segment waits for a `+`. */
export function splitAtSyncLiterals(buf: Buffer): Buffer[] {
  const segments: Buffer[] = [];
  let start = 0;
  let pos = 0;
  for (;;) {
    const lf = buf.indexOf(LF, pos);
    if (lf === -1) break;
    const m = LITERAL_AT_END.exec(buf.subarray(Math.max(pos, lf - 20), lf + 1).toString('latin1'));
    pos = lf + 1;
    if (m) {
      if (m[3] === '') {
        segments.push(buf.subarray(start, pos));
        start = pos;
      }
      pos += Number(m[2]);
    }
  }
  if (start < buf.length) segments.push(buf.subarray(start));
  return segments;
}

interface Pending {
  tag: string;
  untagged: string[];
  resolve: (r: TaggedReply) => void;
  reject: (e: Error) => void;
  onContinue: (text: string) => void;
  timer: NodeJS.Timeout;
}

/** One connection to a backend, owned by the proxy until it is handed to a client's pipe. */
export class Upstream {
  /** Capabilities as last announced (after login: the authenticated set). */
  capabilities: string[] = [];
  readonly id = ++connectionSeq;
  readonly createdAt = Date.now();
  /** True once the socket closed or a BYE arrived. */
  dead = false;
  /** Called once when the connection dies while the proxy owns it. */
  onDead: (() => void) | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private literalRemaining = 0;
  private lineParts: string[] = [];
  private pending: Pending | undefined;
  private attached = false;
  private tagSeq = 0;
  private readonly tagPrefix = 'ik' + randomBytes(4).toString('hex');
  private greetingWaiter: ((line: string) => void) | undefined;

  private readonly onData = (chunk: Buffer): void => this.receive(chunk);
  private readonly onClose = (): void => this.markDead(new UpstreamError('connection closed by backend'));
  private readonly onError = (err: Error): void => this.markDead(new UpstreamError(`backend connection failed: ${err.message}`));

  private constructor(
    readonly backend: Backend,
    public socket: net.Socket,
    private readonly opts: UpstreamOptions,
  ) {}

  /** True when the backend is reached over TLS. */
  get secure(): boolean {
    return this.socket instanceof tls.TLSSocket;
  }

  /** Connect, read the greeting, secure the channel as the backend URL demands; returns a connection ready for login. */
  static async connect(backend: Backend, opts: UpstreamOptions = {}): Promise<Upstream> {
    const timeout = opts.connectTimeoutMs ?? 15_000;
    const socket = await openSocket(backend, timeout);
    const up = new Upstream(backend, socket, opts);
    up.attach();
    try {
      const greeting = await up.readGreeting(timeout);
      if (!greeting.startsWith('* OK')) throw new UpstreamError(`backend greeting is not OK: ${greeting.slice(0, 80)}`);
      const g = parseRespText(greeting.slice(5));
      if (g.code?.toUpperCase().startsWith('CAPABILITY ')) up.capabilities = parseCapabilities(g.code.slice(11));
      else await up.refreshCapabilities();
      if (backend.security === 'starttls') {
        if (up.has('STARTTLS')) await up.startTls();
        else if (!backend.allowPlaintext) {
          throw new UpstreamError(`backend ${backend.id} does not offer STARTTLS and plaintext is not allowed to a non-loopback host (use --backend-insecure)`);
        }
      }
      return up;
    } catch (err) {
      up.destroy();
      throw err;
    }
  }

  /** Has the backend announced this capability (case-insensitive)? */
  has(cap: string): boolean {
    const c = cap.toUpperCase();
    return this.capabilities.some((x) => x.toUpperCase() === c);
  }

  /** Run CAPABILITY and store the result. */
  async refreshCapabilities(): Promise<void> {
    const r = await this.command('CAPABILITY');
    const line = r.untagged.find((l) => /^\* CAPABILITY /i.test(l));
    if (line) this.capabilities = parseCapabilities(line.slice(13));
  }

  /**
   * Authenticate. Resolves with the tagged reply (OK or the backend's NO); rejects only on
   * connection problems. After OK the capabilities are the authenticated ones.
   */
  async login(auth: UpstreamAuth): Promise<TaggedReply> {
    let reply: TaggedReply;
    if (auth.kind === 'oauth2') {
      const ir = oauth2SaslResponse(auth.mechanism, auth.user, auth.accessToken, { host: this.backend.host, port: this.backend.port });
      reply = await this.authenticate(auth.mechanism, ir, auth.mechanism === 'XOAUTH2' ? '' : 'AQ==');
    } else if (auth.kind === 'plain' || this.has('LOGINDISABLED') || !quotable(auth.user) || !quotable(auth.password)) {
      if (auth.kind === 'login' && !this.has('AUTH=PLAIN') && !this.has('LOGINDISABLED')) {
        reply = await this.loginCommand(auth.user, auth.password);
      } else {
        const authzid = auth.kind === 'plain' ? (auth.authzid ?? '') : '';
        const ir = Buffer.from(`${authzid}\0${auth.user}\0${auth.password}`, 'utf8').toString('base64');
        reply = await this.authenticate('PLAIN', ir, '*');
      }
    } else {
      reply = await this.loginCommand(auth.user, auth.password);
    }
    if (reply.status === 'OK') {
      if (reply.code?.toUpperCase().startsWith('CAPABILITY ')) this.capabilities = parseCapabilities(reply.code.slice(11));
      else await this.refreshCapabilities();
    }
    return reply;
  }

  private async loginCommand(user: string, password: string): Promise<TaggedReply> {
    const tag = this.nextTag();
    const literalPlus = this.has('LITERAL+');
    const bytes = formatCommand({ tag, name: 'LOGIN', user, password }, { literalPlus });
    return this.sendSegments(tag, splitAtSyncLiterals(bytes));
  }

  private authenticate(mechanism: string, ir: string, onErrorChallenge: string): Promise<TaggedReply> {
    const tag = this.nextTag();
    const withIr = this.has('SASL-IR');
    const line = Buffer.from(`${tag} AUTHENTICATE ${mechanism}${withIr ? ` ${ir}` : ''}\r\n`, 'latin1');
    let sentIr = withIr;
    return this.run(tag, line, (_text) => {
      // First challenge without SASL-IR: the initial response. A later one is an error report
      // (XOAUTH2/OAUTHBEARER): answer so the server can send its tagged NO.
      if (!sentIr) {
        sentIr = true;
        this.socket.write(`${ir}\r\n`);
      } else {
        this.socket.write(`${onErrorChallenge}\r\n`);
      }
    });
  }

  /** Send a command (text without tag and CRLF) and wait for its tagged reply. */
  command(text: string): Promise<TaggedReply> {
    const tag = this.nextTag();
    return this.run(tag, Buffer.from(`${tag} ${text}\r\n`, 'utf8'), () => {
      /* none of the proxy's own commands take continuations */
    });
  }

  /** A fresh random-looking tag the client stream cannot predict. */
  nextTag(): string {
    return `${this.tagPrefix}${(++this.tagSeq).toString(36)}`;
  }

  private sendSegments(tag: string, segments: Buffer[]): Promise<TaggedReply> {
    let i = 1;
    return this.run(tag, segments[0], () => {
      if (i < segments.length) this.socket.write(segments[i++]);
      else this.socket.write('\r\n');
    });
  }

  private run(tag: string, bytes: Buffer, onContinue: (text: string) => void): Promise<TaggedReply> {
    if (this.dead) return Promise.reject(new UpstreamError('backend connection is closed'));
    if (this.pending) return Promise.reject(new Error('upstream: command already running'));
    if (!this.attached) this.attach();
    return new Promise<TaggedReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        reject(new UpstreamError('backend did not answer in time'));
        this.destroy();
      }, this.opts.commandTimeoutMs ?? 30_000);
      timer.unref();
      this.pending = { tag, untagged: [], resolve, reject, onContinue, timer };
      this.socket.write(bytes);
    });
  }

  private readGreeting(timeoutMs: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new UpstreamError('backend sent no greeting')), timeoutMs);
      timer.unref();
      this.greetingWaiter = (line) => {
        clearTimeout(timer);
        this.onDead = undefined;
        resolve(line);
      };
      this.onDead = () => {
        clearTimeout(timer);
        reject(new UpstreamError('backend closed the connection before its greeting'));
      };
    });
  }

  private async startTls(): Promise<void> {
    const r = await this.command('STARTTLS');
    if (r.status !== 'OK') throw new UpstreamError(`backend refused STARTTLS: ${r.text}`);
    const { socket, leftover } = this.detach();
    // Bytes after the STARTTLS reply but before the handshake would be unauthenticated plaintext.
    if (leftover.length > 0) throw new UpstreamError('backend sent data after STARTTLS (possible injection)');
    const secured = await upgradeSocket(socket, this.backend, this.opts.connectTimeoutMs ?? 15_000);
    this.socket = secured;
    this.attach();
    await this.refreshCapabilities();
  }

  /** Start reading through the proxy's own response reader (after connect, or back from a pipe). */
  attach(initial?: Buffer): void {
    if (this.attached) return;
    this.attached = true;
    this.socket.on('data', this.onData);
    this.socket.on('close', this.onClose);
    this.socket.on('error', this.onError);
    if (this.socket.isPaused()) this.socket.resume();
    if (initial && initial.length > 0) this.receive(initial);
  }

  /** Stop reading; the caller owns the socket's data from now on (`leftover`: bytes read but not consumed). */
  detach(): { socket: net.Socket; leftover: Buffer } {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    this.socket.off('error', this.onError);
    this.attached = false;
    const leftover = this.buf;
    this.buf = Buffer.alloc(0);
    this.literalRemaining = 0;
    this.lineParts = [];
    return { socket: this.socket, leftover };
  }

  /** True while one of the proxy's own commands waits for its reply. */
  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Polite close: LOGOUT (best effort, short wait), then end the socket. */
  async logout(): Promise<void> {
    if (this.dead) return;
    try {
      if (!this.attached) this.attach();
      if (!this.pending) {
        const t = this.nextTag();
        this.socket.write(`${t} LOGOUT\r\n`);
      }
      this.socket.end();
      const timer = setTimeout(() => this.destroy(), 2000);
      timer.unref();
      this.socket.once('close', () => clearTimeout(timer));
    } catch {
      this.destroy();
    }
  }

  /** Close now. */
  destroy(): void {
    this.socket.destroy();
    this.markDead(new UpstreamError('connection closed'));
  }

  private markDead(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    const p = this.pending;
    if (p) {
      clearTimeout(p.timer);
      this.pending = undefined;
      p.reject(err);
    }
    const cb = this.onDead;
    this.onDead = undefined;
    cb?.();
  }

  private receive(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.literalRemaining > 0) {
        const n = Math.min(this.literalRemaining, this.buf.length);
        this.buf = this.buf.subarray(n);
        this.literalRemaining -= n;
        if (this.literalRemaining > 0) return;
        continue;
      }
      const lf = this.buf.indexOf(LF);
      if (lf === -1) {
        if (this.buf.length > 1024 * 1024) this.destroy();
        return;
      }
      const raw = this.buf.subarray(0, lf + 1).toString('utf8');
      this.buf = this.buf.subarray(lf + 1);
      const m = LITERAL_AT_END.exec(raw.slice(-20));
      if (m) {
        this.lineParts.push(raw.slice(0, raw.length - m[0].length), '""');
        this.literalRemaining = Number(m[2]);
        continue;
      }
      this.lineParts.push(raw.replace(/\r?\n$/, ''));
      const line = this.lineParts.join('');
      this.lineParts = [];
      // After a tagged reply, stop: the caller may take the socket over (detach gets the rest).
      if (this.handleLine(line)) return;
    }
  }

  /** Handle one response line; true when it was the tagged reply of the running command (or the greeting). */
  private handleLine(line: string): boolean {
    if (this.greetingWaiter) {
      const w = this.greetingWaiter;
      this.greetingWaiter = undefined;
      w(line);
      return true;
    }
    const p = this.pending;
    if (line.startsWith('+')) {
      p?.onContinue(line.slice(2));
      return false;
    }
    if (line.startsWith('* ')) {
      if (/^\* BYE\b/i.test(line)) {
        // The backend is closing: nothing can be sent on this connection any more.
        this.markDead(new UpstreamError(`backend said: ${line.slice(2, 120)}`));
        return true;
      }
      p?.untagged.push(line);
      return false;
    }
    if (!p) return false;
    const sp = line.indexOf(' ');
    const tag = line.slice(0, sp);
    if (tag !== p.tag) return false;
    const rest = line.slice(sp + 1);
    const sp2 = rest.indexOf(' ');
    const status = (sp2 === -1 ? rest : rest.slice(0, sp2)).toUpperCase();
    const { code, text } = parseRespText(sp2 === -1 ? '' : rest.slice(sp2 + 1));
    clearTimeout(p.timer);
    this.pending = undefined;
    p.resolve({ status: status === 'OK' || status === 'NO' ? status : 'BAD', code, text, untagged: p.untagged });
    return true;
  }
}

/** Printable ASCII that fits a quoted string. */
function quotable(s: string): boolean {
  return s.length <= 1024 && /^[\x20-\x7e]*$/.test(s);
}

function tlsOptions(backend: Backend): tls.ConnectionOptions {
  return {
    servername: backend.servername,
    rejectUnauthorized: backend.tlsVerify,
    ca: backend.ca ? [...tls.rootCertificates, backend.ca] : undefined,
    minVersion: 'TLSv1.2',
  };
}

function openSocket(backend: Backend, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new UpstreamError(`cannot connect to ${backend.id}: ${err.message}`));
    };
    const timer = setTimeout(() => onError(new Error('timed out')), timeoutMs);
    timer.unref();
    const socket: net.Socket =
      backend.security === 'tls'
        ? tls.connect({ host: backend.host, port: backend.port, ...tlsOptions(backend) }, () => done())
        : net.connect({ host: backend.host, port: backend.port }, () => done());
    const done = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
      resolve(socket);
    };
    socket.once('error', onError);
  });
}

function upgradeSocket(socket: net.Socket, backend: Backend, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secured = tls.connect({ socket, ...tlsOptions(backend) }, () => {
      clearTimeout(timer);
      secured.off('error', onError);
      resolve(secured);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      secured.destroy();
      reject(new UpstreamError(`TLS with ${backend.id} failed: ${err.message}`));
    };
    const timer = setTimeout(() => onError(new Error('handshake timed out')), timeoutMs);
    timer.unref();
    secured.once('error', onError);
  });
}
