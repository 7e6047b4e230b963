/**
 * What `imapkit sync` shows: on a terminal a progress bar per folder under way and a totals line
 * (`tty`); `plain` log lines; `quiet` errors only; `json` one JSON object per event on stdout for
 * other programs. Errors always name the account and say what to do.
 */
import type { AccountSummary, FolderResult, SyncEvent } from './engine.js';

/** The user interface modes. */
export type UiMode = 'tty' | 'plain' | 'quiet' | 'json';

/** A user interface: events in, text out. */
export interface SyncUi {
  onEvent(e: SyncEvent): void;
  /** Print the end-of-run summary (and errors with advice). */
  finish(summaries: AccountSummary[]): void;
  /** Print a message not tied to an event (config errors, signals). */
  message(text: string, level?: 'info' | 'error'): void;
}

interface Streams {
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  err: NodeJS.WritableStream;
}

function mb(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${Math.round(bytes / 1024)} kB`;
}

/** One line about what a folder pair run did ("INBOX: 12 → local, 3 → remote, flags 4/1"). */
export function describeFolder(r: FolderResult): string {
  if (r.unchanged) return `${r.folder}: unchanged`;
  const parts: string[] = [];
  if (r.created) parts.push(`created on the ${r.created === 'a' ? 'remote' : 'local'} side`);
  if (r.copied.a) parts.push(`${r.copied.a} → local`);
  if (r.copied.b) parts.push(`${r.copied.b} → remote`);
  if (r.flagged.a || r.flagged.b) parts.push(`flags ${r.flagged.b} local, ${r.flagged.a} remote`);
  if (r.removed.a || r.removed.b) parts.push(`removed ${r.removed.b} local, ${r.removed.a} remote`);
  if (r.skipped) parts.push(`${r.skipped} skipped`);
  if (r.errors.length) parts.push(`${r.errors.length} error${r.errors.length > 1 ? 's' : ''}`);
  const name = r.local !== r.folder ? `${r.folder} (local ${r.local})` : r.folder;
  return `${name}: ${parts.length ? parts.join(', ') : 'in sync'}`;
}

function describeAccount(s: AccountSummary): string {
  const secs = (s.durationMs / 1000).toFixed(1);
  const what = s.dryRun ? 'would copy' : 'copied';
  return `${s.account}: ${what} ${s.copied.a} → local, ${s.copied.b} → remote; flags ${s.flagged.b} local, ${s.flagged.a} remote; removed ${s.removed.b} local, ${s.removed.a} remote; ${mb(s.bytes)} in ${secs} s${s.ok ? '' : ` — ${s.errors.length} error${s.errors.length === 1 ? '' : 's'}`}`;
}

function errorLines(s: AccountSummary): string[] {
  const out: string[] = [];
  for (const e of s.errors) {
    out.push(`imapkit sync: account ${s.account}${e.folder ? `, folder ${e.folder}` : ''}: ${e.message}`);
    out.push(`  what to do: ${e.advice}`);
  }
  return out;
}

/** JSON with bigints as strings. */
function json(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

/** Build the user interface for a mode (tty falls back to plain when stdout is not a terminal). */
export function createUi(mode: UiMode, streams: Streams = { out: process.stdout, err: process.stderr }): SyncUi {
  const { out, err } = streams;
  if (mode === 'tty' && !out.isTTY) mode = 'plain';
  if (mode === 'json') {
    return {
      onEvent: (e) => out.write(json({ ...e, time: new Date().toISOString() }) + '\n'),
      finish: (ss) => out.write(json({ type: 'done', ok: ss.every((s) => s.ok), accounts: ss.map((s) => ({ account: s.account, ok: s.ok, errors: s.errors })) }) + '\n'),
      message: (text, level = 'info') => out.write(json({ type: level === 'error' ? 'error' : 'message', message: text }) + '\n'),
    };
  }
  if (mode === 'quiet') {
    return {
      onEvent: () => undefined,
      finish: (ss) => {
        for (const s of ss) for (const l of errorLines(s)) err.write(l + '\n');
      },
      message: (text, level = 'info') => {
        if (level === 'error') err.write(text + '\n');
      },
    };
  }
  if (mode === 'plain') {
    return {
      onEvent: (e) => {
        if (e.type === 'folder-done' && !e.result.unchanged) out.write(`${e.account}: ${describeFolder(e.result)}\n`);
        else if (e.type === 'warning') err.write(`imapkit sync: account ${e.account}${e.folder ? `, folder ${e.folder}` : ''}: warning: ${e.message}\n`);
        else if (e.type === 'account-start') out.write(`${e.account}: syncing\n`);
      },
      finish: (ss) => {
        for (const s of ss) {
          out.write(describeAccount(s) + '\n');
          for (const l of errorLines(s)) err.write(l + '\n');
        }
      },
      message: (text, level = 'info') => (level === 'error' ? err : out).write(text + '\n'),
    };
  }
  return new TtyUi(out, err);
}

interface Bar {
  account: string;
  folder: string;
  done: number;
  total: number;
  bytes: number;
}

/** Progress bars redrawn in place (at most every 100 ms). */
class TtyUi implements SyncUi {
  private readonly bars = new Map<string, Bar>();
  private drawn = 0;
  private timer: NodeJS.Timeout | null = null;
  private totals = { folders: 0, done: 0, copied: 0, bytes: 0 };
  private readonly started = Date.now();

  constructor(
    private readonly out: Streams['out'],
    private readonly err: Streams['err'],
  ) {}

  onEvent(e: SyncEvent): void {
    const key = `${e.account}\u0000${'folder' in e ? e.folder : ''}`;
    switch (e.type) {
      case 'folder-start':
        this.bars.set(key, { account: e.account, folder: e.folder, done: 0, total: 0, bytes: 0 });
        break;
      case 'folder-plan': {
        const b = this.bars.get(key);
        if (b) b.total = e.summary.copyAtoB + e.summary.copyBtoA;
        break;
      }
      case 'progress': {
        const b = this.bars.get(key);
        if (b) {
          b.done = e.done;
          b.total = e.total;
          b.bytes = e.bytes;
        }
        break;
      }
      case 'folder-done':
        this.bars.delete(key);
        this.totals.folders++;
        this.totals.copied += e.result.copied.a + e.result.copied.b;
        this.totals.bytes += e.result.bytes;
        if (!e.result.unchanged) this.print(`${e.account}: ${describeFolder(e.result)}`);
        break;
      case 'warning':
        this.print(`warning: account ${e.account}${e.folder ? `, folder ${e.folder}` : ''}: ${e.message}`, true);
        break;
      default:
        break;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.draw();
    }, 100);
    this.timer.unref();
  }

  private clear(): void {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A\x1b[J`);
    this.drawn = 0;
  }

  private print(line: string, toErr = false): void {
    this.clear();
    (toErr ? this.err : this.out).write(line + '\n');
  }

  private draw(): void {
    this.clear();
    const width = Math.max(40, (this.out.columns || 80) - 1);
    const lines: string[] = [];
    for (const b of [...this.bars.values()].slice(0, 12)) {
      const frac = b.total > 0 ? b.done / b.total : 0;
      const barW = 20;
      const fill = Math.round(frac * barW);
      const label = `${b.account}: ${b.folder}`.slice(0, Math.max(10, width - 45)).padEnd(Math.min(30, width - 45));
      lines.push(`${label} [${'#'.repeat(fill)}${'-'.repeat(barW - fill)}] ${b.done}/${b.total} ${mb(b.bytes)}`.slice(0, width));
    }
    const secs = ((Date.now() - this.started) / 1000).toFixed(0);
    lines.push(`total: ${this.totals.folders} folders done, ${this.totals.copied} messages copied, ${mb(this.totals.bytes)}, ${secs} s`.slice(0, width));
    this.out.write(lines.join('\n') + '\n');
    this.drawn = lines.length;
  }

  finish(ss: AccountSummary[]): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.clear();
    for (const s of ss) {
      this.out.write(describeAccount(s) + '\n');
      for (const l of errorLines(s)) this.err.write(l + '\n');
    }
  }

  message(text: string, level: 'info' | 'error' = 'info'): void {
    this.print(text, level === 'error');
  }
}
