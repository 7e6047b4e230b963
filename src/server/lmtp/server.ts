/**
 * LmtpServer: the listening side of LMTP (RFC 2033), on TCP or a unix socket, storing into the
 * same MailStore object as the IMAP server, so IMAP sessions in IDLE hear of a delivery at once
 * (the store's watch() listeners fire on append). No authentication exists in LMTP: whoever can
 * connect can deliver, so the listen address is the access control (loopback or a 0660 socket).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { chmod, lstat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { MailStore, UserDb } from '../../store/contract.js';
import { silentLogger, type Logger } from '../../log/logger.js';
import { formatLmtpAddress, type LmtpListen } from './listen-address.js';
import { UserDirectory } from './recipients.js';
import { LmtpSession, type LmtpContext } from './session.js';
import { closeWithGrace } from '../grace.js';

/** Options of LmtpServer. */
export interface LmtpServerOptions {
  store: MailStore;
  /** Who exists: RCPT TO is refused (550 5.1.1) for anyone else. */
  users: Pick<UserDb, 'listUsers'>;
  listen: LmtpListen;
  log?: Logger;
  /** Protocol trace at debug level (commands and replies; message text never). */
  debug?: boolean;
  /** Largest message accepted (the IMAP appendLimit), bytes; default 64 MiB. */
  maxMessageSize?: number;
  /** Recipients per transaction; default 100. */
  maxRecipients?: number;
  /** Longest command line, bytes; default 2048 (RFC 5321 4.5.3.1.4 asks for 512 at least). */
  maxLineLength?: number;
  /** Inactivity before a connection is closed with 421, ms; default 5 minutes (RFC 5321 4.5.3.2.7). */
  idleTimeoutMs?: number;
  /** Name in the greeting and in Received; default the host name. */
  serverName?: string;
}

/** Where the server ended up listening (a TCP port 0 becomes the real port). */
export type LmtpListenInfo = LmtpListen;

/** Is something answering on this unix socket? */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Remove a socket file left by a process that died; refuse to touch a live socket or any other file. */
export async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new Error(`LMTP socket ${path}: the path exists and is not a socket`);
  if (await socketIsLive(path)) throw new Error(`LMTP socket ${path}: another process is listening on it`);
  await unlink(path);
}

/** An LMTP server over a MailStore. */
export class LmtpServer {
  private readonly ctx: LmtpContext;
  private readonly sessions = new Set<LmtpSession>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private info: LmtpListenInfo | undefined;
  private closing = false;

  constructor(private readonly opts: LmtpServerOptions) {
    this.ctx = {
      store: opts.store,
      users: new UserDirectory(opts.users),
      log: opts.log ?? silentLogger(),
      debug: opts.debug === true,
      serverName: opts.serverName ?? hostname(),
      maxMessageSize: opts.maxMessageSize ?? 64 * 1024 * 1024,
      maxRecipients: opts.maxRecipients ?? 100,
      maxLineLength: opts.maxLineLength ?? 2048,
      idleTimeoutMs: opts.idleTimeoutMs ?? 5 * 60_000,
    };
  }

  /** Start listening; resolves with the bound address. */
  async listen(): Promise<LmtpListenInfo> {
    if (this.info) return this.info;
    const listen = this.opts.listen;
    if (listen.kind === 'unix') await removeStaleSocket(listen.path);
    // Half-open: a client that writes its whole session and shuts down its side still gets every reply.
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.onConnection(socket));
    server.on('error', (err) => this.ctx.log.error({ err }, 'LMTP listener error'));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.removeListener('error', reject);
        resolve();
      };
      if (listen.kind === 'unix') server.listen(listen.path, done);
      else server.listen(listen.port, listen.host, done);
    });
    if (listen.kind === 'unix') {
      // The MTA's group (e.g. postfix) is given access by the directory or group; others never.
      await chmod(listen.path, 0o660);
      this.info = listen;
    } else {
      const addr = server.address();
      this.info = { kind: 'tcp', host: listen.host, port: typeof addr === 'object' && addr ? addr.port : listen.port };
    }
    this.ctx.log.info({ lmtp: formatLmtpAddress(this.info) }, 'LMTP server listening');
    return this.info;
  }

  /** The bound address (after listen()). */
  get address(): LmtpListenInfo {
    if (!this.info) throw new Error('LmtpServer.listen() has not completed');
    return this.info;
  }

  /** Open connections now. */
  get connections(): number {
    return this.sockets.size;
  }

  /**
   * Stop accepting, let every message already received be stored and answered, say 421 to the
   * rest, and resolve once nothing touches the store any more (the caller closes it next).
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const server = this.server;
    const stopped = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const sessions = [...this.sessions];
    const allClosed = Promise.all(sessions.map((s) => s.closed));
    await Promise.all(sessions.map((s) => s.shutdown()));
    await closeWithGrace(this.sockets, allClosed);
    for (const s of this.sockets) s.destroy();
    await Promise.all(sessions.map((s) => s.settled()));
    await stopped;
    if (this.opts.listen.kind === 'unix') await unlink(this.opts.listen.path).catch(() => undefined);
  }

  private onConnection(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const client = socket.remoteAddress ? `[${socket.remoteAddress}]` : 'local';
    const session = new LmtpSession(socket, this.ctx, client);
    this.sessions.add(session);
    // Kept until its storing is over too: a client may hang up while its message is being stored.
    void session.closed.then(() => session.settled()).then(() => this.sessions.delete(session));
    session.start();
  }
}
