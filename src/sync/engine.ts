/**
 * The sync engine: pairs the folders of two repositories, and for each pair reads what changed
 * (STATUS first; CONDSTORE/QRESYNC changes when the last sync was clean; a full UID/flags scan
 * otherwise), plans (src/sync/plan.ts) and applies (src/sync/apply.ts). Folders run in parallel.
 *
 * A SyncSession keeps the repositories and the state database open across runs (watch mode,
 * forward); syncAccount() opens one from a configured account, runs once and closes.
 * `forward` is this engine with `appendOnly: true`: only new messages of side a (above the
 * folder's high-water mark, newer than `since`, not in the `seen` window) go to side b.
 */
import { MaildirStore } from '../store/maildir/index.js';
import { applyPlan, type ApplyResult, type CopiedMessage } from './apply.js';
import { checkInverse, type AccountSpec, type FolderSelector, type NameTranslator, type RepoSpec } from './config.js';
import { resolvePassword } from './credentials.js';
import { ImapRepository } from './imap-repository.js';
import { contentHash } from './message.js';
import { plan, planSummary, type DeletePolicy, type PairRecord, type Plan, type PlanOptions, type Side } from './plan.js';
import { RepositoryError, type FolderChanges, type FolderInfo, type FolderStatus, type MessageEntry, type Repository } from './repository.js';
import { SyncState, type FolderState } from './state.js';
import { StoreRepository } from './store-repository.js';

/** What happened, for user interfaces (src/sync/ui.ts) and programs (--ui json). */
export type SyncEvent =
  | { type: 'account-start'; account: string }
  | { type: 'folder-start'; account: string; folder: string }
  | { type: 'folder-plan'; account: string; folder: string; summary: ReturnType<typeof planSummary> }
  | { type: 'progress'; account: string; folder: string; done: number; total: number; bytes: number }
  | { type: 'folder-done'; account: string; folder: string; result: FolderResult }
  | { type: 'warning'; account: string; folder?: string; message: string }
  | { type: 'account-done'; account: string; summary: AccountSummary };

/** The outcome of one folder pair. */
export interface FolderResult {
  /** Name on side a (remote). */
  folder: string;
  /** Name on side b (local). */
  local: string;
  /** Nothing to do: both sides unchanged since the last sync (no messages read). */
  unchanged: boolean;
  /** Messages copied from side a (to b) and from side b (to a). */
  copied: Record<Side, number>;
  /** Messages whose flags changed on side a / b. */
  flagged: Record<Side, number>;
  /** Messages removed from side a / b (expunged or moved to trash). */
  removed: Record<Side, number>;
  linked: number;
  skipped: number;
  bytes: number;
  /** Folder created on a side for this pair. */
  created?: Side;
  errors: string[];
  /** Dry runs: the plan that would run. */
  plan?: Plan;
}

/** An error of an account with what to do about it. */
export interface SyncError {
  folder?: string;
  kind: RepositoryError['kind'] | 'lock' | 'internal';
  message: string;
  advice: string;
}

/** The outcome of one run over an account. */
export interface AccountSummary {
  account: string;
  ok: boolean;
  folders: FolderResult[];
  errors: SyncError[];
  copied: Record<Side, number>;
  flagged: Record<Side, number>;
  removed: Record<Side, number>;
  bytes: number;
  durationMs: number;
  dryRun: boolean;
}

/** A session's fixed setup: the two sides and how to pair them. */
export interface SessionSpec {
  /** Account name (messages, events). */
  name: string;
  a: Repository;
  b: Repository;
  state: SyncState;
  /** Which a-side folders take part (default all). */
  selector?: FolderSelector;
  /** Name translation a ↔ b (default identity). */
  names?: NameTranslator;
  /** Policy on side a / b when the message was deleted on the other side (default expunge). */
  deletions?: { a: DeletePolicy; b: DeletePolicy };
  /** Trash folder per side (default: the \Trash special-use folder, else "Trash"). */
  trash?: Partial<Record<Side, string>>;
  direction?: 'both' | 'a-to-b';
  /** Forward mode: only new messages of a go to b. */
  appendOnly?: boolean;
  /** Folders synced at once (default 4). */
  folderConcurrency?: number;
  /** Copy batches under way at once per folder (default 2). */
  copyConcurrency?: number;
  maxMessageSize?: number;
  /** Close the repositories and the state database on close() (default true). */
  owns?: boolean;
}

/** Options of one run. */
export interface RunOptions {
  /** Plan only: nothing is changed, the plans are returned in the folder results. */
  dryRun?: boolean;
  /** OfflineIMAP's quick mode: a folder whose counts (and HIGHESTMODSEQ) did not change is skipped without a flag scan. */
  quick?: boolean;
  /** Only these a-side folders (e.g. the one IDLE woke up for). */
  folders?: string[];
  /** Forward: messages older than this (INTERNALDATE) are never copied. */
  since?: Date;
  /** Forward: skip messages whose identity is in this `seen` scope; record copied ones. */
  dedupeScope?: string;
  /** Called after each copy is recorded. */
  onCopied?: (folder: string, m: CopiedMessage) => void | Promise<void>;
  onEvent?: (e: SyncEvent) => void;
  /** Stop starting new folders and batches (what is under way finishes and is recorded). */
  signal?: AbortSignal;
}

/** Advice for each kind of failure. */
export function adviceFor(kind: SyncError['kind'], account: string): string {
  switch (kind) {
    case 'connect':
      return `check the host and port of account ${account} and that the server is reachable; then run again`;
    case 'auth':
      return `check the user name and password of account ${account} (password, passwordFile, passwordEnv, passwordCommand or netrc)`;
    case 'tls':
      return `TLS with the server of account ${account} failed: for a private CA set caFile, for a self-signed certificate pin it with fingerprint = "<SHA-256>" (after checking it), for a server without TLS say tls = false (trusted networks only)`;
    case 'config':
      return `fix the configuration of account ${account}`;
    case 'full':
      return `free disk space (or raise the mailbox quota), then run again: nothing was lost and the next run resumes where this one stopped`;
    case 'toobig':
      return `the server refuses a message this big; exclude it (maxMessageSize) or raise the server's limit`;
    case 'nonexistent':
      return `a folder disappeared during the sync; run again`;
    case 'lock':
      return `another imapkit sync of account ${account} is running; wait for it or stop it`;
    default:
      return `run again; if it persists, run with --ui plain and report the messages`;
  }
}

/** Errors that end the whole account (no folder can do better). */
function isAccountFatal(err: unknown): boolean {
  return err instanceof RepositoryError && ['connect', 'auth', 'tls', 'full', 'config'].includes(err.kind);
}

const other = (s: Side): Side => (s === 'a' ? 'b' : 'a');

/**
 * After a run that changed at least this many messages on a side, the side is checked right away
 * (its changes since the start are all this run's own) so the next run finds it unchanged.
 */
const VERIFY_AFTER = 500;

/** An identity translator. */
const IDENTITY: NameTranslator = { toLocal: (n) => n, toRemote: (n) => n };

/** Run tasks with at most `limit` at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (i < items.length) await fn(items[i++]!);
  });
  await Promise.all(workers);
}

/** Two repositories, a state database and the rules that pair them; run() syncs once. */
export class SyncSession {
  private opened = false;
  private running: Promise<AccountSummary> | null = null;

  constructor(readonly spec: SessionSpec) {}

  /** Open both repositories. */
  async open(): Promise<void> {
    if (this.opened) return;
    await Promise.all([this.spec.a.open(), this.spec.b.open()]);
    this.opened = true;
  }

  /** Sync once (runs are never concurrent: a second call waits for the first). */
  async run(opts: RunOptions = {}): Promise<AccountSummary> {
    while (this.running) await this.running.catch(() => undefined);
    this.running = this.runOnce(opts);
    try {
      return await this.running;
    } finally {
      this.running = null;
    }
  }

  private async runOnce(opts: RunOptions): Promise<AccountSummary> {
    const started = Date.now();
    const account = this.spec.name;
    const emit = (e: SyncEvent) => opts.onEvent?.(e);
    const summary: AccountSummary = {
      account,
      ok: true,
      folders: [],
      errors: [],
      copied: { a: 0, b: 0 },
      flagged: { a: 0, b: 0 },
      removed: { a: 0, b: 0 },
      bytes: 0,
      durationMs: 0,
      dryRun: opts.dryRun === true,
    };
    const addError = (err: unknown, folder?: string) => {
      const kind: SyncError['kind'] = err instanceof RepositoryError ? err.kind : 'internal';
      const e: SyncError = { kind, message: err instanceof Error ? err.message : String(err), advice: adviceFor(kind, account) };
      if (folder !== undefined) e.folder = folder;
      summary.errors.push(e);
      summary.ok = false;
    };
    emit({ type: 'account-start', account });
    try {
      await this.open();
      const pairs = await this.pairFolders(opts, (m, folder) => emit(folder === undefined ? { type: 'warning', account, message: m } : { type: 'warning', account, folder, message: m }));
      let fatal: unknown = null;
      const limit = this.spec.folderConcurrency ?? 4;
      // Trash folders last: messages this run moves there are then synced in the same run.
      const isTrash = (p: PairJob) => p.aName === p.trash.a || p.bName === p.trash.b;
      const phases = [pairs.filter((p) => !isTrash(p)), pairs.filter(isTrash)];
      for (const [i, phase] of phases.entries()) {
        // Counters listed at the start are stale for trash folders once messages were moved there.
        if (i === 1 && summary.removed.a + summary.removed.b > 0) for (const p of phase) p.listStatus = { a: undefined, b: undefined };
        await pool(phase, limit, async (p) => {
        if (fatal || opts.signal?.aborted) return;
        emit({ type: 'folder-start', account, folder: p.aName });
        const r = await this.syncPair(p, opts, emit).catch((err: unknown) => {
          if (isAccountFatal(err)) fatal = err;
          else addError(err, p.aName);
          return null;
        });
        if (!r) return;
        summary.folders.push(r);
        for (const s of ['a', 'b'] as const) {
          summary.copied[s] += r.copied[s];
          summary.flagged[s] += r.flagged[s];
          summary.removed[s] += r.removed[s];
        }
        summary.bytes += r.bytes;
        for (const m of r.errors) addError(new RepositoryError('protocol', m), p.aName);
        emit({ type: 'folder-done', account, folder: p.aName, result: r });
        });
      }
      if (fatal) throw fatal;
    } catch (err) {
      addError(err);
    }
    summary.durationMs = Date.now() - started;
    summary.folders.sort((x, y) => x.folder.localeCompare(y.folder));
    emit({ type: 'account-done', account, summary });
    return summary;
  }

  /** The folder pairs to sync this run, creating missing folders (not in dry runs). */
  private async pairFolders(opts: RunOptions, warn: (m: string, folder?: string) => void): Promise<PairJob[]> {
    const { a, b, state } = this.spec;
    const names = this.spec.names ?? IDENTITY;
    const select = this.spec.selector ?? (() => true);
    const [la, lb] = await Promise.all([a.listFolders(), b.listFolders()]);
    const byA = new Map(la.map((f) => [f.name, f]));
    const byB = new Map(lb.map((f) => [f.name, f]));
    const trash: Record<Side, string> = {
      a: this.spec.trash?.a ?? la.find((f) => f.specialUse === '\\Trash')?.name ?? 'Trash',
      b: this.spec.trash?.b ?? lb.find((f) => f.specialUse === '\\Trash')?.name ?? 'Trash',
    };
    const selA = la.filter((f) => !f.noSelect && select(f.name, f.specialUse)).map((f) => f.name);
    const twoWay = !this.spec.appendOnly && (this.spec.direction ?? 'both') === 'both';
    const selB: string[] = [];
    if (twoWay) {
      for (const f of lb) {
        if (f.noSelect) continue;
        let remote: string;
        try {
          remote = names.toRemote(f.name);
        } catch {
          continue;
        }
        if (select(remote, byA.get(remote)?.specialUse ?? f.specialUse)) selB.push(f.name);
      }
    }
    if (!this.spec.appendOnly) {
      const problems = checkInverse(names, selA, selB);
      if (problems.length) throw new RepositoryError('config', `folder name translation of account ${this.spec.name} is not reversible: ${problems.join('; ')}`);
    }
    const wanted = new Set(selA);
    for (const l of selB) wanted.add(names.toRemote(l));
    let list = [...wanted];
    if (opts.folders) {
      const only = new Set(opts.folders);
      list = list.filter((n) => only.has(n));
    }
    list.sort((x, y) => (x === 'INBOX' ? -1 : y === 'INBOX' ? 1 : x.localeCompare(y)));
    const known = new Map(state.folders().map((f) => [`${f.aName}\u0000${f.bName}`, f]));
    const jobs: PairJob[] = [];
    for (const aName of list) {
      const bName = names.toLocal(aName);
      const inA = byA.has(aName) && !byA.get(aName)!.noSelect;
      const inB = byB.has(bName) && !byB.get(bName)!.noSelect;
      const prev = known.get(`${aName}\u0000${bName}`);
      const wasSynced = prev?.syncedAt != null || (prev !== undefined && state.pairCount(prev.id) > 0);
      const job: PairJob = { aName, bName, trash, listStatus: { a: (byA.get(aName) as FolderWithStatus | undefined)?.status, b: (byB.get(bName) as FolderWithStatus | undefined)?.status } };
      if (inA && inB) {
        jobs.push(job);
        continue;
      }
      if (!inA && !inB) continue;
      const missing: Side = inA ? 'b' : 'a';
      if (missing === 'a' && !twoWay) continue;
      if (wasSynced && !this.spec.appendOnly) {
        warn(`folder ${missing === 'a' ? aName : bName} no longer exists on the ${missing === 'a' ? 'remote' : 'local'} side; imapkit does not delete or recreate it. Delete it on the other side too, or create it again to sync it`, aName);
        continue;
      }
      job.create = missing;
      if (!opts.dryRun) {
        await this.spec[missing].createFolder(missing === 'a' ? aName : bName);
        job.listStatus[missing] = undefined;
      }
      jobs.push(job);
    }
    return jobs;
  }

  /** Sync one folder pair. Throws only what ends the account. */
  private async syncPair(job: PairJob, opts: RunOptions, emit: (e: SyncEvent) => void): Promise<FolderResult> {
    const { state } = this.spec;
    const repos: Record<Side, Repository> = { a: this.spec.a, b: this.spec.b };
    const names: Record<Side, string> = { a: job.aName, b: job.bName };
    const appendOnly = this.spec.appendOnly === true;
    const result: FolderResult = {
      folder: job.aName,
      local: job.bName,
      unchanged: false,
      copied: { a: 0, b: 0 },
      flagged: { a: 0, b: 0 },
      removed: { a: 0, b: 0 },
      linked: 0,
      skipped: 0,
      bytes: 0,
      errors: [],
    };
    if (job.create) result.created = job.create;
    const dryNew = opts.dryRun === true && job.create !== undefined;
    let fs = state.folder(job.aName, job.bName);

    // Counters of both sides: the recorded ones when the side's change token says nothing
    // happened, else from LIST-STATUS when the listing had them, else STATUS.
    const tokens: Record<Side, string | null> = { a: null, b: null };
    const status = {} as Record<Side, FolderStatus>;
    // Which counters were read from the side during this run (not taken from the records).
    const live: Record<Side, boolean> = { a: false, b: false };
    for (const s of ['a', 'b'] as const) {
      if (dryNew && job.create === s) {
        status[s] = emptyStatus();
        continue;
      }
      tokens[s] = repos[s].changeToken ? await repos[s].changeToken!(names[s]).catch(() => null) : null;
      const k = fs[s];
      if (tokens[s] !== null && fs.clean && tokens[s] === k.token && k.uidValidity !== null && k.uidNext !== null && k.count !== null) {
        status[s] = { uidValidity: k.uidValidity, uidNext: k.uidNext, messages: k.count };
        if (k.highestModSeq !== null) status[s].highestModSeq = k.highestModSeq;
      } else {
        status[s] = job.listStatus[s] ?? (await repos[s].status(names[s]));
        live[s] = true;
      }
    }
    for (const s of ['a', 'b'] as const) {
      const known = fs[s].uidValidity;
      if (opts.dryRun) continue;
      if (known !== null && known !== status[s].uidValidity) {
        emit({ type: 'warning', account: this.spec.name, folder: job.aName, message: `UIDVALIDITY of ${names[s]} on the ${s === 'a' ? 'remote' : 'local'} side changed (${known} → ${status[s].uidValidity}): matching its messages again by Message-ID` });
        state.uidValidityChanged(fs.id, s, status[s].uidValidity);
      } else if (known === null) state.setSide(fs.id, s, { uidValidity: status[s].uidValidity });
    }
    fs = state.folderById(fs.id)!;
    const intents = state.intents(fs.id);
    const unchanged = (s: Side) => {
      const st = status[s];
      const k = fs[s];
      if (!fs.clean || k.uidValidity !== st.uidValidity || k.uidNext !== st.uidNext || k.count !== st.messages) return false;
      if (st.highestModSeq !== undefined && k.highestModSeq !== null) return st.highestModSeq === k.highestModSeq;
      return opts.quick === true;
    };
    if (!appendOnly && intents.length === 0 && unchanged('a') && unchanged('b')) {
      result.unchanged = true;
      return result;
    }

    // What each side holds now.
    const entries: Record<Side, MessageEntry[]> = { a: [], b: [] };
    let pairs: PairRecord[];
    if (appendOnly) {
      pairs = state.pairsAbove(fs.id, 'a', fs.a.maxUid);
      const snap = await repos.a.snapshot(names.a, { minUid: fs.a.maxUid + 1, withDates: opts.since !== undefined });
      status.a = snap.status;
      entries.a = snap.messages;
      if (intents.length) {
        const min = Math.min(...intents.map((i) => i.targetMinUid));
        const sb = await repos.b.snapshot(names.b, { minUid: min });
        entries.b = sb.messages;
      }
    } else {
      // Both sides at once: a server's SELECT and FETCH overlap the local side's scan, and
      // reading the records (a whole folder's worth) waits until the servers have their requests.
      let loaded: PairRecord[] | undefined;
      const getPairs = (): PairRecord[] => (loaded ??= state.pairs(fs.id));
      const read = async (s: Side) => {
        if (!(dryNew && job.create === s)) entries[s] = await this.readSide(s, fs, getPairs, status, unchanged(s), intents.length > 0, live[s]);
      };
      await Promise.all([read('a'), read('b')]);
      pairs = getPairs();
    }
    // Forward: messages before `since` count as done without a copy.
    const before = new Set<number>();
    if (appendOnly && opts.since) {
      const since = opts.since.getTime();
      entries.a = entries.a.filter((m) => {
        const old = m.internalDate !== undefined && m.internalDate.getTime() < since;
        if (old) before.add(m.uid);
        return !old;
      });
    }

    // Plan, filling in Message-IDs and hashes as the planner asks.
    const planOpts: PlanOptions = {
      direction: this.spec.direction ?? 'both',
      appendOnly,
      deletions: this.spec.deletions ?? { a: 'expunge', b: 'expunge' },
      keywords: { a: repos.a.capabilities().keywords, b: repos.b.capabilities().keywords },
    };
    if (appendOnly) planOpts.direction = 'a-to-b';
    let p = plan({ a: entries.a, b: entries.b, pairs, intents, options: planOpts });
    for (let round = 0; p.needIdentity || p.needHash; round++) {
      if (round > 6) throw new RepositoryError('protocol', `planning ${job.aName} did not settle`);
      for (const s of ['a', 'b'] as const) {
        const idUids = p.needIdentity?.[s] ?? [];
        if (idUids.length) {
          const ids = await repos[s].messageIds(names[s], idUids);
          const byUid = new Map(entries[s].map((m) => [m.uid, m]));
          for (const uid of idUids) {
            const m = byUid.get(uid);
            if (m) m.messageId = ids.get(uid)?.messageId ?? null;
          }
        }
        const hashUids = p.needHash?.[s] ?? [];
        if (hashUids.length) {
          const byUid = new Map(entries[s].map((m) => [m.uid, m]));
          await repos[s].fetch(names[s], hashUids, (fm) => {
            const m = byUid.get(fm.uid);
            if (m) m.hash = contentHash(fm.data);
          });
          // A message gone meanwhile gets a hash no other message has, so the planner stops asking.
          for (const uid of hashUids) {
            const m = byUid.get(uid);
            if (m && !m.hash) m.hash = `gone:${s}:${uid}`;
          }
        }
      }
      p = plan({ a: entries.a, b: entries.b, pairs, intents, options: planOpts });
    }
    const sum = planSummary(p);
    emit({ type: 'folder-plan', account: this.spec.name, folder: job.aName, summary: sum });
    if (opts.dryRun) {
      result.plan = p;
      result.copied = { a: sum.copyAtoB, b: sum.copyBtoA };
      result.flagged = { a: sum.flagsA, b: sum.flagsB };
      result.removed = { a: sum.removeA, b: sum.removeB };
      return result;
    }

    // Apply.
    if (p.actions.length) state.setClean(fs.id, false);
    let applied: ApplyResult;
    try {
      applied = await applyPlan(
        p,
        { state, folderId: fs.id, repos, names, uidNext: { a: status.a.uidNext, b: status.b.uidNext }, trash: job.trash },
        {
          concurrency: this.spec.copyConcurrency ?? 2,
          ...(this.spec.maxMessageSize !== undefined ? { maxMessageSize: this.spec.maxMessageSize } : {}),
          ...(opts.dedupeScope !== undefined ? { dedupeScope: opts.dedupeScope } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
          onProgress: (done, total, bytes) => emit({ type: 'progress', account: this.spec.name, folder: job.aName, done, total, bytes }),
          ...(opts.onCopied ? { onCopied: (m: CopiedMessage) => opts.onCopied!(job.aName, m) } : {}),
        },
      );
    } catch (err) {
      if (isAccountFatal(err)) throw err;
      result.errors.push(err instanceof Error ? err.message : String(err));
      return result;
    }
    result.copied = applied.copied;
    result.flagged = applied.flagged;
    result.removed = applied.removed;
    result.linked = applied.linked;
    result.skipped = applied.skipped;
    result.bytes = applied.bytes;
    result.errors.push(...applied.errors.map((e) => e.message));
    const aborted = opts.signal?.aborted === true && p.actions.some((x) => x.kind === 'copy');
    const ok = applied.errors.length === 0 && !aborted;

    if (appendOnly) {
      // Advance the high-water mark over every UID done (copied, recorded, or before `since`).
      const done = new Set<number>([...before, ...applied.doneUids]);
      for (const r of state.pairsAbove(fs.id, 'a', fs.a.maxUid)) if (r.aUid !== null) done.add(r.aUid);
      const all = [...entries.a.map((m) => m.uid), ...before].sort((x, y) => x - y);
      let max = fs.a.maxUid;
      let complete = true;
      for (const uid of all) {
        if (!done.has(uid)) {
          complete = false;
          break;
        }
        max = uid;
      }
      if (complete) max = Math.max(max, status.a.uidNext - 1);
      if (max > fs.a.maxUid) {
        state.setSide(fs.id, 'a', { maxUid: max });
        state.forgetUpTo(fs.id, 'a', max);
      }
      state.setSide(fs.id, 'a', { uidValidity: status.a.uidValidity, uidNext: status.a.uidNext, count: status.a.messages });
      state.setClean(fs.id, ok);
      return result;
    }
    if (ok) {
      for (const s of ['a', 'b'] as const) {
        // The counters read at the start, unless the side's changes since are all this run's own
        // (then the next run finds it unchanged): anything else shows up next time. A change
        // token goes with counters only when it was read before they were checked.
        const changes = s === 'a' ? applied.copied.b + applied.flagged.a + applied.removed.a : applied.copied.a + applied.flagged.b + applied.removed.b;
        let st = status[s];
        let token = tokens[s];
        if (changes > 0 && changes < VERIFY_AFTER) {
          // A small change: checking it now costs what reading it next time costs; leave it to the next run.
          token = null;
        } else if (changes > 0) {
          token = await this.stableToken(s, names[s]);
          const after = p.leftUnpaired ? null : await this.ownChangesOnly(s, fs.id, names[s], status[s]).catch(() => null);
          if (after) st = after;
          else token = null;
        }
        state.setSide(fs.id, s, { uidValidity: st.uidValidity, uidNext: st.uidNext, count: st.messages, highestModSeq: st.highestModSeq ?? null, token });
      }
    } else for (const s of ['a', 'b'] as const) state.setSide(fs.id, s, { token: null });
    state.setClean(fs.id, ok && !p.leftUnpaired);
    return result;
  }

  /** The side's change token, waiting once for it to settle when it was written this very moment. */
  private async stableToken(s: Side, name: string): Promise<string | null> {
    const repo = this.spec[s];
    if (!repo.changeToken) return null;
    const t = await repo.changeToken(name).catch(() => null);
    if (t !== null) return t;
    await new Promise((r) => setTimeout(r, 60));
    return repo.changeToken(name).catch(() => null);
  }

  /**
   * After a run changed a side: the side's status now, if everything that changed there since the
   * run started (CONDSTORE) matches the records this run wrote; else null.
   */
  private async ownChangesOnly(s: Side, folderId: number, name: string, start: FolderStatus): Promise<FolderStatus | null> {
    const repo = this.spec[s];
    if (start.highestModSeq === undefined || !repo.capabilities().condstore) return null;
    const ch = await repo.changesSince(name, start.highestModSeq);
    if (!ch || ch.status.uidValidity !== start.uidValidity) return null;
    const kw = repo.capabilities().keywords;
    const recs = new Map<number, string[]>();
    for (const r of this.spec.state.pairs(folderId)) {
      const uid = s === 'a' ? r.aUid : r.bUid;
      if (uid !== null) recs.set(uid, kw ? r.flags : r.flags.filter((f) => f.startsWith('\\')));
    }
    if (recs.size !== ch.status.messages) return null;
    for (const e of ch.changed) {
      const want = recs.get(e.uid);
      if (!want || want.length !== e.flags.length || want.some((f) => !e.flags.includes(f))) return null;
    }
    return ch.status;
  }

  /**
   * The messages of one side: rebuilt from the records when the side did not change, from the
   * records plus CONDSTORE changes when it can, else a full scan.
   */
  private async readSide(s: Side, fs: FolderState, getPairs: () => PairRecord[], status: Record<Side, FolderStatus>, unchanged: boolean, hasIntents: boolean, live: boolean): Promise<MessageEntry[]> {
    const repo = this.spec[s];
    const name = s === 'a' ? fs.aName : fs.bName;
    const uidKey = s === 'a' ? 'aUid' : 'bUid';
    const staleKey = s === 'a' ? 'aStale' : 'bStale';
    const since = fs[s].highestModSeq;
    const maybeTrusted = fs.clean && !hasIntents && fs[s].uidValidity === status[s].uidValidity;
    // Ask the side for its changes first (a read, harmless if unused): the records are read meanwhile.
    let early: Promise<FolderChanges | null> | null = null;
    if (maybeTrusted && !unchanged && since !== null && repo.capabilities().condstore) {
      early = repo.changesSince(name, since, live ? status[s] : undefined);
      early.catch(() => undefined);
      await new Promise((r) => setImmediate(r));
    }
    const pairs = getPairs();
    const fromRecords = (): Map<number, MessageEntry> => {
      const m = new Map<number, MessageEntry>();
      for (const p of pairs) {
        const uid = p[uidKey];
        if (uid !== null && !p[staleKey]) m.set(uid, { uid, flags: [...p.flags], size: p.size });
      }
      return m;
    };
    const trusted = maybeTrusted && !pairs.some((p) => p[staleKey]);
    if (trusted && unchanged) return [...fromRecords().values()].sort((x, y) => x.uid - y.uid);
    if (!trusted && early) await early.catch(() => null);
    if (trusted && early) {
      const ch = await early;
      if (ch) {
        status[s] = ch.status;
        const m = fromRecords();
        if (ch.vanished) for (const uid of ch.vanished) m.delete(uid);
        for (const e of ch.changed) m.set(e.uid, e);
        if (!ch.vanished || m.size !== ch.status.messages) {
          // Without QRESYNC (or when counts disagree) the UID list tells what went.
          const now = new Set(await repo.uids(name));
          for (const uid of [...m.keys()]) if (!now.has(uid)) m.delete(uid);
          if (m.size !== now.size) return this.fullScan(s, name, status);
        }
        return [...m.values()].sort((x, y) => x.uid - y.uid);
      }
    }
    return this.fullScan(s, name, status);
  }

  private async fullScan(s: Side, name: string, status: Record<Side, FolderStatus>): Promise<MessageEntry[]> {
    const snap = await this.spec[s].snapshot(name);
    status[s] = snap.status;
    return snap.messages;
  }

  /** Close the repositories and the state (when the session owns them). */
  async close(): Promise<void> {
    if (this.spec.owns === false) return;
    await Promise.allSettled([this.spec.a.close(), this.spec.b.close()]);
    this.spec.state.close();
  }
}

type FolderWithStatus = FolderInfo & { status?: FolderStatus };

interface PairJob {
  aName: string;
  bName: string;
  trash: Record<Side, string>;
  listStatus: Record<Side, FolderStatus | undefined>;
  create?: Side;
}

function emptyStatus(): FolderStatus {
  return { uidValidity: 0, uidNext: 1, messages: 0 };
}

/** Options of openRepository(). */
export interface OpenRepositoryOptions {
  /** Password when the spec has no source (the CLI's prompt or IMAPKIT_PASSWORD). */
  password?: () => Promise<string>;
  warn?: (m: string) => void;
  /** For error messages. */
  account?: string;
}

/** Build a Repository from a resolved spec (not yet opened). */
export function openRepository(spec: RepoSpec, opts: OpenRepositoryOptions = {}): Repository {
  if (spec.type === 'maildir') {
    return new StoreRepository(new MaildirStore({ path: spec.path }), { label: `maildir:${spec.path}`, ownsStore: true, maildir: { root: spec.path } });
  }
  const src = spec.password;
  const password = async (): Promise<string> => {
    if (src) {
      try {
        return await resolvePassword(src);
      } catch (err) {
        throw new RepositoryError('auth', `account ${opts.account ?? ''}: ${(err as Error).message}`.replace('account : ', ''), err);
      }
    }
    if (opts.password) return opts.password();
    throw new RepositoryError('config', `no password for ${spec.user}@${spec.host}: give password, passwordFile, passwordEnv, passwordCommand or netrc`);
  };
  const o: ConstructorParameters<typeof ImapRepository>[0] = { host: spec.host, port: spec.port, tls: spec.tls, user: spec.user, password, maxConnections: spec.maxConnections };
  if (spec.caFile) o.caFile = spec.caFile;
  if (spec.fingerprint) o.fingerprint = spec.fingerprint;
  if (opts.warn) o.warn = opts.warn;
  return new ImapRepository(o);
}

/** Open a session for a configured account: its repositories and its state database (locked). */
export function openAccount(spec: AccountSpec, opts: OpenRepositoryOptions = {}): SyncSession {
  const state = SyncState.open(spec.statePath);
  const o = { ...opts, account: spec.name };
  const session: SessionSpec = {
    name: spec.name,
    a: openRepository(spec.remote, o),
    b: openRepository(spec.local, o),
    state,
    selector: spec.selector,
    names: spec.names,
    // The config says what happens ON each side; the planner wants the same, keyed a/b.
    deletions: { a: spec.deletions.remote, b: spec.deletions.local },
    trash: { ...(spec.trash.remote ? { a: spec.trash.remote } : {}), ...(spec.trash.local ? { b: spec.trash.local } : {}) },
    direction: spec.direction,
    folderConcurrency: spec.folderConcurrency,
  };
  if (spec.maxMessageSize !== undefined) session.maxMessageSize = spec.maxMessageSize;
  return new SyncSession(session);
}

/** Sync one configured account once: open, run, close. Errors end up in the summary (never thrown). */
export async function syncAccount(spec: AccountSpec, opts: RunOptions & OpenRepositoryOptions = {}): Promise<AccountSummary> {
  let session: SyncSession;
  try {
    session = openAccount(spec, opts);
  } catch (err) {
    const kind: SyncError['kind'] = (err as Error).name === 'StateLockedError' ? 'lock' : err instanceof RepositoryError ? err.kind : 'io';
    const summary: AccountSummary = {
      account: spec.name,
      ok: false,
      folders: [],
      errors: [{ kind, message: (err as Error).message, advice: adviceFor(kind, spec.name) }],
      copied: { a: 0, b: 0 },
      flagged: { a: 0, b: 0 },
      removed: { a: 0, b: 0 },
      bytes: 0,
      durationMs: 0,
      dryRun: opts.dryRun === true,
    };
    opts.onEvent?.({ type: 'account-done', account: spec.name, summary });
    return summary;
  }
  try {
    return await session.run(opts);
  } finally {
    await session.close();
  }
}

/** The other side of a pair. */
export const otherSide = other;
