/**
 * The proxy process: listeners (plain with STARTTLS, implicit TLS), the login resolver, the
 * connection cache, statistics and the admin endpoint, wired together.
 */
import net from 'node:net';
import tls from 'node:tls';
import type http from 'node:http';
import { silentLogger, type Logger } from '../log/logger.js';
import { ConnectionPool, DEFAULT_POOL_OPTIONS, type PoolOptions } from './pool.js';
import { ProxyStats, type StatsSnapshot } from './stats.js';
import { ClientSession } from './session.js';
import { LoginResolver, type LocalPasswords, type OAuth2Account } from './login.js';
import { Upstream, type UpstreamOptions } from './upstream.js';
import type { Router } from './router.js';
import type { Backend } from './backend.js';
import { DEFAULT_FRAMER_LIMITS, type FramerLimits } from './framer.js';
import { startAdminServer, portOf } from './admin.js';

/** Everything a proxy is built from (the CLI builds this from flags and the config file). */
export interface ProxyServerOptions {
  router: Router;
  /** Plain listener (STARTTLS offered when `tls` is set). Port 0 picks a free port. */
  listen?: { host: string; port: number };
  /** Implicit-TLS listener (needs `tls`). */
  listenTls?: { host: string; port: number };
  /** Certificate and key (PEM) for STARTTLS and the implicit-TLS port. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Refuse LOGIN on the plain port until STARTTLS (default: false). */
  requireTls?: boolean;
  pool?: Partial<PoolOptions>;
  limits?: Partial<FramerLimits>;
  /** Seconds a client may take to log in (default 60). */
  preauthTimeoutSeconds?: number;
  upstream?: UpstreamOptions;
  /** OAuth2 translation accounts and the local password table. */
  oauth2?: Map<string, OAuth2Account>;
  passwords?: LocalPasswords;
  /** Let logins that are not OAuth2 accounts pass through (default true). */
  passthrough?: boolean;
  /** Admin HTTP endpoint; `optional`: a port already in use is logged, not fatal. */
  admin?: { host: string; port: number; optional?: boolean };
  log?: Logger;
  /** Name in the greeting. */
  name?: string;
  /** Send the client's address to backends that offer ID, before logging in (x-originating-ip; default false). */
  forwardClientAddress?: boolean;
  /** Replace how upstream connections are made (tests). */
  connect?: (backend: Backend) => Promise<Upstream>;
}

/** A running (or startable) imapkit proxy. */
export class ProxyServer {
  readonly pool: ConnectionPool;
  readonly stats = new ProxyStats();
  private readonly log: Logger;
  private readonly sessions = new Set<ClientSession>();
  private plain: net.Server | undefined;
  private secure: tls.Server | undefined;
  private adminServer: http.Server | undefined;
  private readonly secureContext: tls.SecureContext | undefined;
  private readonly resolver: LoginResolver;

  constructor(private readonly opts: ProxyServerOptions) {
    this.log = opts.log ?? silentLogger();
    this.pool = new ConnectionPool({ ...DEFAULT_POOL_OPTIONS, ...opts.pool });
    this.pool.onEvict = (backendId, reason) => {
      this.stats.evicted(backendId, reason);
      this.log.debug({ backend: backendId, reason }, 'cached connection dropped');
    };
    this.secureContext = opts.tls ? tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }) : undefined;
    this.resolver = new LoginResolver({ router: opts.router, pool: this.pool, oauth2: opts.oauth2, passwords: opts.passwords, passthrough: opts.passthrough });
    for (const b of opts.router.backends()) this.stats.backend(b.id);
  }

  /** Bind the listeners and the admin endpoint. */
  async start(): Promise<void> {
    if (this.opts.listenTls && !this.secureContext) throw new Error('the implicit-TLS listener needs a certificate and key');
    if (this.opts.listen) {
      const server = net.createServer((s) => this.accept(s, false));
      this.plain = server;
      await listen(server, this.opts.listen.host, this.opts.listen.port);
      this.log.info({ host: this.opts.listen.host, port: portOf(server), starttls: Boolean(this.secureContext) }, 'proxy listening');
    }
    if (this.opts.listenTls && this.secureContext) {
      // Given only `secureContext`, tls.Server cannot pick a signature algorithm for EC keys: pass the PEMs.
      const pem = this.opts.tls as { cert: string | Buffer; key: string | Buffer };
      const server = tls.createServer({ cert: pem.cert, key: pem.key, minVersion: 'TLSv1.2' }, (s) => this.accept(s, true));
      server.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'TLS handshake failed'));
      this.secure = server;
      await listen(server, this.opts.listenTls.host, this.opts.listenTls.port);
      this.log.info({ host: this.opts.listenTls.host, port: portOf(server) }, 'proxy listening (implicit TLS)');
    }
    if (this.opts.admin) {
      try {
        this.adminServer = await startAdminServer(this.opts.admin.host, this.opts.admin.port, () => this.snapshot());
        this.log.info({ host: this.opts.admin.host, port: portOf(this.adminServer) }, 'admin endpoint listening (/metrics, /stats)');
      } catch (err) {
        if (!this.opts.admin.optional) {
          await this.stop();
          throw err;
        }
        this.log.warn({ err: (err as Error).message }, 'admin endpoint not started');
      }
    }
  }

  /** Ports actually bound (0 when that listener is off). */
  ports(): { plain: number; tls: number; admin: number } {
    return {
      plain: this.plain ? portOf(this.plain) : 0,
      tls: this.secure ? portOf(this.secure) : 0,
      admin: this.adminServer ? portOf(this.adminServer) : 0,
    };
  }

  /** Statistics now. */
  snapshot(): StatsSnapshot {
    return this.stats.snapshot(this.pool.sizeByBackend());
  }

  /** Stop listening, close client sessions and cached connections. */
  async stop(): Promise<void> {
    const closing: Array<Promise<void>> = [];
    for (const s of [this.plain, this.secure, this.adminServer]) {
      if (s) closing.push(new Promise((resolve) => s.close(() => resolve())));
    }
    for (const s of this.sessions) s.close();
    this.pool.closeAll();
    (this.adminServer as http.Server | undefined)?.closeAllConnections?.();
    await Promise.all(closing);
  }

  private accept(socket: net.Socket, secure: boolean): void {
    const session = new ClientSession(socket, secure, {
      resolver: this.resolver,
      pool: this.pool,
      stats: this.stats,
      log: this.log,
      connect: this.opts.connect ?? ((b) => Upstream.connect(b, this.opts.upstream)),
      preauth: {
        starttls: Boolean(this.secureContext),
        requireTls: this.opts.requireTls,
        limits: { ...DEFAULT_FRAMER_LIMITS, ...this.opts.limits },
        name: this.opts.name,
      },
      secureContext: this.secureContext,
      preauthTimeoutMs: (this.opts.preauthTimeoutSeconds ?? 60) * 1000,
      resetTimeoutMs: this.opts.upstream?.commandTimeoutMs ?? 15_000,
      forwardClientAddress: this.opts.forwardClientAddress === true,
      onClose: (s) => this.sessions.delete(s),
    });
    this.sessions.add(session);
    session.start();
  }
}

function listen(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
