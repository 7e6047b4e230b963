/**
 * The forward loop. Each forward runs in its own loop, isolated from the others: connect, forward
 * what is waiting, wait for news (IDLE, re-issued well before the 29 minutes RFC 2177 allows, or
 * polling), again; after any failure reconnect with exponential backoff and jitter. One failing
 * forward never stops the others.
 */
import type { Logger } from '../log/logger.js';
import { RepositoryError } from '../sync/repository.js';
import { OAuth2Error } from '../auth/oauth2/client.js';
import { TokenFileError } from '../auth/oauth2/token-file.js';
import { backoffDelay, sleep } from './backoff.js';
import type { ForwardConfig, ForwardSpec } from './config.js';
import { StatusWriter, statusFile } from './status.js';

/** IDLE is ended and re-issued after this long (RFC 2177: at most 29 minutes). */
export const IDLE_RENEW_MS = 25 * 60_000;

/** What one pass over the source folders did. */
export interface CycleResult {
  forwarded: number;
  rejected: number;
}

/** Events a session reports to the loop (for the status file and logs). */
export interface SessionEvents {
  forwarded(info: { folder: string; uid: number; messageId: string | null; subject?: string; arrivedAt?: Date; confirmedAt: Date }): void;
  rejected(info: { messageId: string | null; reason: string }): void;
}

/** One connected forward: the source and target open, ready to forward. */
export interface ForwardSession {
  /** Connect and authenticate both sides. */
  open(): Promise<void>;
  /** Forward everything new; resolves when the source is drained. */
  cycle(): Promise<CycleResult>;
  /** Wait until the source may have news (IDLE, or `maxMs` when polling); resolves early on abort. */
  waitForChange(signal: AbortSignal, maxMs: number, useIdle: boolean): Promise<void>;
  /** Disconnect (never throws). */
  close(): Promise<void>;
  /** Does the source offer IDLE (known after open)? */
  canIdle(): boolean;
}

/** Builds the session of a forward (the real one drives the sync engine; tests inject fakes). */
export type SessionFactory = (spec: ForwardSpec, ctx: SessionContext) => ForwardSession;

/** What a session gets from its loop. */
export interface SessionContext {
  log: Logger;
  stateDir: string;
  events: SessionEvents;
  debug: boolean;
  /** Poll instead of IDLE (--no-idle). */
  noIdle: boolean;
  /** One pass only (--once): no IDLE to prepare. */
  once: boolean;
  signal: AbortSignal;
}

/** Options of a forward loop. */
export interface RunnerOptions {
  log: Logger;
  stateDir: string;
  /** Forward what is waiting, then return. */
  once?: boolean;
  /** Poll even where IDLE is available (--no-idle). */
  noIdle?: boolean;
  debug?: boolean;
  signal: AbortSignal;
  sessionFactory?: SessionFactory;
  /** Backoff tuning (tests shorten it). */
  backoff?: { baseMs?: number; maxMs?: number; authBaseMs?: number; random?: () => number };
  /** IDLE renewal period (tests shorten it). */
  idleRenewMs?: number;
}

/** The outcome of one forward's loop. */
export interface ForwardOutcome {
  name: string;
  ok: boolean;
  forwarded: number;
  rejected: number;
  error?: string;
}

/** A readable one-line explanation of a failure, with what to do where we know it. */
export function describeError(err: unknown, spec?: ForwardSpec): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof TokenFileError || (err instanceof OAuth2Error && (err.code === 'invalid_grant' || err.code === 'no_refresh_token'))) {
    return `${msg} (sign in again: imapkit auth login --token ...)`;
  }
  if (err instanceof RepositoryError) {
    if (err.kind === 'auth') return `${msg} (check the credentials${spec ? ` of forward ${spec.name}` : ''})`;
    if (err.kind === 'tls') return `${msg} (check tls, tlsCaFile or tlsFingerprint)`;
  }
  return msg;
}

/** A refused login or token (slow retries), as opposed to a server that cannot check one now. */
function isAuthProblem(err: unknown): boolean {
  if (err instanceof RepositoryError && err.kind === 'auth') {
    // [UNAVAILABLE] (RFC 5530): the server's authentication service is down, not our credentials.
    const code = (err.cause as { serverResponseCode?: string } | undefined)?.serverResponseCode;
    return code?.toUpperCase() !== 'UNAVAILABLE';
  }
  return err instanceof TokenFileError || (err instanceof OAuth2Error && err.code !== 'network');
}

function label(a: { user: string; host: string; port: number }, path: string): string {
  return `${a.user}@${a.host}:${a.port}/${path}`;
}

/** Run one forward until the signal aborts (or once). Never throws. */
export async function runForward(spec: ForwardSpec, opts: RunnerOptions): Promise<ForwardOutcome> {
  const log = opts.log.child({ forward: spec.name });
  const status = new StatusWriter(statusFile(opts.stateDir, spec.name), {
    name: spec.name,
    source: label(spec.source, spec.source.folders.join(',')),
    target: label(spec.target, spec.target.mailbox + (spec.target.label ? ` +label ${spec.target.label}` : '')),
  });
  const outcome: ForwardOutcome = { name: spec.name, ok: true, forwarded: 0, rejected: 0 };
  const events: SessionEvents = {
    forwarded: (m) => {
      outcome.forwarded++;
      const lagMs = m.arrivedAt ? Math.max(0, m.confirmedAt.getTime() - m.arrivedAt.getTime()) : undefined;
      status.update({
        forwarded: outcome.forwarded,
        lastForwarded: { at: m.confirmedAt.toISOString(), messageId: m.messageId, subject: m.subject, arrivedAt: m.arrivedAt?.toISOString(), lagMs },
      });
      log.info({ folder: m.folder, uid: m.uid, messageId: m.messageId, lagMs }, 'forwarded');
    },
    rejected: (m) => {
      outcome.rejected++;
      status.update({ rejected: outcome.rejected, lastError: { at: new Date().toISOString(), message: `target refused ${m.messageId ?? "a message without Message-ID"}: ${m.reason}` } });
      log.error({ messageId: m.messageId, reason: m.reason }, 'the target refused a message: it is NOT forwarded (it stays on the source); the forward goes on');
    },
  };
  const factory = opts.sessionFactory ?? (await import('./session.js')).createSession;
  const renewMs = opts.idleRenewMs ?? IDLE_RENEW_MS;
  let attempt = 0;
  try {
    while (!opts.signal.aborted) {
      const session = factory(spec, { log, stateDir: opts.stateDir, events, debug: opts.debug ?? false, noIdle: opts.noIdle ?? false, once: opts.once ?? false, signal: opts.signal });
      try {
        status.update({ state: 'connecting' });
        await session.open();
        const useIdle = spec.idle && !opts.noIdle && session.canIdle();
        if (spec.idle && !opts.noIdle && !session.canIdle()) log.warn('the source offers no IDLE: polling instead');
        for (;;) {
          status.update({ state: 'forwarding' });
          await session.cycle();
          // A full pass without error: the connection is healthy, so the next failure starts the backoff afresh.
          attempt = 0;
          status.update({ lastCheckAt: new Date().toISOString() });
          if (opts.once || opts.signal.aborted) break;
          status.update({ state: useIdle ? 'idle' : 'polling' });
          await session.waitForChange(opts.signal, useIdle ? renewMs : spec.pollIntervalMs, useIdle);
          if (opts.signal.aborted) break;
        }
        if (opts.once || opts.signal.aborted) break;
      } catch (err) {
        const message = describeError(err, spec);
        status.update({ lastError: { at: new Date().toISOString(), message } });
        if (opts.signal.aborted) break;
        if (opts.once) {
          log.error({ err: message }, 'forward failed');
          outcome.ok = false;
          outcome.error = message;
          break;
        }
        // Failed logins come back slowly: servers lock accounts that keep failing.
        const auth = isAuthProblem(err);
        const delay = backoffDelay(attempt++, {
          baseMs: auth ? (opts.backoff?.authBaseMs ?? 30_000) : (opts.backoff?.baseMs ?? 1000),
          maxMs: opts.backoff?.maxMs ?? 300_000,
          random: opts.backoff?.random,
        });
        log.error({ err: message, retryInMs: delay, attempt }, 'forward interrupted; reconnecting');
        status.update({ state: 'waiting-to-reconnect' });
        await session.close();
        await sleep(delay, opts.signal);
        continue;
      } finally {
        await session.close();
      }
    }
  } catch (err) {
    // Only a bug gets here; the forward stops but its siblings go on.
    outcome.ok = false;
    outcome.error = describeError(err, spec);
    log.fatal({ err: outcome.error }, 'forward stopped by an unexpected error');
  }
  status.update({ state: 'stopped' });
  await status.flush();
  return outcome;
}

/** Run every enabled forward of a config concurrently; resolves when all have stopped. */
export async function runForwards(config: ForwardConfig, opts: Omit<RunnerOptions, 'stateDir'> & { stateDir?: string }): Promise<ForwardOutcome[]> {
  const stateDir = opts.stateDir ?? config.stateDir;
  const { mkdir } = await import('node:fs/promises');
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const enabled = config.forwards.filter((f) => f.enabled);
  if (enabled.length === 0) opts.log.warn({ file: config.file }, 'no enabled forwards in the config');
  opts.log.info({ forwards: enabled.map((f) => f.name), once: !!opts.once }, 'starting');
  const results = await Promise.allSettled(enabled.map((f) => runForward(f, { ...opts, stateDir })));
  return results.map((r, i) => (r.status === 'fulfilled' ? r.value : { name: enabled[i]!.name, ok: false, forwarded: 0, rejected: 0, error: String(r.reason) }));
}
