/**
 * The proxy's conversation with a client before authentication, as a pure state machine: bytes
 * in, actions out, no sockets. It answers CAPABILITY, NOOP, ID, STARTTLS, LOGIN, AUTHENTICATE PLAIN
 * (with SASL-IR) and LOGOUT itself and refuses everything else. Input is cut into commands by the
 * CommandFramer under hard limits, then parsed by the protocol layer's CommandParser.
 */
import { CommandParser } from '../protocol/parser.js';
import type { Command } from '../protocol/ast.js';
import { encodeLine } from '../protocol/writer.js';
import { CommandFramer, DEFAULT_FRAMER_LIMITS, type FramerLimits } from './framer.js';

/** What the caller must do next. Writes come first, in order; at most one other action ends a batch. */
export type PreAuthAction =
  | { type: 'write'; data: Buffer }
  /** Upgrade the connection to TLS now (the OK has been written), then call tlsStarted(). */
  | { type: 'starttls' }
  /** Authenticate this client; call loginResult() with the outcome. Never log `password`. */
  | { type: 'login'; tag: string; user: string; password: string; authzid?: string; mechanism: 'LOGIN' | 'PLAIN' }
  /** Close the connection (after the writes). */
  | { type: 'close'; reason: string };

/** Options of a pre-auth session. */
export interface PreAuthOptions {
  /** The connection is already TLS (implicit TLS port). */
  secure: boolean;
  /** STARTTLS can be offered (a certificate is configured). */
  starttls: boolean;
  /** Refuse LOGIN/AUTHENTICATE until the connection is TLS (LOGINDISABLED). */
  requireTls?: boolean;
  limits?: FramerLimits;
  /** Most commands before authentication (default 50). */
  maxCommands?: number;
  /** Most failed logins before the connection is closed (default 3). */
  maxFailures?: number;
  /** Server name in the greeting and ID. */
  name?: string;
  /** Told each command received (for --debug); carries the user of a login, never its password. */
  trace?: (event: { tag: string; command: string; user?: string }) => void;
}

/** Outcome of a login the caller performed. */
export type LoginOutcome =
  | { ok: true; capabilities: string[] }
  | { ok: false; code?: string; text: string };

type State = 'ready' | 'sasl' | 'waiting' | 'done' | 'closed';

// Response codes a backend may return that are safe and meaningful to pass on (RFC 5530).
const PASS_CODES = new Set(['AUTHENTICATIONFAILED', 'AUTHORIZATIONFAILED', 'UNAVAILABLE', 'EXPIRED', 'PRIVACYREQUIRED', 'CONTACTADMIN', 'LIMIT', 'SERVERBUG']);

/** Text fit for a status response: printable, one line, bounded. */
export function cleanText(s: string, max = 200): string {
  const t = s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return t.length > max ? t.slice(0, max) : t;
}

/** A tag we can echo: IMAP tag characters only, else `*`. */
function safeTag(tag: string | undefined): string {
  return tag && /^[\x21-\x7e]{1,64}$/.test(tag) && !/[(){%*"\\\]+]/.test(tag) ? tag : '*';
}

/** Strict base64 (RFC 4648 alphabet with padding). */
function decodeBase64(s: string): Buffer | null {
  if (s === '=') return Buffer.alloc(0);
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  return Buffer.from(s, 'base64');
}

/** The pre-authentication state machine of one client connection. */
export class PreAuthSession {
  private state: State = 'ready';
  private secure: boolean;
  private readonly framer: CommandFramer;
  private readonly limits: FramerLimits;
  private out: Buffer[] = [];
  private final: PreAuthAction | undefined;
  private commands = 0;
  private failures = 0;
  private saslTag = '';
  private pendingTag = '';
  /** Protocol errors seen (statistics). */
  errors = 0;

  constructor(private readonly opts: PreAuthOptions) {
    this.secure = opts.secure;
    this.limits = opts.limits ?? DEFAULT_FRAMER_LIMITS;
    this.framer = new CommandFramer(this.limits);
  }

  /** Capabilities announced before login. */
  capabilities(): string[] {
    const caps = ['IMAP4rev1', 'SASL-IR', 'LITERAL+', 'ID'];
    if (!this.secure && this.opts.starttls) caps.push('STARTTLS');
    if (!this.secure && this.opts.requireTls) caps.push('LOGINDISABLED');
    else caps.push('AUTH=PLAIN');
    return caps;
  }

  /** The greeting to send on connect. */
  greeting(): Buffer {
    return Buffer.from(`* OK [CAPABILITY ${this.capabilities().join(' ')}] ${this.opts.name ?? 'imapkit proxy'} ready\r\n`, 'latin1');
  }

  /** Current state (tests). */
  get current(): State {
    return this.state;
  }

  /** Bytes held for unfinished commands (tests assert the bound). */
  get buffered(): number {
    return this.framer.buffered;
  }

  /** Feed client bytes. While a login or STARTTLS is pending they are only buffered. */
  push(chunk: Buffer): PreAuthAction[] {
    if (this.state === 'closed' || this.state === 'done') return [];
    this.framer.push(chunk);
    if (this.state === 'waiting') return [];
    return this.drive();
  }

  /** The login the caller ran finished. */
  loginResult(outcome: LoginOutcome): PreAuthAction[] {
    if (this.state !== 'waiting') return [];
    const tag = this.pendingTag;
    if (outcome.ok) {
      const caps = outcome.capabilities.filter((c) => /^[\x21-\x7e]+$/.test(c) && !c.includes(']'));
      this.write(`${tag} OK ${caps.length ? `[CAPABILITY ${caps.join(' ')}] ` : ''}Logged in\r\n`);
      this.state = 'done';
      return this.flush();
    }
    const code = outcome.code && PASS_CODES.has(outcome.code.toUpperCase()) ? `[${outcome.code.toUpperCase()}] ` : '';
    this.write(`${tag} NO ${code}${cleanText(outcome.text) || 'Authentication failed'}\r\n`);
    if (++this.failures >= (this.opts.maxFailures ?? 3)) return this.bye('Too many authentication failures');
    this.state = 'ready';
    return this.drive();
  }

  /** The TLS handshake after STARTTLS completed. */
  tlsStarted(): PreAuthAction[] {
    if (this.state !== 'waiting') return [];
    this.secure = true;
    this.state = 'ready';
    return this.drive();
  }

  /** After a successful login: client bytes that followed the login command (pipelined commands). */
  takeRest(): Buffer {
    return this.framer.takeRest();
  }

  private write(s: string | Buffer): void {
    this.out.push(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
  }

  private flush(): PreAuthAction[] {
    const actions: PreAuthAction[] = [];
    if (this.out.length) actions.push({ type: 'write', data: this.out.length === 1 ? this.out[0] : Buffer.concat(this.out) });
    this.out = [];
    if (this.final) actions.push(this.final);
    this.final = undefined;
    return actions;
  }

  private bye(reason: string): PreAuthAction[] {
    this.write(`* BYE ${reason}\r\n`);
    this.state = 'closed';
    this.final = { type: 'close', reason };
    return this.flush();
  }

  private drive(): PreAuthAction[] {
    while (this.state === 'ready' || this.state === 'sasl') {
      const ev = this.framer.next();
      if (!ev) break;
      if (ev.kind === 'error') {
        this.errors++;
        if (ev.fatal) return this.bye(ev.message);
        this.write(`${safeTag(ev.tag)} BAD ${ev.code ? `[${ev.code}] ` : ''}${cleanText(ev.message)}\r\n`);
        continue;
      }
      if (ev.kind === 'continue') {
        this.write('+ Ready for literal data\r\n');
        continue;
      }
      if (ev.kind === 'line') {
        this.framer.setLineMode(false);
        this.state = 'ready';
        this.saslResponse(ev.line.toString('latin1'));
        continue;
      }
      if (++this.commands > (this.opts.maxCommands ?? 50)) return this.bye('Too many commands before authentication');
      this.handleBytes(ev.data);
    }
    return this.flush();
  }

  private handleBytes(data: Buffer): void {
    const parser = new CommandParser({
      maxLineLength: this.limits.maxLine,
      maxLiteralSize: this.limits.maxLiteral,
      maxDepth: 8,
      maxItems: 256,
    });
    parser.push(data);
    for (let i = 0; i < 16; i++) {
      const ev = parser.next();
      if (!ev) break;
      if (ev.kind === 'continue' || ev.kind === 'line') continue;
      if (ev.kind === 'error') {
        this.errors++;
        const tag = safeTag(ev.tag);
        if (ev.fatal) {
          this.bye(cleanText(ev.message) || 'Protocol error');
          return;
        }
        this.write(`${tag} BAD ${ev.code && /^[A-Z-]+$/.test(ev.code) ? `[${ev.code}] ` : ''}${cleanText(ev.message) || 'Syntax error'}\r\n`);
        return;
      }
      this.handleCommand(ev.command);
      return;
    }
    this.errors++;
    this.write(`* BAD Syntax error\r\n`);
  }

  private handleCommand(cmd: Command): void {
    const tag = safeTag(cmd.tag);
    this.opts.trace?.({ tag, command: cmd.name, user: cmd.name === 'LOGIN' ? cmd.user : undefined });
    switch (cmd.name) {
      case 'CAPABILITY':
        this.write(`* CAPABILITY ${this.capabilities().join(' ')}\r\n${tag} OK CAPABILITY completed\r\n`);
        return;
      case 'NOOP':
        this.write(`${tag} OK NOOP completed\r\n`);
        return;
      case 'ID':
        this.write(encodeLine('* ID', [['name', this.opts.name ?? 'imapkit proxy', 'vendor', 'imapkit']]));
        this.write(`${tag} OK ID completed\r\n`);
        return;
      case 'LOGOUT':
        this.write(`* BYE Logging out\r\n${tag} OK LOGOUT completed\r\n`);
        this.state = 'closed';
        this.final = { type: 'close', reason: 'logout' };
        return;
      case 'STARTTLS':
        if (this.secure || !this.opts.starttls) {
          this.write(`${tag} BAD STARTTLS not available\r\n`);
          return;
        }
        this.write(`${tag} OK Begin TLS negotiation now\r\n`);
        // Plaintext pipelined after STARTTLS must never be acted on (CVE-2011-0411 class).
        this.framer.reset();
        this.state = 'waiting';
        this.final = { type: 'starttls' };
        return;
      case 'LOGIN':
        if (this.tlsRequired(tag)) return;
        this.startLogin(tag, { type: 'login', tag, user: cmd.user, password: cmd.password, mechanism: 'LOGIN' });
        return;
      case 'AUTHENTICATE': {
        if (this.tlsRequired(tag)) return;
        if (cmd.mechanism.toUpperCase() !== 'PLAIN') {
          this.write(`${tag} NO Unsupported authentication mechanism\r\n`);
          return;
        }
        if (cmd.initialResponse !== undefined) {
          this.plain(tag, cmd.initialResponse);
          return;
        }
        this.saslTag = tag;
        this.state = 'sasl';
        this.framer.setLineMode(true);
        this.write('+ \r\n');
        return;
      }
      default:
        this.write(`${tag} BAD Command not allowed before authentication\r\n`);
    }
  }

  private tlsRequired(tag: string): boolean {
    if (this.secure || !this.opts.requireTls) return false;
    this.write(`${tag} NO [PRIVACYREQUIRED] Use STARTTLS first\r\n`);
    return true;
  }

  private saslResponse(line: string): void {
    const tag = this.saslTag;
    if (line === '*') {
      this.write(`${tag} BAD AUTHENTICATE cancelled\r\n`);
      return;
    }
    this.plain(tag, line);
  }

  private plain(tag: string, b64: string): void {
    const raw = decodeBase64(b64.trim());
    if (!raw) {
      this.errors++;
      this.write(`${tag} BAD Invalid base64 in SASL response\r\n`);
      return;
    }
    const parts = raw.toString('utf8').split('\0');
    if (parts.length !== 3 || parts[1] === '') {
      this.write(`${tag} NO [AUTHENTICATIONFAILED] Invalid PLAIN response\r\n`);
      this.countFailure();
      return;
    }
    const [authzid, user, password] = parts;
    this.startLogin(tag, { type: 'login', tag, user, password, authzid: authzid || undefined, mechanism: 'PLAIN' });
  }

  private countFailure(): void {
    if (++this.failures >= (this.opts.maxFailures ?? 3)) {
      this.write('* BYE Too many authentication failures\r\n');
      this.state = 'closed';
      this.final = { type: 'close', reason: 'too many failures' };
    }
  }

  private startLogin(tag: string, action: PreAuthAction & { type: 'login' }): void {
    // NUL is never part of a password (RFC 3501 literals exclude it; SASL PLAIN uses it as separator).
    const badName = (n: string): boolean => n.length > 512 || /[\x00-\x1f\x7f]/.test(n);
    if (action.user === '' || badName(action.user) || badName(action.authzid ?? '') || action.password.length > 4096 || action.password.includes('\0')) {
      this.write(`${tag} NO [AUTHENTICATIONFAILED] Authentication failed\r\n`);
      this.countFailure();
      return;
    }
    this.pendingTag = tag;
    this.state = 'waiting';
    this.final = action;
  }
}
