/**
 * The connection cache. After a client logs out, its authenticated upstream connection waits here
 * and is handed only to a later login of the same user on the same backend whose secret matches.
 * Secrets are never stored: only HMAC-SHA256 under a key drawn at process start, compared with
 * timingSafeEqual.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Upstream } from './upstream.js';

/** Cache limits. */
export interface PoolOptions {
  /** Seconds an idle cached connection is kept (default 300); 0 disables caching. */
  expirySeconds: number;
  /** Most cached connections overall (default 3072). */
  maxTotal: number;
  /** Most cached connections per user and backend (default 8). */
  maxPerUser: number;
  /** Seconds between NOOPs on an idle cached connection (default 120; 0: none). */
  keepaliveSeconds: number;
}

/** Defaults modelled on up-imapproxy's (cache_size 3072, cache_expiration_time 300). */
export const DEFAULT_POOL_OPTIONS: PoolOptions = { expirySeconds: 300, maxTotal: 3072, maxPerUser: 8, keepaliveSeconds: 120 };

interface Entry {
  up: Upstream;
  key: string;
  backendId: string;
  user: string;
  mac: Buffer;
  since: number;
  expiry: NodeJS.Timeout;
  keepalive: NodeJS.Timeout | undefined;
}

/** Why a connection left the cache (statistics). */
export type PoolEviction = 'expired' | 'dead' | 'limit' | 'keepalive-failed' | 'shutdown';

/** Cached upstream connections keyed by backend + user, matched by secret HMAC. */
export class ConnectionPool {
  private readonly hmacKey = randomBytes(32);
  private readonly byKey = new Map<string, Entry[]>();
  /** All entries, oldest first (Set keeps insertion order). */
  private readonly all = new Set<Entry>();
  /** Called when a connection leaves the cache for any reason but being handed out. */
  onEvict: ((backendId: string, reason: PoolEviction) => void) | undefined;

  constructor(readonly opts: PoolOptions = DEFAULT_POOL_OPTIONS) {}

  /** True when connections are cached at all. */
  get enabled(): boolean {
    return this.opts.expirySeconds > 0 && this.opts.maxTotal > 0 && this.opts.maxPerUser > 0;
  }

  /** The HMAC that stands for a secret: binds backend, user and secret together. */
  mac(backendId: string, user: string, secret: string): Buffer {
    return createHmac('sha256', this.hmacKey).update(`${backendId}\0${user}\0${secret}`, 'utf8').digest();
  }

  /** A cached connection for this backend, user and secret, or undefined. The caller owns it afterwards. */
  take(backendId: string, user: string, mac: Buffer): Upstream | undefined {
    const list = this.byKey.get(keyOf(backendId, user));
    if (!list) return undefined;
    // Newest first: the connection most recently proven alive.
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i];
      if (e.up.dead) {
        this.remove(e, 'dead');
        continue;
      }
      if (e.up.busy) continue;
      if (e.mac.length === mac.length && timingSafeEqual(e.mac, mac)) {
        this.unlink(e);
        e.up.onDead = undefined;
        return e.up;
      }
    }
    return undefined;
  }

  /** Cache an authenticated, reset connection; returns false (and closes it) when it cannot be kept. */
  put(up: Upstream, backendId: string, user: string, mac: Buffer): boolean {
    if (!this.enabled || up.dead) {
      void up.logout();
      return false;
    }
    const key = keyOf(backendId, user);
    let list = this.byKey.get(key);
    if (list && list.length >= this.opts.maxPerUser) this.remove(list[0], 'limit');
    while (this.all.size >= this.opts.maxTotal) {
      const oldest = this.all.values().next().value as Entry;
      this.remove(oldest, 'limit');
    }
    list = this.byKey.get(key);
    if (!list) this.byKey.set(key, (list = []));
    const entry: Entry = {
      up,
      key,
      backendId,
      user,
      mac,
      since: Date.now(),
      expiry: setTimeout(() => this.remove(entry, 'expired'), this.opts.expirySeconds * 1000),
      keepalive: undefined,
    };
    entry.expiry.unref();
    if (this.opts.keepaliveSeconds > 0) {
      entry.keepalive = setInterval(() => {
        if (entry.up.busy) return;
        entry.up.command('NOOP').then(
          (r) => {
            if (r.status !== 'OK') this.remove(entry, 'keepalive-failed');
          },
          () => this.remove(entry, 'keepalive-failed'),
        );
      }, this.opts.keepaliveSeconds * 1000);
      entry.keepalive.unref();
    }
    up.onDead = () => this.remove(entry, 'dead');
    list.push(entry);
    this.all.add(entry);
    return true;
  }

  /** Cached connections overall. */
  get size(): number {
    return this.all.size;
  }

  /** Cached connections per backend id. */
  sizeByBackend(): Map<string, number> {
    const out = new Map<string, number>();
    for (const e of this.all) out.set(e.backendId, (out.get(e.backendId) ?? 0) + 1);
    return out;
  }

  /** Cached connections for one user on one backend. */
  sizeFor(backendId: string, user: string): number {
    return this.byKey.get(keyOf(backendId, user))?.length ?? 0;
  }

  /** Drop every cached connection of a user (e.g. after a password change). */
  dropUser(user: string): void {
    for (const e of [...this.all]) if (e.user === user) this.remove(e, 'shutdown');
  }

  /** Log out and forget every cached connection. */
  closeAll(): void {
    for (const e of [...this.all]) this.remove(e, 'shutdown');
  }

  private unlink(e: Entry): boolean {
    if (!this.all.delete(e)) return false;
    clearTimeout(e.expiry);
    if (e.keepalive) clearInterval(e.keepalive);
    const list = this.byKey.get(e.key);
    if (list) {
      const i = list.indexOf(e);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byKey.delete(e.key);
    }
    return true;
  }

  private remove(e: Entry, reason: PoolEviction): void {
    if (!this.unlink(e)) return;
    e.up.onDead = undefined;
    if (reason === 'dead') e.up.destroy();
    else void e.up.logout();
    this.onEvict?.(e.backendId, reason);
  }
}

function keyOf(backendId: string, user: string): string {
  return `${backendId}\0${user}`;
}
