/**
 * One client connection: the pre-auth state machine on the socket, the login (cache hit or new
 * upstream connection), then the byte pipe with backpressure until the client logs out, when the
 * proxy answers the LOGOUT itself, resets the upstream session and gives it to the cache.
 */
import type net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import { PreAuthSession, type PreAuthAction, type PreAuthOptions, type LoginOutcome } from './preauth.js';
import { ClientStreamScanner, TaggedReplyWatcher } from './scanner.js';
import { Upstream, UpstreamError, type TaggedReply, type UpstreamAuth } from './upstream.js';
import type { ConnectionPool } from './pool.js';
import type { ProxyStats } from './stats.js';
import { LoginRefused, type LoginPlan, type LoginResolver } from './login.js';
import type { Backend } from './backend.js';
import { RouteError } from './router.js';

/** What a session needs from its server. */
export interface SessionDeps {
  resolver: LoginResolver;
  pool: ConnectionPool;
  stats: ProxyStats;
  log: Logger;
  connect: (backend: Backend) => Promise<Upstream>;
  preauth: Omit<PreAuthOptions, 'secure'>;
  /** For STARTTLS. */
  secureContext?: tls.SecureContext;
  /** Close a client that has not logged in after this long (ms). */
  preauthTimeoutMs: number;
  /** How long to wait for the backend while resetting a session after LOGOUT (ms). */
  resetTimeoutMs: number;
  /** Tell a backend that offers ID the client's address before logging in (RFC 2971 x-originating-ip). */
  forwardClientAddress?: boolean;
  onClose: (s: ClientSession) => void;
}

type Phase = 'preauth' | 'login' | 'pipe' | 'logout' | 'closing' | 'closed';
const LF = 0x0a;
/**
 * Bytes a socket may hold unsent before its source is paused. Node's own mark (16 KiB) is below
 * one 64 KiB read: pausing at it would stall the pipe on every chunk of a large FETCH.
 */
const PIPE_HIGH_WATER = 1024 * 1024;
let sessionSeq = 0;

/** An address as ID may carry it: IPv4-mapped IPv6 unwrapped, anything but address characters refused. */
function plainAddress(a: string | undefined): string | undefined {
  if (a === undefined) return undefined;
  const v = a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
  return /^[0-9A-Fa-f:.]{2,45}$/.test(v) ? v : undefined;
}

/** The ID fields naming a client connection's two ends (RFC 2971 with Dovecot's x- names); none for a unix socket. */
export function clientAddressFields(socket: Pick<net.Socket, 'remoteAddress' | 'remotePort' | 'localAddress' | 'localPort'>): string[] {
  const rip = plainAddress(socket.remoteAddress);
  const lip = plainAddress(socket.localAddress);
  if (rip === undefined) return [];
  const out = ['x-originating-ip', rip];
  if (socket.remotePort !== undefined) out.push('x-originating-port', String(socket.remotePort));
  if (lip !== undefined) out.push('x-connected-ip', lip);
  if (socket.localPort !== undefined) out.push('x-connected-port', String(socket.localPort));
  return out;
}

/** A client connection through the proxy. */
export class ClientSession {
  readonly id = ++sessionSeq;
  private phase: Phase = 'preauth';
  private readonly pre: PreAuthSession;
  private readonly scanner = new ClientStreamScanner();
  private up: Upstream | undefined;
  private upSocket: net.Socket | undefined;
  private plan: LoginPlan | undefined;
  private user = '';
  private lastToClientLF = true;
  private preTimer: NodeJS.Timeout | undefined;
  private clientBlocked = false;
  private upBlocked = false;
  private readonly log: Logger;

  private readonly onPreData = (chunk: Buffer): void => this.apply(this.pre.push(chunk));
  private readonly onClientData = (chunk: Buffer): void => this.fromClient(chunk);
  private readonly onUpData = (chunk: Buffer): void => this.fromUpstream(chunk);
  private readonly onClientGone = (): void => this.clientGone();
  private readonly onUpGone = (): void => this.upstreamGone();

  constructor(
    private socket: net.Socket,
    secure: boolean,
    private readonly deps: SessionDeps,
  ) {
    this.log = deps.log.child({ session: this.id });
    this.pre = new PreAuthSession({
      ...deps.preauth,
      secure,
      trace: deps.log.isLevelEnabled('debug') ? (e) => this.log.debug(e, 'client command before login') : undefined,
    });
  }

  /** Send the greeting and start reading. */
  start(): void {
    const s = this.socket;
    s.setNoDelay(true);
    s.on('data', this.onPreData);
    s.on('close', this.onClientGone);
    s.on('error', (err) => this.log.debug({ err: err.message }, 'client socket error'));
    this.deps.stats.clientsConnected++;
    this.deps.stats.clientsTotal++;
    this.preTimer = setTimeout(() => {
      if (this.phase === 'preauth') this.apply([{ type: 'write', data: Buffer.from('* BYE Autologout: no login in time\r\n') }, { type: 'close', reason: 'preauth timeout' }]);
    }, this.deps.preauthTimeoutMs);
    this.preTimer.unref();
    s.write(this.pre.greeting());
  }

  /** Close the client now (shutdown). */
  close(): void {
    if (this.clientClosed) return;
    this.socket.end('* BYE Server shutting down\r\n');
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private apply(actions: PreAuthAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'write':
          if (!this.socket.destroyed) this.socket.write(a.data);
          break;
        case 'close':
          this.log.debug({ reason: a.reason }, 'closing before login');
          this.phase = 'closed';
          this.socket.end();
          setTimeout(() => this.socket.destroy(), 2000).unref();
          break;
        case 'starttls':
          this.startTls();
          break;
        case 'login':
          void this.login(a);
          break;
      }
    }
  }

  private startTls(): void {
    const ctx = this.deps.secureContext;
    if (!ctx) {
      this.socket.destroy();
      return;
    }
    this.socket.off('data', this.onPreData);
    const secured = new tls.TLSSocket(this.socket, { isServer: true, secureContext: ctx });
    this.socket = secured;
    secured.once('secure', () => {
      this.log.debug('STARTTLS done');
      secured.on('data', this.onPreData);
      this.apply(this.pre.tlsStarted());
    });
    secured.on('close', this.onClientGone);
    secured.on('error', (err) => {
      this.log.debug({ err: err.message }, 'client TLS error');
      secured.destroy();
    });
  }

  private async login(a: PreAuthAction & { type: 'login' }): Promise<void> {
    this.phase = 'login';
    this.user = a.authzid ?? a.user;
    // Nothing more is parsed until the login is decided: let TCP push back instead of buffering.
    this.socket.pause();
    const started = Date.now();
    let outcome: LoginOutcome;
    let hit = false;
    try {
      const plan = await this.deps.resolver.plan({ user: a.user, password: a.password, authzid: a.authzid, mechanism: a.mechanism });
      this.plan = plan;
      const counters = this.deps.stats.backend(plan.backend.id);
      const cached = this.deps.pool.take(plan.backend.id, plan.poolUser, plan.mac);
      if (cached) {
        hit = true;
        counters.hits++;
        this.up = cached;
        outcome = { ok: true, capabilities: cached.capabilities };
      } else {
        counters.misses++;
        outcome = await this.newUpstream(plan);
      }
      if (outcome.ok) counters.loginsOk++;
      else counters.loginsFailed++;
    } catch (err) {
      outcome = this.loginError(err);
    }
    this.log.info(
      { user: this.user, backend: this.plan?.backend.id, mode: this.plan?.mode, ok: outcome.ok, cache: outcome.ok ? (hit ? 'hit' : 'miss') : undefined, ms: Date.now() - started },
      outcome.ok ? 'login' : 'login failed',
    );
    if (this.phase !== 'login') {
      // The client went away meanwhile: a clean authenticated connection is still worth keeping.
      if (outcome.ok && this.up && this.plan) this.deps.pool.put(this.up, this.plan.backend.id, this.plan.poolUser, this.plan.mac);
      else void this.up?.logout();
      this.up = undefined;
      return;
    }
    const actions = this.pre.loginResult(outcome);
    if (outcome.ok) {
      for (const x of actions) if (x.type === 'write') this.socket.write(x.data);
      this.startPipe();
    } else {
      this.phase = 'preauth';
      this.socket.resume();
      this.apply(actions);
    }
  }

  private async newUpstream(plan: LoginPlan): Promise<LoginOutcome> {
    if (plan.verifyLocal && !(await plan.verifyLocal())) {
      return { ok: false, code: 'AUTHENTICATIONFAILED', text: 'Authentication failed' };
    }
    const counters = this.deps.stats.backend(plan.backend.id);
    let up = await this.deps.connect(plan.backend);
    counters.upstreamConnects++;
    try {
      if (this.deps.forwardClientAddress) await this.sendClientAddress(up);
      const auth: UpstreamAuth = await plan.upstreamAuth();
      let reply: TaggedReply = await up.login(auth);
      if (reply.status !== 'OK' && plan.retryAuth) {
        const retry = await plan.retryAuth(auth);
        if (retry) {
          this.log.info({ user: this.user, backend: plan.backend.id }, 'upstream refused the token: refreshed, retrying');
          if (up.dead) {
            // Some servers hang up after a failed AUTHENTICATE: retry on a new connection.
            up = await this.deps.connect(plan.backend);
            counters.upstreamConnects++;
          }
          reply = await up.login(retry);
        }
      }
      if (reply.status !== 'OK') {
        void up.logout();
        const code = reply.code?.split(' ')[0];
        return { ok: false, code: code ?? 'AUTHENTICATIONFAILED', text: reply.text || 'Authentication failed' };
      }
    } catch (err) {
      up.destroy();
      throw err;
    }
    this.up = up;
    return { ok: true, capabilities: up.capabilities };
  }

  /**
   * ID ("x-originating-ip" ... "x-connected-port" ...) before the login, as Dovecot's own proxy
   * does: a backend that trusts the proxy (Dovecot's login_trusted_networks) then logs, throttles
   * failed logins and applies its rules by the real client address, not the proxy's. Its answer
   * does not matter; a backend without ID is not asked.
   */
  private async sendClientAddress(up: Upstream): Promise<void> {
    if (!up.has('ID')) return;
    const fields = clientAddressFields(this.socket);
    if (fields.length === 0) return;
    await up.command(`ID (${fields.map((f) => `"${f}"`).join(' ')})`);
  }

  private loginError(err: unknown): LoginOutcome {
    if (err instanceof RouteError || err instanceof LoginRefused) {
      this.deps.stats.loginsFailedLocal++;
      this.log.info({ user: this.user, reason: err.message }, 'login refused');
      return { ok: false, code: 'AUTHENTICATIONFAILED', text: 'Authentication failed' };
    }
    if (this.plan) this.deps.stats.backend(this.plan.backend.id).loginErrors++;
    else this.deps.stats.loginsFailedLocal++;
    const message = err instanceof Error ? err.message : String(err);
    this.log.warn({ user: this.user, backend: this.plan?.backend.id, err: message }, 'login could not be completed');
    return { ok: false, code: 'UNAVAILABLE', text: err instanceof UpstreamError ? 'Backend unavailable' : 'Temporary failure' };
  }

  private startPipe(): void {
    const up = this.up as Upstream;
    const plan = this.plan as LoginPlan;
    clearTimeout(this.preTimer);
    this.phase = 'pipe';
    this.deps.stats.backend(plan.backend.id).active++;
    const rest = this.pre.takeRest();
    const { socket: us, leftover } = up.detach();
    this.upSocket = us;
    us.setNoDelay(true);
    us.on('data', this.onUpData);
    us.on('close', this.onUpGone);
    us.on('error', this.onUpGone);
    this.socket.off('data', this.onPreData);
    this.socket.on('data', this.onClientData);
    if (leftover.length > 0) this.fromUpstream(leftover);
    if (rest.length > 0) this.fromClient(rest);
    if (us.isPaused()) us.resume();
    if (this.phase === 'pipe') this.socket.resume();
  }

  private fromClient(chunk: Buffer): void {
    if (this.phase !== 'pipe') return;
    const us = this.upSocket as net.Socket;
    const r = this.scanner.feed(chunk);
    const counters = this.deps.stats.backend((this.plan as LoginPlan).backend.id);
    if (r.forward.length === 1) {
      counters.bytesToServer += r.forward[0].length;
      us.write(r.forward[0]);
    } else if (r.forward.length > 1) {
      const data = Buffer.concat(r.forward);
      counters.bytesToServer += data.length;
      us.write(data);
    }
    const ok = us.writableLength < PIPE_HIGH_WATER;
    if (r.logoutTag !== undefined) {
      this.logout(r.logoutTag);
      return;
    }
    if (!ok && !this.clientBlocked) {
      this.clientBlocked = true;
      this.socket.pause();
      us.once('drain', () => {
        this.clientBlocked = false;
        if (this.phase === 'pipe') this.socket.resume();
      });
    }
  }

  private fromUpstream(chunk: Buffer): void {
    if (this.phase === 'logout') {
      this.logoutData(chunk);
      return;
    }
    if (this.phase !== 'pipe' && this.phase !== 'closing') return;
    this.deps.stats.backend((this.plan as LoginPlan).backend.id).bytesToClient += chunk.length;
    this.lastToClientLF = chunk[chunk.length - 1] === LF;
    if (this.socket.destroyed) return;
    this.socket.write(chunk);
    if (this.socket.writableLength >= PIPE_HIGH_WATER && !this.upBlocked) {
      this.upBlocked = true;
      const us = this.upSocket as net.Socket;
      us.pause();
      this.socket.once('drain', () => {
        this.upBlocked = false;
        us.resume();
      });
    }
  }

  // --- LOGOUT: answer it here, reset the upstream session, cache it ---

  private watcher: TaggedReplyWatcher | undefined;
  private clientTag = '';
  private barrier = '';
  private resetTimer: NodeJS.Timeout | undefined;

  private logout(clientTag: string): void {
    const up = this.up as Upstream;
    const us = this.upSocket as net.Socket;
    this.socket.off('data', this.onClientData);
    this.socket.pause();
    const reason = this.scanner.uncacheable ?? (this.deps.pool.enabled ? undefined : 'cache disabled');
    if (reason !== undefined) {
      // Not reusable: let the backend answer the LOGOUT and close, as it would without a proxy.
      this.log.debug({ reason }, 'session not cacheable');
      this.phase = 'closing';
      us.write(`${clientTag} LOGOUT\r\n`);
      return;
    }
    this.phase = 'logout';
    this.clientTag = clientTag;
    this.barrier = this.scanner.sawSelect && up.has('UNSELECT') ? 'UNSELECT' : 'NOOP';
    this.log.debug({ reset: this.barrier, commands: this.scanner.commands }, 'client LOGOUT answered here; resetting the upstream session');
    const tag = up.nextTag();
    this.watcher = new TaggedReplyWatcher(tag, this.lastToClientLF);
    this.resetTimer = setTimeout(() => {
      this.log.warn('backend did not answer the reset: dropping the connection');
      this.socket.end(`* BYE Logging out\r\n${clientTag} OK LOGOUT completed\r\n`);
      this.dropUpstream();
    }, this.deps.resetTimeoutMs);
    this.resetTimer.unref();
    us.write(`${tag} ${this.barrier}\r\n`);
    if (us.isPaused()) us.resume();
  }

  private logoutData(chunk: Buffer): void {
    const w = this.watcher as TaggedReplyWatcher;
    const r = w.feed(chunk);
    if (r.forward && !this.socket.destroyed) this.socket.write(r.forward);
    if (!r.done) return;
    clearTimeout(this.resetTimer);
    this.watcher = undefined;
    if (!this.socket.destroyed) this.socket.end(`* BYE Logging out\r\n${this.clientTag} OK LOGOUT completed\r\n`);
    const status = (r.line ?? '').split(' ')[1]?.toUpperCase();
    void this.cacheUpstream(r.rest ?? Buffer.alloc(0), this.barrier === 'NOOP' && status !== 'OK');
  }

  private async cacheUpstream(rest: Buffer, broken: boolean): Promise<void> {
    const up = this.up as Upstream;
    const plan = this.plan as LoginPlan;
    this.releaseUpstreamSocket();
    this.phase = 'closed';
    if (broken) {
      void up.logout();
      return;
    }
    up.attach(rest);
    try {
      if (this.scanner.sawSelect && this.barrier !== 'UNSELECT') {
        // Without UNSELECT: a failed EXAMINE of a name that cannot exist leaves no mailbox selected
        // (RFC 3501 6.3.1); CLOSE is never used because it expunges.
        const r = await up.command(`EXAMINE "imapkit-reset-${randomBytes(8).toString('hex')}"`);
        if (r.status === 'OK') throw new Error('reset mailbox unexpectedly exists');
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'reset failed: dropping the connection');
      up.destroy();
      return;
    }
    if (this.deps.pool.put(up, plan.backend.id, plan.poolUser, plan.mac)) {
      this.deps.stats.backend(plan.backend.id).cachedOnLogout++;
      this.log.debug({ user: this.user, backend: plan.backend.id }, 'upstream connection cached');
    }
  }

  private releaseUpstreamSocket(): void {
    const us = this.upSocket;
    if (!us) return;
    us.off('data', this.onUpData);
    us.off('close', this.onUpGone);
    us.off('error', this.onUpGone);
    this.upSocket = undefined;
    if (this.plan) this.deps.stats.backend(this.plan.backend.id).active--;
  }

  private dropUpstream(): void {
    const up = this.up;
    this.releaseUpstreamSocket();
    this.phase = 'closed';
    up?.destroy();
  }

  private clientClosed = false;
  private clientGone(): void {
    // After STARTTLS both the TCP and the TLS socket report the close.
    if (this.clientClosed) return;
    this.clientClosed = true;
    clearTimeout(this.preTimer);
    if (this.phase === 'pipe' || this.phase === 'closing') {
      // The client vanished mid-session (or after a LOGOUT the backend answers): state unknown, not reusable.
      const up = this.up;
      const piped = this.upSocket !== undefined;
      this.releaseUpstreamSocket();
      if (up && piped) {
        up.attach();
        void up.logout();
      }
      this.phase = 'closed';
    } else if (this.phase !== 'logout') {
      // preauth: nothing upstream; login: the login finishes and caches or closes the connection.
      this.phase = 'closed';
    }
    this.deps.stats.clientsConnected--;
    this.deps.stats.preauthErrors += this.pre.errors;
    this.deps.onClose(this);
  }

  private upstreamGone(): void {
    if (this.phase !== 'pipe' && this.phase !== 'closing' && this.phase !== 'logout') return;
    const wasLogout = this.phase === 'logout';
    clearTimeout(this.resetTimer);
    this.releaseUpstreamSocket();
    this.phase = 'closed';
    this.up?.destroy();
    if (this.socket.destroyed) return;
    if (wasLogout) this.socket.end(`* BYE Logging out\r\n${this.clientTag} OK LOGOUT completed\r\n`);
    else this.socket.end();
  }
}
