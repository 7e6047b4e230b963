/**
 * The status of each running forward, for `imapkit forward --status`: a small JSON file per forward
 * in the state directory, replaced atomically (so a reader never sees half of one) and rewritten
 * at most a few times a second however fast mail flows.
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic0600 } from '../auth/oauth2/token-file.js';

/** What `--status` shows for one forward. */
export interface ForwardStatus {
  name: string;
  pid: number;
  startedAt: string;
  updatedAt: string;
  /** What the loop is doing now. */
  state: 'starting' | 'connecting' | 'forwarding' | 'idle' | 'polling' | 'waiting-to-reconnect' | 'stopped';
  source: string;
  target: string;
  /** Messages forwarded since this process started. */
  forwarded: number;
  /** Messages the target refused since this process started. */
  rejected: number;
  lastForwarded?: {
    at: string;
    messageId: string | null;
    subject?: string;
    /** Arrival on the source (INTERNALDATE). */
    arrivedAt?: string;
    /** From arrival on the source to confirmation on the target, in ms. */
    lagMs?: number;
  };
  lastError?: { at: string; message: string };
  /** When the loop last completed a check of the source without error. */
  lastCheckAt?: string;
}

/** The status file of a forward. */
export function statusFile(stateDir: string, name: string): string {
  return path.join(stateDir, `forward-${name}.status.json`);
}

/** Keeps one forward's status file current, coalescing bursts of updates. */
export class StatusWriter {
  private current: ForwardStatus;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private written = false;

  constructor(
    readonly file: string,
    initial: Omit<ForwardStatus, 'pid' | 'startedAt' | 'updatedAt' | 'forwarded' | 'rejected' | 'state'>,
    private readonly minIntervalMs = 250,
  ) {
    const now = new Date().toISOString();
    this.current = { ...initial, pid: process.pid, startedAt: now, updatedAt: now, forwarded: 0, rejected: 0, state: 'starting' };
    // The last message forwarded and the last error outlive a restart.
    try {
      const prev = JSON.parse(readFileSync(file, 'utf8')) as Partial<ForwardStatus>;
      if (prev.lastForwarded) this.current.lastForwarded = prev.lastForwarded;
      if (prev.lastError) this.current.lastError = prev.lastError;
    } catch {
      // first run, or an unreadable file: start afresh
    }
  }

  /** The status as it stands. */
  get status(): ForwardStatus {
    return this.current;
  }

  /** Merge changes and schedule a write (the first one at once, so a new process shows up without delay). */
  update(changes: Partial<ForwardStatus>): void {
    this.current = { ...this.current, ...changes, updatedAt: new Date().toISOString() };
    if (!this.written) {
      this.written = true;
      void this.write();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, this.minIntervalMs);
    this.timer.unref?.();
  }

  /** Write now (and wait for it). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.write();
  }

  private write(): Promise<void> {
    const snapshot = JSON.stringify(this.current, null, 2) + '\n';
    // Writes are chained so an older snapshot never lands after a newer one.
    this.writing = this.writing.then(() => writeFileAtomic0600(this.file, snapshot)).catch(() => undefined);
    return this.writing;
  }
}

/** Read the status files of some forwards (or all found in the directory). */
export async function readStatuses(stateDir: string, names?: string[]): Promise<Array<ForwardStatus | { name: string; missing: true }>> {
  let wanted = names;
  if (!wanted) {
    const entries = await readdir(stateDir).catch(() => [] as string[]);
    wanted = entries.map((e) => /^forward-(.+)\.status\.json$/.exec(e)?.[1]).filter((n): n is string => !!n).sort();
  }
  const out: Array<ForwardStatus | { name: string; missing: true }> = [];
  for (const name of wanted) {
    try {
      out.push(JSON.parse(await readFile(statusFile(stateDir, name), 'utf8')) as ForwardStatus);
    } catch {
      out.push({ name, missing: true });
    }
  }
  return out;
}

/** Is a process with this pid alive (on this machine)? */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ago(iso: string | undefined, now: number): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function ms(n: number | undefined): string {
  if (n === undefined) return '-';
  return n < 10_000 ? `${(n / 1000).toFixed(2)}s` : n < 5_400_000 ? `${Math.round(n / 1000)}s` : `${(n / 3_600_000).toFixed(1)}h`;
}

/** Human-readable status of each forward. */
export function formatStatuses(list: Array<ForwardStatus | { name: string; missing: true }>, now = Date.now(), alive = processAlive): string {
  if (list.length === 0) return 'no forwards have run yet (no status files)\n';
  const lines: string[] = [];
  for (const s of list) {
    if ('missing' in s) {
      lines.push(`${s.name}: never started (no status file)`);
      continue;
    }
    const running = s.state !== 'stopped' && alive(s.pid);
    lines.push(`${s.name}: ${running ? s.state : 'not running'}${running ? ` (pid ${s.pid}, since ${ago(s.startedAt, now)})` : ` (last seen ${ago(s.updatedAt, now)})`}`);
    lines.push(`  ${s.source} -> ${s.target}`);
    const lf = s.lastForwarded;
    lines.push(
      lf
        ? `  last forwarded: ${ago(lf.at, now)}, ${lf.messageId ?? '(no Message-ID)'}${lf.subject ? ` "${lf.subject}"` : ''}, lag ${ms(lf.lagMs)}`
        : '  last forwarded: nothing yet',
    );
    lines.push(`  this run: ${s.forwarded} forwarded, ${s.rejected} refused by the target; last check ${ago(s.lastCheckAt, now)}`);
    lines.push(s.lastError ? `  last error (${ago(s.lastError.at, now)}): ${s.lastError.message}` : '  last error: none');
  }
  return lines.join('\n') + '\n';
}
