/**
 * Server limits: connections per client address, the failed-login slowdown, and the session
 * timeouts. All state here is server-wide (one map each), never per session, so an idle
 * connection costs nothing in this module.
 */

/** Timeouts and caps, all configurable (server config `limits`). */
export interface LimitSettings {
  /** Connections allowed at once from one client address (0: unlimited). */
  maxConnectionsPerAddress: number;
  /** Connections allowed at once in total (0: unlimited). */
  maxConnections: number;
  /** Inactivity allowed before authentication, ms (60 s). */
  preAuthTimeoutMs: number;
  /** Inactivity allowed after authentication, ms (RFC 9051 5.4: at least 30 minutes). */
  idleTimeoutMs: number;
  /** How long one IDLE may last without client traffic, ms (RFC 2177: ~29 minutes before clients re-issue). */
  idleCommandTimeoutMs: number;
  /** Delay before answering the first failed login, ms; doubles per further failure. */
  failedLoginDelayMs: number;
  /** Ceiling of the failed-login delay, ms. */
  failedLoginMaxDelayMs: number;
  /** Largest message APPEND accepts, bytes (APPENDLIMIT, RFC 7889). */
  appendLimit: number;
  /** Longest command line outside literals, bytes. */
  maxLineLength: number;
}

/** Defaults: Dovecot-like, with the RFC timeouts. */
export const DEFAULT_LIMITS: LimitSettings = {
  maxConnectionsPerAddress: 200,
  maxConnections: 0,
  preAuthTimeoutMs: 60_000,
  idleTimeoutMs: 30 * 60_000,
  idleCommandTimeoutMs: 30 * 60_000,
  failedLoginDelayMs: 1_000,
  failedLoginMaxDelayMs: 15_000,
  appendLimit: 64 * 1024 * 1024,
  maxLineLength: 64 * 1024,
};

/** Merge partial settings over the defaults. */
export function resolveLimits(partial: Partial<LimitSettings> = {}): LimitSettings {
  const out = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(partial) as Array<[keyof LimitSettings, number | undefined]>) {
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** Counts open connections per client address and in total. */
export class ConnectionLimiter {
  private readonly perAddress = new Map<string, number>();
  private total = 0;

  constructor(private readonly settings: Pick<LimitSettings, 'maxConnectionsPerAddress' | 'maxConnections'>) {}

  /** Try to admit a connection from `address`; false when a limit is reached (nothing is counted then). */
  acquire(address: string): boolean {
    const current = this.perAddress.get(address) ?? 0;
    const { maxConnectionsPerAddress: perAddr, maxConnections: max } = this.settings;
    if (perAddr > 0 && current >= perAddr) return false;
    if (max > 0 && this.total >= max) return false;
    this.perAddress.set(address, current + 1);
    this.total++;
    return true;
  }

  /** Forget one connection from `address` (call exactly once per successful acquire). */
  release(address: string): void {
    const current = this.perAddress.get(address) ?? 0;
    if (current <= 1) this.perAddress.delete(address);
    else this.perAddress.set(address, current - 1);
    if (this.total > 0) this.total--;
  }

  /** Connections currently open from `address`. */
  count(address?: string): number {
    return address === undefined ? this.total : (this.perAddress.get(address) ?? 0);
  }
}

interface FailureRecord {
  failures: number;
  lastFailure: number;
}

/**
 * Slows down password guessing: each failed login for an (address, user) pair doubles the delay
 * before the next NO for that pair, up to a ceiling. A success clears the pair. Records expire
 * after 15 minutes without failures, pruned lazily so no timer is needed.
 */
export class LoginThrottle {
  private readonly records = new Map<string, FailureRecord>();
  private static readonly EXPIRY_MS = 15 * 60_000;
  /** Hard cap on remembered pairs so an attacker cycling names cannot grow memory without bound. */
  private static readonly MAX_RECORDS = 100_000;

  constructor(
    private readonly settings: Pick<LimitSettings, 'failedLoginDelayMs' | 'failedLoginMaxDelayMs'>,
    private readonly now: () => number = Date.now,
  ) {}

  private key(address: string, user: string): string {
    return `${address}\u0000${user.toLowerCase()}`;
  }

  /** Record a failure; returns how long to wait before answering NO, ms. */
  fail(address: string, user: string): number {
    const now = this.now();
    this.prune(now);
    const key = this.key(address, user);
    const rec = this.records.get(key);
    const failures = rec && now - rec.lastFailure < LoginThrottle.EXPIRY_MS ? rec.failures + 1 : 1;
    // Re-insert so the map's insertion order stays oldest-first for pruning.
    this.records.delete(key);
    this.records.set(key, { failures, lastFailure: now });
    return this.delayFor(failures);
  }

  /** Forget failures for the pair after a successful login. */
  succeed(address: string, user: string): void {
    this.records.delete(this.key(address, user));
  }

  /** Failures currently remembered for the pair. */
  failures(address: string, user: string): number {
    const rec = this.records.get(this.key(address, user));
    if (!rec || this.now() - rec.lastFailure >= LoginThrottle.EXPIRY_MS) return 0;
    return rec.failures;
  }

  private delayFor(failures: number): number {
    const { failedLoginDelayMs: base, failedLoginMaxDelayMs: max } = this.settings;
    if (base <= 0) return 0;
    // 2^(n-1) grows fast; cap the exponent so the multiplication cannot overflow to Infinity.
    return Math.min(max, base * 2 ** Math.min(failures - 1, 30));
  }

  private prune(now: number): void {
    for (const [key, rec] of this.records) {
      const expired = now - rec.lastFailure >= LoginThrottle.EXPIRY_MS;
      if (!expired && this.records.size < LoginThrottle.MAX_RECORDS) break;
      this.records.delete(key);
    }
  }
}
