/**
 * ImapServer: the listening side. Plain TCP (with STARTTLS when a certificate is configured) and
 * optionally implicit TLS on a second port; per-address connection limits; a clean close().
 */
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { createRequire } from 'node:module';
import type { MailStore, UserDb } from '../store/contract.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { ConnectionLimiter, LoginThrottle, resolveLimits, type LimitSettings } from './limits.js';
import { Session, type SessionConfig } from './session.js';
import { createTlsContext, type TlsMaterial } from './tls.js';
import { closeWithGrace } from './grace.js';

const require = createRequire(import.meta.url);
const VERSION = (require('../../package.json') as { version: string }).version;

/** Options of ImapServer. */
export interface ImapServerOptions {
  store: MailStore;
  /** Where LOGIN/AUTHENTICATE check passwords; default the store's own user database. */
  users?: UserDb;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Plain/STARTTLS port (default 1143; 0 picks a free one). */
  port?: number;
  /** Certificate and key: enables STARTTLS, and implicit TLS when implicitPort is set (0 picks a free one). */
  tls?: TlsMaterial & { implicitPort?: number };
  /** Allow LOGIN/AUTHENTICATE without TLS from non-loopback clients (RFC 9051 says no). */
  allowPlaintextLogin?: boolean;
  /** Treat loopback clients as remote for LOGINDISABLED (tests of the off-loopback rules). */
  loopbackIsRemote?: boolean;
  limits?: Partial<LimitSettings>;
  log?: Logger;
  /** Protocol trace at debug level (passwords redacted). */
  debug?: boolean;
}

/** The addresses the server ended up listening on. */
export interface ListenInfo {
  host: string;
  port: number;
  tlsPort?: number;
}

/** An IMAP server over a MailStore. */
export class ImapServer {
  private readonly config: SessionConfig;
  private readonly limiter: ConnectionLimiter;
  private readonly secureContext: SecureContext | undefined;
  private readonly servers: Server[] = [];
  private readonly sessions = new Set<Session>();
  private readonly sockets = new Set<Socket>();
  /** Implicit-TLS connections still in their handshake: no session to say BYE yet. */
  private readonly handshaking = new Set<Socket>();
  private closing = false;
  private info: ListenInfo | undefined;

  constructor(private readonly opts: ImapServerOptions) {
    const users = opts.users ?? opts.store.users;
    if (!users) throw new Error(`the ${opts.store.kind} store has no user database: pass users (e.g. a passwd-file)`);
    const limits = resolveLimits(opts.limits);
    this.secureContext = opts.tls ? createTlsContext(opts.tls) : undefined;
    this.limiter = new ConnectionLimiter(limits);
    this.config = {
      store: opts.store,
      users,
      limits,
      throttle: new LoginThrottle(limits),
      log: opts.log ?? silentLogger(),
      debug: opts.debug === true,
      allowPlaintextLogin: opts.allowPlaintextLogin === true,
      loopbackIsRemote: opts.loopbackIsRemote === true,
      secureContext: this.secureContext,
      serverId: { name: 'imapkit', version: VERSION, vendor: 'imapkit' },
    };
  }

  /** Start listening; resolves with the bound ports. */
  async listen(): Promise<ListenInfo> {
    if (this.info) return this.info;
    const host = this.opts.host ?? '127.0.0.1';
    const port = await this.bind(host, this.opts.port ?? 1143, false);
    const info: ListenInfo = { host, port };
    if (this.opts.tls?.implicitPort !== undefined) info.tlsPort = await this.bind(host, this.opts.tls.implicitPort, true);
    this.info = info;
    this.config.log.info(info, 'IMAP server listening');
    return info;
  }

  /** The plain port (after listen()). */
  get port(): number {
    if (!this.info) throw new Error('ImapServer.listen() has not completed');
    return this.info.port;
  }

  /** The implicit-TLS port, if any (after listen()). */
  get tlsPort(): number | undefined {
    return this.info?.tlsPort;
  }

  /** Open connections now. */
  get connections(): number {
    return this.sockets.size;
  }

  /** Stop accepting, say BYE to every session, and resolve once all connections are closed. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const stopped = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    for (const socket of this.handshaking) socket.destroy();
    for (const session of this.sessions) session.shutdown();
    const allClosed = Promise.all([...this.sockets].map((s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())))));
    // Clients get a moment to read their BYE; after that the connections are cut.
    await closeWithGrace(this.sockets, allClosed);
    await Promise.all([...this.sessions].map((s) => s.closed));
    await stopped;
  }

  private bind(host: string, port: number, implicitTls: boolean): Promise<number> {
    const server = createServer({ noDelay: true }, (socket) => this.onConnection(socket, implicitTls));
    server.on('error', (err) => this.config.log.error({ err }, 'listener error'));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.removeListener('error', reject);
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  private onConnection(socket: Socket, implicitTls: boolean): void {
    const address = socket.remoteAddress ?? 'unknown';
    if (this.closing) {
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined);
    if (!this.limiter.acquire(address)) {
      this.config.log.warn({ remote: address }, 'connection limit reached');
      // Over TLS a plaintext BYE would be noise; the client just sees the close.
      if (implicitTls) socket.destroy();
      else socket.end('* BYE [LIMIT] Too many connections from your address.\r\n');
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.limiter.release(address);
    });
    socket.setNoDelay(true);
    if (!implicitTls) {
      this.startSession(socket, address, false);
      return;
    }
    const secure = new TLSSocket(socket, { isServer: true, secureContext: this.secureContext });
    secure.on('error', () => secure.destroy());
    this.handshaking.add(socket);
    socket.once('close', () => this.handshaking.delete(socket));
    // The handshake gets the pre-authentication timeout, like a silent plaintext client.
    socket.setTimeout(this.config.limits.preAuthTimeoutMs, () => socket.destroy());
    secure.once('secure', () => {
      this.handshaking.delete(socket);
      socket.setTimeout(0);
      this.startSession(secure, address, true);
    });
  }

  private startSession(socket: Socket | TLSSocket, address: string, secure: boolean): void {
    const session = new Session(socket, this.config, { remoteAddress: address, secure });
    this.sessions.add(session);
    void session.closed.then(() => this.sessions.delete(session));
    session.start();
  }
}
