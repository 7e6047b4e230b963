/**
 * One LMTP connection (RFC 2033): LHLO, then transactions of MAIL, RCPT..., DATA, each DATA answered
 * with one reply per accepted recipient, in RCPT order. Commands run one at a time in arrival order,
 * so a client may pipeline (RFC 2920) a whole transaction in one packet; replies are collected and
 * written when the input runs dry, one write for a pipelined group.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { MailStore } from '../../store/contract.js';
import type { Logger } from '../../log/logger.js';
import { DotReader } from './data-reader.js';
import { EnvelopeSyntaxError, parseEnvelopeArg } from './envelope.js';
import type { Recipient, UserDirectory } from './recipients.js';
import { storeForRecipient } from './store-message.js';
import { traceHeaders } from './trace-headers.js';

/** What every session of one LmtpServer shares. */
export interface LmtpContext {
  store: MailStore;
  users: UserDirectory;
  log: Logger;
  /** Protocol trace at debug level (commands only, never message text). */
  debug: boolean;
  /** This host's name, for the greeting and Received. */
  serverName: string;
  /** Largest message accepted, bytes (the server's appendLimit). */
  maxMessageSize: number;
  /** Recipients accepted per transaction. */
  maxRecipients: number;
  /** Longest command line, bytes. */
  maxLineLength: number;
  /** Inactivity before the connection is closed with 421, ms. */
  idleTimeoutMs: number;
}

/** Input queued beyond this while a command runs stops reading from the socket until it drains. */
const MAX_QUEUED = 1024 * 1024;

interface Transaction {
  id: string;
  sender: string;
  recipients: Recipient[];
}

/** A transaction id: short, unique enough to find one delivery in the logs. */
function newId(): string {
  return randomBytes(9).toString('base64url');
}

/** One LMTP connection. */
export class LmtpSession {
  private chunks: Buffer[] = [];
  private queued = 0;
  private out: string[] = [];
  private pumping = false;
  /** Rest of an over-long line is being thrown away. */
  private discarding = false;
  private mode: 'command' | 'data' | 'closed' = 'command';
  private lhloName: string | undefined;
  private tx: Transaction | undefined;
  private reader: DotReader | undefined;
  /** The storing after DATA, while it runs (close() waits for it before the store closes). */
  private storing: Promise<void> | undefined;
  private shuttingDown = false;
  /** The client closed its side: what is queued is still answered, then the connection closes. */
  private inputEnded = false;
  private readonly log: Logger;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: LmtpContext,
    /** "[127.0.0.1]" for TCP, "local" for a unix socket: what Received says about the client. */
    private readonly client: string,
  ) {
    this.log = ctx.log.child({ lmtpClient: client });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Greet and start reading. */
  start(): void {
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('end', () => {
      // A client may write a whole session and half-close (the server is allowHalfOpen): answer it all first.
      this.inputEnded = true;
      void this.pump();
    });
    this.socket.on('close', () => {
      this.mode = 'closed';
    });
    this.socket.setTimeout(this.ctx.idleTimeoutMs, () => this.onTimeout());
    this.reply(`220 ${this.ctx.serverName} imapkit LMTP ready`);
    this.flush();
  }

  /** Server shutdown: say 421 and close, once the message being stored (if any) is stored and answered. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    // The recipients' replies are queued before storing resolves, so they go out ahead of the 421.
    if (this.storing) await this.storing;
    if (this.mode === 'closed') return;
    this.reply(`421 4.3.2 ${this.ctx.serverName} Shutting down`);
    this.close();
  }

  /** Wait for a store operation in progress (the server closes the store after this). */
  async settled(): Promise<void> {
    if (this.storing) await this.storing;
  }

  private onData(chunk: Buffer): void {
    if (this.mode === 'closed') return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    if (this.queued > MAX_QUEUED) this.socket.pause();
    void this.pump();
  }

  private onTimeout(): void {
    // Storing is our own time, not the client's.
    if (this.storing || this.mode === 'closed') return;
    this.log.info('LMTP connection idle too long, closing');
    this.reply(`421 4.4.2 ${this.ctx.serverName} Idle timeout, closing connection`);
    this.close();
  }

  /** Process queued input until it runs dry; then send what was answered. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.mode !== 'closed' && !this.shuttingDown) {
        if (this.mode === 'data') {
          const chunk = this.chunks.shift();
          if (!chunk) break;
          this.queued -= chunk.length;
          const used = this.reader!.feed(chunk);
          if (this.reader!.done) {
            if (used < chunk.length) {
              // Pipelined commands after the end line (RFC 2920 allows MAIL right after ".").
              this.chunks.unshift(chunk.subarray(used));
              this.queued += chunk.length - used;
            }
            this.storing = this.endData();
            await this.storing;
            this.storing = undefined;
          }
          continue;
        }
        const line = this.takeLine();
        if (line === undefined) break;
        const pending = this.command(line);
        if (pending) await pending;
      }
    } catch (err) {
      this.log.error({ err }, 'LMTP session failed');
      this.reply('421 4.3.0 Internal error, closing connection');
      this.close();
    } finally {
      this.pumping = false;
    }
    // Input over and everything answered (a message cut off mid-DATA is dropped: nothing was stored).
    if (this.inputEnded && this.mode !== 'closed') this.close();
    this.flush();
    if (this.queued < MAX_QUEUED && this.socket.isPaused() && this.mode !== 'closed') this.socket.resume();
  }

  /** The next complete command line without its line end, or undefined when there is none yet. */
  private takeLine(): string | undefined {
    for (;;) {
      let before = 0;
      let found = -1;
      let k = 0;
      for (; k < this.chunks.length; k++) {
        found = this.chunks[k]!.indexOf(0x0a);
        if (found >= 0) break;
        before += this.chunks[k]!.length;
      }
      if (found < 0) {
        if (before > this.ctx.maxLineLength && !this.discarding) {
          // Keep no more of it than needed: answer now and drop the rest up to its line end.
          this.reply('500 5.5.2 Line too long');
          this.discarding = true;
        }
        if (this.discarding) {
          this.chunks = [];
          this.queued = 0;
        }
        return undefined;
      }
      const last = this.chunks[k]!;
      const parts = this.chunks.slice(0, k);
      parts.push(last.subarray(0, found));
      const rest = last.subarray(found + 1);
      this.chunks.splice(0, k + 1);
      if (rest.length > 0) this.chunks.unshift(rest);
      this.queued -= before + found + 1;
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      const length = before + found;
      if (length > this.ctx.maxLineLength) {
        this.reply('500 5.5.2 Line too long');
        continue;
      }
      const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      const text = bytes.toString('utf8');
      return text.endsWith('\r') ? text.slice(0, -1) : text;
    }
  }

  /** Run one command; a promise only when it must wait for something. */
  private command(line: string): Promise<void> | void {
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const args = space < 0 ? '' : line.slice(space + 1);
    if (this.ctx.debug) this.log.debug({ verb, args }, 'LMTP command');
    switch (verb) {
      case 'LHLO':
        return this.lhlo(args.trim());
      case 'MAIL':
        return this.mail(args);
      case 'RCPT':
        return this.rcpt(args);
      case 'DATA':
        return this.data(args);
      case 'RSET':
        this.tx = undefined;
        return this.reply('250 2.0.0 OK');
      case 'NOOP':
        return this.reply('250 2.0.0 OK');
      case 'VRFY':
        // RFC 5321 3.5.3: 252 when the server will not say (RCPT is the real test).
        return this.reply('252 2.5.2 Cannot verify the user, but will accept the message and try');
      case 'QUIT':
        this.reply(`221 2.0.0 ${this.ctx.serverName} closing connection`);
        return this.close();
      case 'HELO':
      case 'EHLO':
        // RFC 2033 4.1: an LMTP server must not accept HELO or EHLO, so SMTP is never mistaken for LMTP.
        return this.reply('500 5.5.1 This is an LMTP server: use LHLO');
      default:
        return this.reply(verb === '' ? '500 5.5.2 Empty command' : '500 5.5.2 Unknown command');
    }
  }

  private lhlo(name: string): void {
    if (name === '' || /\s/.test(name)) return this.reply('501 5.5.4 LHLO needs one host name');
    this.lhloName = name;
    this.tx = undefined;
    this.reply(
      [
        `250-${this.ctx.serverName}`,
        '250-PIPELINING',
        '250-ENHANCEDSTATUSCODES',
        '250-8BITMIME',
        `250 SIZE ${this.ctx.maxMessageSize}`,
      ].join('\r\n'),
    );
  }

  private mail(args: string): void {
    if (this.lhloName === undefined) return this.reply('503 5.5.1 LHLO first');
    if (this.tx) return this.reply('503 5.5.1 MAIL already given');
    let arg;
    try {
      arg = parseEnvelopeArg(args, 'FROM');
    } catch (err) {
      if (err instanceof EnvelopeSyntaxError) return this.reply(`501 5.5.4 ${err.message}`);
      throw err;
    }
    for (const [key, value] of arg.params) {
      if (key === 'SIZE') {
        if (!/^\d+$/.test(value)) return this.reply('501 5.5.4 SIZE needs a number');
        // RFC 1870: refuse early what would be refused after the whole message was sent.
        if (Number(value) > this.ctx.maxMessageSize) return this.reply('552 5.3.4 Message too big');
      } else if (key === 'BODY') {
        if (!['7BIT', '8BITMIME'].includes(value.toUpperCase())) return this.reply('501 5.5.4 BODY must be 7BIT or 8BITMIME');
      } else return this.reply(`555 5.5.4 Unsupported parameter ${key}`);
    }
    this.tx = { id: newId(), sender: arg.address, recipients: [] };
    this.reply('250 2.1.0 OK');
  }

  private async rcpt(args: string): Promise<void> {
    const tx = this.tx;
    if (!tx) return this.reply('503 5.5.1 MAIL first');
    let arg;
    try {
      arg = parseEnvelopeArg(args, 'TO');
    } catch (err) {
      if (err instanceof EnvelopeSyntaxError) return this.reply(`501 5.5.4 ${err.message}`);
      throw err;
    }
    if (arg.params.size > 0) return this.reply(`555 5.5.4 Unsupported parameter ${[...arg.params.keys()][0]}`);
    if (tx.recipients.length >= this.ctx.maxRecipients) return this.reply('452 4.5.3 Too many recipients');
    let rcpt: Recipient | null;
    try {
      rcpt = await this.ctx.users.resolve(arg.address);
    } catch (err) {
      this.log.warn({ err, lmtp: tx.id }, 'cannot read the user database');
      return this.reply('451 4.3.0 Temporary user lookup failure');
    }
    if (!rcpt) {
      this.log.info({ lmtp: tx.id, to: arg.address }, 'LMTP unknown recipient');
      return this.reply(`550 5.1.1 <${arg.address}> User doesn't exist`);
    }
    tx.recipients.push(rcpt);
    this.reply('250 2.1.5 OK');
  }

  private data(args: string): void {
    if (args.trim() !== '') return this.reply('501 5.5.4 DATA takes no arguments');
    if (!this.tx) return this.reply('503 5.5.1 MAIL first');
    if (this.tx.recipients.length === 0) return this.reply('503 5.5.1 No valid recipients');
    this.reader = new DotReader(this.ctx.maxMessageSize);
    this.mode = 'data';
    this.reply('354 2.0.0 Send the message, end with <CRLF>.<CRLF>');
  }

  /** After the end line: store for every recipient in RCPT order, one reply each. */
  private async endData(): Promise<void> {
    const tx = this.tx!;
    const reader = this.reader!;
    this.tx = undefined;
    this.reader = undefined;
    this.mode = 'command';
    if (reader.tooBig) {
      this.log.info({ lmtp: tx.id, size: reader.size, limit: this.ctx.maxMessageSize }, 'LMTP message too big');
      for (const r of tx.recipients) this.reply(`552 5.3.4 <${r.address}> Message too big`);
      return;
    }
    const body = reader.message();
    const date = new Date();
    for (const r of tx.recipients) {
      const head = traceHeaders({
        sender: tx.sender,
        recipient: r.address,
        lhloName: this.lhloName!,
        client: this.client,
        serverName: this.ctx.serverName,
        id: tx.id,
        date,
      });
      const outcome = await storeForRecipient(this.ctx.store, r, Buffer.concat([head, body]));
      const fields = { lmtp: tx.id, from: tx.sender, to: r.address, user: r.user, size: body.length };
      if (outcome.mailbox !== undefined) this.log.info({ ...fields, mailbox: outcome.mailbox }, 'LMTP delivered');
      else this.log.warn({ ...fields, error: outcome.error, reply: outcome.reply }, 'LMTP delivery failed');
      this.reply(outcome.reply);
    }
  }

  private reply(text: string): void {
    if (this.ctx.debug) this.log.debug({ reply: text }, 'LMTP reply');
    this.out.push(text, '\r\n');
  }

  private flush(): void {
    if (this.out.length === 0 || this.socket.destroyed || this.socket.writableEnded) {
      this.out = [];
      return;
    }
    this.socket.write(this.out.join(''));
    this.out = [];
  }

  /** Send what is pending and close; a client that does not close its side is cut after a moment. */
  private close(): void {
    if (this.mode === 'closed') return;
    this.mode = 'closed';
    this.flush();
    this.chunks = [];
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2_000).unref();
  }
}
