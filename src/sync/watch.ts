/**
 * Daemon mode (`imapkit sync --watch`): each account syncs, then waits for its autorefresh
 * interval or for IDLE to report a change in one of its chosen folders (then only those folders
 * sync), and again. syncNow() (SIGUSR1) wakes every account at once; stop() (SIGTERM, SIGUSR2)
 * lets the syncs under way finish and then ends. Accounts share a limit on concurrent syncs.
 */
import type { AccountSummary, RunOptions, SyncSession } from './engine.js';

/** One account under watch. */
export interface WatchEntry {
  session: SyncSession;
  /** Seconds between full syncs. */
  interval: number;
  /** Remote folder names to IDLE on (empty: interval only). */
  idle: string[];
}

/** Options of a Watcher. */
export interface WatchOptions {
  /** Accounts syncing at once (default 2). */
  maxAccounts?: number;
  /** Options of every run (quick, onEvent, ...). */
  run?: RunOptions;
  /** Told after every run. */
  onSummary?: (s: AccountSummary, trigger: 'start' | 'interval' | 'idle' | 'signal') => void;
  /** Wait after an IDLE wake-up before syncing, so a burst of changes is one sync (default 500 ms). */
  settleMs?: number;
}

/** Runs accounts in watch mode until stop(). */
export class Watcher {
  private stopping = false;
  private readonly wakers = new Set<() => void>();
  /** Accounts asked to sync now while they were busy: their next wait ends at once. */
  private readonly pending = new Set<WatchEntry>();
  private active = 0;
  private readonly queue: Array<() => void> = [];
  /** Runs done so far (all accounts). */
  runs = 0;

  constructor(
    private readonly entries: WatchEntry[],
    private readonly opts: WatchOptions = {},
  ) {}

  /** Sync every account now (SIGUSR1). */
  syncNow(): void {
    for (const e of this.entries) this.pending.add(e);
    for (const w of [...this.wakers]) w();
  }

  /** Finish the syncs under way, then end (SIGTERM, SIGUSR2). */
  stop(): void {
    this.stopping = true;
    this.syncNow();
  }

  /** True once stop() was called. */
  get stopped(): boolean {
    return this.stopping;
  }

  private async slot<T>(fn: () => Promise<T>): Promise<T> {
    const max = this.opts.maxAccounts ?? 2;
    if (this.active >= max) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }

  /** Run until stop(); resolves when every account loop ended. */
  async run(): Promise<void> {
    await Promise.all(this.entries.map((e) => this.loop(e)));
  }

  private async loop(e: WatchEntry): Promise<void> {
    let trigger: 'start' | 'interval' | 'idle' | 'signal' = 'start';
    let folders: string[] | undefined;
    while (!this.stopping) {
      const runOpts: RunOptions = { ...this.opts.run };
      if (folders) runOpts.folders = folders;
      const summary = await this.slot(() => e.session.run(runOpts));
      this.runs++;
      this.opts.onSummary?.(summary, trigger);
      if (this.stopping) break;
      const r = await this.wait(e);
      trigger = r;
      folders = r === 'idle' ? e.idle : undefined;
      if (r === 'idle') await new Promise((res) => setTimeout(res, this.opts.settleMs ?? 500));
      // A signal during the settling wait makes this a full run.
      if (this.pending.delete(e)) folders = undefined;
    }
  }

  /** Wait for the interval, an IDLE report on the chosen folders, or a wake-up. */
  private wait(e: WatchEntry): Promise<'interval' | 'idle' | 'signal'> {
    if (this.pending.delete(e)) return Promise.resolve('signal');
    return new Promise((resolve) => {
      const ac = new AbortController();
      let done = false;
      const finish = (why: 'interval' | 'idle' | 'signal') => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.wakers.delete(wake);
        ac.abort();
        resolve(why);
      };
      const wake = () => {
        this.pending.delete(e);
        finish('signal');
      };
      this.wakers.add(wake);
      const ms = e.interval * 1000;
      const timer = setTimeout(() => finish('interval'), ms);
      const repo = e.session.spec.a;
      if (e.idle.length > 0 && repo.waitForChange && repo.capabilities().idle) {
        // The fallback is longer than the interval, so a resolution before the timer is a real change.
        repo.waitForChange(e.idle, ac.signal, ms + 60_000).then(
          () => finish('idle'),
          () => undefined,
        );
      }
    });
  }
}

/** Wire process signals to a watcher: SIGUSR1 syncs now, SIGTERM/SIGUSR2/SIGINT stop. Returns an uninstaller. */
export function installWatchSignals(w: Watcher, onSignal?: (signal: string) => void): () => void {
  const now = () => {
    onSignal?.('SIGUSR1');
    w.syncNow();
  };
  const stop = (sig: NodeJS.Signals) => () => {
    onSignal?.(sig);
    // A second stop signal while finishing: leave at once.
    if (w.stopped) process.exit(1);
    w.stop();
  };
  const handlers: Array<[NodeJS.Signals, () => void]> = [
    ['SIGUSR1', now],
    ['SIGTERM', stop('SIGTERM')],
    ['SIGUSR2', stop('SIGUSR2')],
    ['SIGINT', stop('SIGINT')],
  ];
  for (const [s, h] of handlers) process.on(s, h);
  return () => {
    for (const [s, h] of handlers) process.off(s, h);
  };
}
