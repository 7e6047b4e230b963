/** Reconnection timing: exponential backoff with jitter, and sleeps that end early on abort. */

/** Options of backoffDelay. */
export interface BackoffOptions {
  /** First delay (default 1 s). */
  baseMs?: number;
  /** Ceiling (default 5 minutes). */
  maxMs?: number;
  /** Random source in [0, 1) (tests). */
  random?: () => number;
}

/**
 * Delay before reconnection attempt `attempt` (0-based): min(max, base * 2^attempt), of which a
 * random half is kept ("equal jitter"), so that many forwards failing together (the same server
 * restarting) do not all come back in the same second.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? 1000;
  const max = opts.maxMs ?? 300_000;
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  const r = (opts.random ?? Math.random)();
  return Math.round(ceiling / 2 + r * (ceiling / 2));
}

/** Wait `ms`, or less when the signal aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
