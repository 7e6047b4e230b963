/**
 * The applier: runs a plan's actions against the two repositories and records each step in the
 * state database in the order that makes a crash anywhere safe to resume:
 *   - flags are stored on the sides first, their new last-synced value recorded after;
 *   - a removal happens first, the pair is forgotten after;
 *   - a copy is recorded as intended (durably) before the APPEND and as a pair after it, in the
 *     same transaction that forgets the intent. A crash between the two leaves an intent that the
 *     next run checks on the target (Message-ID, then size, then hash) before copying again.
 * Copies run in batches (one UID FETCH per batch, one APPEND command per batch where the target
 * can), several batches at once.
 */
import { flagDelta, type Action, type FlagDelta, type Intent, type PairRecord, type Plan, type Side } from './plan.js';
import { contentHash, messageIdOf } from './message.js';
import { RepositoryError, type AppendItem, type FetchedMessage, type Repository } from './repository.js';
import type { SyncState } from './state.js';

/** Where the applier works: one folder pair. */
export interface ApplyTarget {
  state: SyncState;
  folderId: number;
  repos: Record<Side, Repository>;
  /** Folder names on each side. */
  names: Record<Side, string>;
  /** UIDNEXT of each side when the sync started: a copy made now lands at or above it. */
  uidNext: Record<Side, number>;
  /** Trash folder of each side, for the 'trash' deletion mode (default "Trash"). */
  trash?: Partial<Record<Side, string>>;
}

/** A message the applier copied, for callers that act on each (forward's "after" actions). */
export interface CopiedMessage {
  from: Side;
  srcUid: number;
  destUid: number | null;
  messageId: string | null;
  hash: string;
  size: number;
}

/** Options of apply(). */
export interface ApplyOptions {
  /** Batches copied at the same time (default 2). */
  concurrency?: number;
  /** Messages per copy batch (default 200). */
  batchMessages?: number;
  /** Bytes per copy batch, by RFC822.SIZE (default 16 MiB). */
  batchBytes?: number;
  /** Skip (and record as done) messages larger than this many bytes. */
  maxMessageSize?: number;
  /** Forward's de-duplication: a message whose identity is in this `seen` scope is not copied; copied ones are added. */
  dedupeScope?: string;
  /** Progress: copies done so far of the total. */
  onProgress?: (done: number, total: number, bytes: number) => void;
  /** Called after each copy is recorded. */
  onCopied?: (m: CopiedMessage) => void | Promise<void>;
  /** Stop starting new batches once aborted (the batch under way finishes and is recorded). */
  signal?: AbortSignal;
}

/** What apply() did. */
export interface ApplyResult {
  copied: Record<Side, number>;
  flagged: Record<Side, number>;
  removed: Record<Side, number>;
  linked: number;
  forgotten: number;
  /** Copies skipped: already seen (dedupe) or too big. */
  skipped: number;
  bytes: number;
  errors: RepositoryError[];
  /** A-side UIDs copied or skipped (forward advances its high-water mark with them). */
  doneUids: number[];
}

const other = (s: Side): Side => (s === 'a' ? 'b' : 'a');

function asRepoError(err: unknown, fallback: string): RepositoryError {
  if (err instanceof RepositoryError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'SQLITE_FULL' || e?.code === 'ENOSPC') return new RepositoryError('full', `state database: disk full (${e.message})`, err);
  return new RepositoryError('io', `${fallback}: ${(err as Error)?.message ?? String(err)}`, err);
}

/** Group UIDs by identical flag delta, so each group is one STORE. */
function groupDeltas(items: Array<{ uid: number; delta: FlagDelta }>): Map<string, { delta: FlagDelta; uids: number[] }> {
  const out = new Map<string, { delta: FlagDelta; uids: number[] }>();
  for (const it of items) {
    const key = `${it.delta.add.join(' ')}|${it.delta.remove.join(' ')}`;
    const g = out.get(key);
    if (g) g.uids.push(it.uid);
    else out.set(key, { delta: it.delta, uids: [it.uid] });
  }
  return out;
}

/** Execute a plan for one folder pair. Errors are collected, not thrown, except a full state disk. */
export async function applyPlan(plan: Plan, t: ApplyTarget, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const res: ApplyResult = { copied: { a: 0, b: 0 }, flagged: { a: 0, b: 0 }, removed: { a: 0, b: 0 }, linked: 0, forgotten: 0, skipped: 0, bytes: 0, errors: [], doneUids: [] };
  const { state, folderId } = t;
  const fail = (err: unknown, what: string) => {
    const e = asRepoError(err, what);
    res.errors.push(e);
    // A full disk under the state database (or the target) stops everything: nothing more can be recorded.
    if (e.kind === 'full') throw e;
  };

  // 1. Intents whose copies never landed.
  const lostIntents = plan.actions.filter((a): a is Extract<Action, { kind: 'intent-done' }> => a.kind === 'intent-done').map((a) => a.id);
  if (lostIntents.length) state.forget(folderId, [], lostIntents);

  // Flags and removals (2, 3) touch other messages than the copies (4): both run at once.
  const linksAndDrops = async (): Promise<void> => {
    // 2. Links: flags on both sides first, then the records.
    const links = plan.actions.filter((a): a is Extract<Action, { kind: 'link' }> => a.kind === 'link');
    const failedLinks = new Set<Extract<Action, { kind: 'link' }>>();
    for (const side of ['a', 'b'] as const) {
      const items: Array<{ uid: number; delta: FlagDelta; link: Extract<Action, { kind: 'link' }> }> = [];
      for (const l of links) {
        const d = l[side];
        const uid = side === 'a' ? l.record.aUid : l.record.bUid;
        if (d && uid !== null) items.push({ uid, delta: d, link: l });
      }
      const groups = groupDeltas(items);
      for (const g of groups.values()) {
        try {
          if (g.delta.add.length) await t.repos[side].updateFlags(t.names[side], g.uids, 'add', g.delta.add);
          if (g.delta.remove.length) await t.repos[side].updateFlags(t.names[side], g.uids, 'remove', g.delta.remove);
          res.flagged[side] += g.uids.length;
        } catch (err) {
          fail(err, `flags in ${t.names[side]}`);
          const failed = new Set(g.uids);
          for (const it of items) if (failed.has(it.uid)) failedLinks.add(it.link);
        }
      }
    }
    const okLinks = links.filter((l) => !failedLinks.has(l));
    if (okLinks.length) {
      try {
        // Records and their landed intents together; seen keys for forward's window.
        const intentIds = okLinks.map((l) => l.intentId).filter((x): x is number => x !== undefined);
        state.writePairs(
          folderId,
          okLinks.map((l) => l.record),
          intentIds,
        );
        res.linked += okLinks.length;
      } catch (err) {
        fail(err, 'state database');
      }
    }

    // 3. Drops: removals first, then forget.
    const drops = plan.actions.filter((a): a is Extract<Action, { kind: 'drop' }> => a.kind === 'drop');
    const forgetIds: number[] = [];
    const forgetIntents: number[] = [];
    const removals = new Map<string, { side: Side; mode: 'trash' | 'expunge'; drops: Array<Extract<Action, { kind: 'drop' }>> }>();
    for (const d of drops) {
      if (!d.remove) {
        if (d.id !== undefined) forgetIds.push(d.id);
        if (d.intentId !== undefined) forgetIntents.push(d.intentId);
        continue;
      }
      const key = `${d.remove.side}:${d.remove.mode}`;
      const g = removals.get(key) ?? { side: d.remove.side, mode: d.remove.mode, drops: [] };
      g.drops.push(d);
      removals.set(key, g);
    }
    for (const g of removals.values()) {
      const uids = g.drops.map((d) => d.remove!.uid);
      try {
        const trash = t.trash?.[g.side] ?? 'Trash';
        await t.repos[g.side].remove(t.names[g.side], uids, g.mode === 'trash' ? { kind: 'trash', folder: trash } : { kind: 'expunge' });
        res.removed[g.side] += uids.length;
        for (const d of g.drops) {
          if (d.id !== undefined) forgetIds.push(d.id);
          if (d.intentId !== undefined) forgetIntents.push(d.intentId);
        }
      } catch (err) {
        fail(err, `removing messages from ${t.names[g.side]}`);
      }
    }
    if (forgetIds.length || forgetIntents.length) {
      try {
        state.forget(folderId, forgetIds, forgetIntents);
        res.forgotten += forgetIds.length;
      } catch (err) {
        fail(err, 'state database');
      }
    }

  };
  let fatal: unknown = null;
  const copying = async (): Promise<void> => {
    // 4. Copies, in batches, several at once.
    const copies = plan.actions.filter((a): a is Extract<Action, { kind: 'copy' }> => a.kind === 'copy');
    const total = copies.length;
    let done = 0;
    const batchMessages = opts.batchMessages ?? 200;
    const batchBytes = opts.batchBytes ?? 16 * 1024 * 1024;
    const batches: Array<{ from: Side; items: Array<Extract<Action, { kind: 'copy' }>> }> = [];
    for (const from of ['a', 'b'] as const) {
      let cur: Array<Extract<Action, { kind: 'copy' }>> = [];
      let bytes = 0;
      for (const c of copies) {
        if (c.from !== from) continue;
        if (cur.length > 0 && (cur.length >= batchMessages || bytes + c.size > batchBytes)) {
          batches.push({ from, items: cur });
          cur = [];
          bytes = 0;
        }
        cur.push(c);
        bytes += c.size;
      }
      if (cur.length) batches.push({ from, items: cur });
    }
    let next = 0;
    const worker = async () => {
      while (next < batches.length && !fatal && !opts.signal?.aborted) {
        const batch = batches[next++]!;
        try {
          await copyBatch(batch.from, batch.items);
        } catch (err) {
          if (err instanceof RepositoryError && err.kind === 'full') fatal = err;
          else if (!(err instanceof RepositoryError)) fatal = err;
          else res.errors.push(err);
        }
        done += batch.items.length;
        opts.onProgress?.(done, total, res.bytes);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 2, batches.length)) }, worker));
  };
  const settled = await Promise.allSettled([linksAndDrops(), copying()]);
  for (const r of settled) if (r.status === 'rejected' && !fatal) fatal = r.reason;
  if (fatal) throw asRepoError(fatal, 'copy');
  return res;

  async function copyBatch(from: Side, items: Array<Extract<Action, { kind: 'copy' }>>): Promise<void> {
    const to = other(from);
    const want = new Map(items.map((c) => [c.uid, c]));
    const fetched: FetchedMessage[] = [];
    await t.repos[from].fetch(t.names[from], items.map((c) => c.uid), (m) => {
      if (want.has(m.uid)) fetched.push(m);
    });
    // Identity of each message, from its bytes.
    const prepared = fetched.map((m) => {
      const c = want.get(m.uid)!;
      const messageId = messageIdOf(m.data);
      const hash = contentHash(m.data);
      return { m, c, messageId, hash, size: c.size };
    });
    const skip: typeof prepared = [];
    const send: typeof prepared = [];
    for (const p of prepared) {
      const tooBig = opts.maxMessageSize !== undefined && p.m.data.length > opts.maxMessageSize;
      const dupe = opts.dedupeScope !== undefined && state.seenHas(opts.dedupeScope, dedupeKey(p.messageId, p.hash));
      (tooBig || dupe ? skip : send).push(p);
    }
    if (skip.length) {
      // Recorded as handled on the source only (a one-sided record), so they are not tried again.
      state.writePairs(
        folderId,
        skip.map((p) => ({ aUid: from === 'a' ? p.m.uid : null, bUid: from === 'b' ? p.m.uid : null, flags: p.c.flags, messageId: p.messageId, size: p.size, hash: p.hash })),
      );
      res.skipped += skip.length;
      if (from === 'a') res.doneUids.push(...skip.map((p) => p.m.uid));
    }
    if (send.length === 0) return;
    const intents: Array<Omit<Intent, 'id'>> = send.map((p) => ({
      from,
      srcUid: p.m.uid,
      messageId: p.messageId,
      size: p.size,
      hash: p.hash,
      flags: p.c.flags,
      targetMinUid: t.uidNext[to],
    }));
    const intentIds = state.addIntents(folderId, intents);
    const appendItems: AppendItem[] = send.map((p) => {
      const it: AppendItem = { data: p.m.data, flags: p.c.flags };
      if (p.m.internalDate) it.internalDate = p.m.internalDate;
      return it;
    });
    const r = await t.repos[to].append(t.names[to], appendItems);
    const records: PairRecord[] = [];
    const doneIntents: number[] = [];
    const seenKeys: string[] = [];
    send.forEach((p, i) => {
      const dest = r.uids[i] ?? null;
      // Without a UID from the server (no UIDPLUS) the intent stays; the next run finds the copy by identity.
      if (dest === null) return;
      records.push({ aUid: from === 'a' ? p.m.uid : dest, bUid: from === 'a' ? dest : p.m.uid, flags: [...p.c.flags].sort(), messageId: p.messageId, size: p.size, hash: p.hash });
      doneIntents.push(intentIds[i]!);
      if (opts.dedupeScope !== undefined) seenKeys.push(dedupeKey(p.messageId, p.hash));
    });
    state.writePairs(folderId, records, doneIntents, opts.dedupeScope !== undefined ? { scope: opts.dedupeScope, keys: seenKeys } : undefined);
    res.copied[from] += send.length;
    for (const p of send) res.bytes += p.m.data.length;
    if (from === 'a') res.doneUids.push(...send.map((p) => p.m.uid));
    if (opts.onCopied) {
      for (let i = 0; i < send.length; i++) {
        const p = send[i]!;
        await opts.onCopied({ from, srcUid: p.m.uid, destUid: r.uids[i] ?? null, messageId: p.messageId, hash: p.hash, size: p.size });
      }
    }
  }
}

/** The `seen` key of a message: its Message-ID, or its hash when it has none. */
export function dedupeKey(messageId: string | null, hash: string): string {
  return messageId ?? `sha256:${hash}`;
}

/** True when the two flag lists differ (for callers that compare states). */
export function flagsDiffer(a: readonly string[], b: readonly string[]): boolean {
  return flagDelta(a, b) !== undefined;
}
