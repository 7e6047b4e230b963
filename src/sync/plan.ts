/**
 * The pure planner: two snapshots of a folder pair plus what the last sync recorded → the actions
 * that make the two sides agree. No I/O here, so it is property-tested (test/sync/plan.property.test.ts).
 *
 * Flag merge rule: for a pair with last-synced flags L and current flags A and B, the result is
 *   R = (A ∩ B) ∪ (A \ L) ∪ (B \ L)
 * A flag added on either side is kept (union); a flag removed on one side and left alone on the
 * other is removed (a removal beats "unchanged"); both sides then get R. Freshly matched pairs
 * (first sync of two full sides, after a UIDVALIDITY change) have no L and get the union.
 *
 * Identity of a message across sides: its Message-ID plus RFC822.SIZE, or the SHA-256 of its
 * bytes (CRLF-normalised) when it has no Message-ID. The planner asks for what it lacks
 * (needIdentity, needHash) instead of guessing, so nothing is copied twice for want of a header.
 */
import type { MessageEntry } from './repository.js';

/** Side of a pair: a (remote / source) or b (local / target). */
export type Side = 'a' | 'b';

/** What happens on a side when a message was deleted on the other side. */
export type DeletePolicy = 'never' | 'trash' | 'expunge';

/** One synced message as the state database remembers it; a null UID is a tombstone (deleted there, kept on the other side). */
export interface PairRecord {
  /** Row id in the state database; absent for a new pair. */
  id?: number;
  aUid: number | null;
  bUid: number | null;
  /** Last synced flags (L). */
  flags: string[];
  messageId?: string | null;
  size: number;
  hash?: string | null;
  /** The a-side UID predates a UIDVALIDITY change: the message is found again by identity. */
  aStale?: boolean;
  bStale?: boolean;
}

/** A copy recorded as intended but not confirmed: it may or may not have reached the target. */
export interface Intent {
  id: number;
  from: Side;
  srcUid: number;
  messageId: string | null;
  size: number;
  hash: string;
  flags: string[];
  /** The target's UIDNEXT before the copy: a landed copy has a UID at least this. */
  targetMinUid: number;
}

/** Options of a plan. */
export interface PlanOptions {
  /** 'both' syncs both ways; 'a-to-b' only pushes a's messages and changes to b. */
  direction: 'both' | 'a-to-b';
  /** Only copy new messages a → b: no flags, no deletions (forward). */
  appendOnly?: boolean;
  /** What to do on each side when the message was deleted on the other side. */
  deletions: { a: DeletePolicy; b: DeletePolicy };
  /** Whether a side stores arbitrary keywords (default true); keywords never sync to a side that cannot keep them. */
  keywords?: { a: boolean; b: boolean };
}

/** The input of plan(). */
export interface PlanInput {
  /** Current messages of side a (full snapshot, ascending UIDs). */
  a: MessageEntry[];
  b: MessageEntry[];
  pairs: PairRecord[];
  intents?: Intent[];
  options: PlanOptions;
}

/** A flag delta for one side. */
export interface FlagDelta {
  add: string[];
  remove: string[];
}

/** One step; the applier runs them and records the results. */
export type Action =
  /** Bring flags of the pair's messages to the delta given (if any), then store the record. */
  | { kind: 'link'; record: PairRecord; a?: FlagDelta; b?: FlagDelta; reason: 'flags' | 'match' | 'rematch' | 'intent' | 'tombstone'; intentId?: number }
  /** Remove a message from a side (if given), then forget the pair record (if it has an id) and the intent (if given). */
  | { kind: 'drop'; id?: number; remove?: { side: Side; uid: number; mode: 'trash' | 'expunge' }; reason: 'deleted' | 'gone' | 'lost'; intentId?: number }
  /** Copy a message from one side to the other with these flags, then record the pair. */
  | { kind: 'copy'; from: Side; uid: number; flags: string[]; size: number; messageId?: string | null }
  /** An intent whose copy is not on the target: forget it (the message is copied again if still new). */
  | { kind: 'intent-done'; id: number };

/** The output of plan(). When needIdentity or needHash is set, the caller fills them in and plans again. */
export interface Plan {
  actions: Action[];
  /** Messages left unpaired on purpose (b's own messages in a one-way sync): the pair is then not "clean". */
  leftUnpaired?: { a: number; b: number };
  /** UIDs whose Message-ID is needed (messageId undefined). */
  needIdentity?: { a: number[]; b: number[] };
  /** UIDs whose hash is needed. */
  needHash?: { a: number[]; b: number[] };
}

const other = (s: Side): Side => (s === 'a' ? 'b' : 'a');

/** Identity key of a message: Message-ID + size, or the hash; null when neither is known. */
export function identityKey(m: { messageId?: string | null; size: number; hash?: string | null }): string | null {
  if (m.messageId) return `m:${m.messageId}\u0000${m.size}`;
  if (m.hash) return `h:${m.hash}`;
  return null;
}

function isKeyword(f: string): boolean {
  return !f.startsWith('\\');
}

/** The merge rule R = (A ∩ B) ∪ (A \ L) ∪ (B \ L), over canonical flag strings. */
export function mergeFlags(a: readonly string[], b: readonly string[], last: readonly string[]): string[] {
  const A = new Set(a);
  const B = new Set(b);
  const L = new Set(last);
  const r = new Set<string>();
  for (const f of A) if (B.has(f) || !L.has(f)) r.add(f);
  for (const f of B) if (!L.has(f)) r.add(f);
  return [...r].sort();
}

/** The delta that turns `from` into `to`; undefined when they are equal. */
export function flagDelta(from: readonly string[], to: readonly string[]): FlagDelta | undefined {
  const F = new Set(from);
  const T = new Set(to);
  const add = [...T].filter((f) => !F.has(f)).sort();
  const remove = [...F].filter((f) => !T.has(f)).sort();
  return add.length || remove.length ? { add, remove } : undefined;
}

/** Flags as a side can hold them: without keywords when it cannot store keywords. */
function storable(flags: readonly string[], keywords: boolean): string[] {
  return keywords ? [...flags].sort() : flags.filter((f) => !isKeyword(f)).sort();
}

/**
 * A side's flags for the merge: a side that cannot store keywords is taken to have L's keywords
 * unchanged, so it never removes a keyword set on the other side.
 */
function effective(flags: readonly string[], last: readonly string[], keywords: boolean): string[] {
  if (keywords) return [...flags];
  return [...flags.filter((f) => !isKeyword(f)), ...last.filter(isKeyword)];
}

/** Plan one folder pair. Pure: the same input always gives the same output. */
export function plan(input: PlanInput): Plan {
  const opts = input.options;
  const kw = opts.keywords ?? { a: true, b: true };
  const byUid: Record<Side, Map<number, MessageEntry>> = {
    a: new Map(input.a.map((m) => [m.uid, m])),
    b: new Map(input.b.map((m) => [m.uid, m])),
  };
  const used: Record<Side, Set<number>> = { a: new Set(), b: new Set() };
  const actions: Action[] = [];
  const twoWay = opts.direction === 'both';

  // 1. Re-match stale UIDs (the side's UIDVALIDITY changed), by identity.
  const pairs: WorkPair[] = input.pairs.map((p) => ({ ...p }));
  const rematched = new Set<PairRecord>();
  const needHash: Record<Side, Set<number>> = { a: new Set(), b: new Set() };
  for (const side of ['a', 'b'] as const) {
    const key = side === 'a' ? 'aUid' : 'bUid';
    const staleKey = side === 'a' ? 'aStale' : 'bStale';
    const stale = pairs.filter((p) => p[staleKey] === true && p[key] !== null);
    if (stale.length === 0) continue;
    // Entries of this side by identity; entries lacking what identifies them are asked for.
    const pool = new Map<string, number[]>();
    const lackId: number[] = [];
    for (const m of byUid[side].values()) {
      if (m.messageId === undefined) {
        lackId.push(m.uid);
        continue;
      }
      if (m.messageId === null && !m.hash) {
        needHash[side].add(m.uid);
        continue;
      }
      const k = identityKey(m)!;
      const list = pool.get(k);
      if (list) list.push(m.uid);
      else pool.set(k, [m.uid]);
    }
    if (lackId.length > 0) return { actions: [], needIdentity: side === 'a' ? { a: lackId, b: [] } : { a: [], b: lackId } };
    // Records without a Message-ID are found by hash: ask the other side for it when the record lacks it.
    for (const p of stale) {
      if (!p.messageId && !p.hash) {
        const otherUid = side === 'a' ? p.bUid : p.aUid;
        const om = otherUid === null ? undefined : byUid[other(side)].get(otherUid);
        if (om?.hash) p.hash = om.hash;
        else if (om) needHash[other(side)].add(om.uid);
      }
    }
    if (needHash.a.size || needHash.b.size) return { actions: [], needHash: { a: [...needHash.a].sort((x, y) => x - y), b: [...needHash.b].sort((x, y) => x - y) } };
    for (const p of stale) {
      const k = identityKey(p);
      const list = k === null ? undefined : pool.get(k);
      const uid = list?.shift();
      delete p[staleKey];
      if (uid === undefined) {
        // Not found again: forget the pair. A message still on the other side becomes unpaired and
        // is copied back, so nothing is lost (at worst a deleted message comes back once).
        p[key] = null;
        p.lost = true;
      } else {
        p[key] = uid;
        rematched.add(p);
      }
    }
  }

  // 2. Pending intents: a copy that may have landed is looked for among the target's new messages
  // (Message-ID, then size, then hash). A copy found becomes a pair like any other.
  for (const p of pairs) {
    if (p.lost) continue;
    if (p.aUid !== null && byUid.a.has(p.aUid)) used.a.add(p.aUid);
    if (p.bUid !== null && byUid.b.has(p.bUid)) used.b.add(p.bUid);
  }
  const unpaired = (side: Side) => [...byUid[side].values()].filter((m) => !used[side].has(m.uid));
  const fromIntents: WorkPair[] = [];
  const intents = input.intents ?? [];
  if (intents.length > 0) {
    const want: Record<Side, number[]> = { a: [], b: [] };
    const hashWant: Record<Side, number[]> = { a: [], b: [] };
    for (const it of intents) {
      const target = other(it.from);
      for (const m of unpaired(target)) {
        if (m.uid < it.targetMinUid || m.size !== it.size) continue;
        if (m.messageId === undefined) want[target].push(m.uid);
        else if (!it.messageId && m.messageId === null && !m.hash) hashWant[target].push(m.uid);
      }
    }
    if (want.a.length || want.b.length) return { actions: [], needIdentity: { a: uniq(want.a), b: uniq(want.b) } };
    if (hashWant.a.length || hashWant.b.length) return { actions: [], needHash: { a: uniq(hashWant.a), b: uniq(hashWant.b) } };
    for (const it of intents) {
      const target = other(it.from);
      const found = used[it.from].has(it.srcUid)
        ? undefined
        : unpaired(target).find((m) => m.uid >= it.targetMinUid && m.size === it.size && (it.messageId ? m.messageId === it.messageId : m.hash === it.hash));
      if (!found) {
        actions.push({ kind: 'intent-done', id: it.id });
        continue;
      }
      used[target].add(found.uid);
      if (byUid[it.from].has(it.srcUid)) used[it.from].add(it.srcUid);
      // Linked with the flags it was copied with as L; a source gone meanwhile is a deletion like any other.
      fromIntents.push({
        aUid: it.from === 'a' ? it.srcUid : found.uid,
        bUid: it.from === 'a' ? found.uid : it.srcUid,
        flags: [...it.flags].sort(),
        messageId: it.messageId,
        size: it.size,
        hash: it.hash,
        fromIntent: it.id,
      });
    }
  }

  // 3. Existing pairs: flag merges, deletions, tombstones.
  for (const p of [...pairs, ...fromIntents]) {
    const lost = p.lost === true;
    const viaIntent = p.fromIntent !== undefined;
    // A landed copy's intent is forgotten in the same step as its pair is recorded (or its message removed).
    const mark = <T extends Action>(a: T): T => (viaIntent ? { ...a, intentId: p.fromIntent } : a);
    const ma = p.aUid === null ? undefined : byUid.a.get(p.aUid);
    const mb = p.bUid === null ? undefined : byUid.b.get(p.bUid);
    if (lost) {
      // A pair that lost its side in a re-match is forgotten; its surviving message counts as new.
      actions.push({ kind: 'drop', id: p.id, reason: 'lost' });
      continue;
    }
    if (opts.appendOnly) {
      // Forward: a landed copy is recorded, nothing else is touched.
      if (viaIntent) actions.push(mark({ kind: 'link', record: plain(p), reason: 'intent' }));
      continue;
    }
    if (p.aUid !== null && p.bUid !== null) {
      if (ma && mb) {
        const last = rematched.has(p) ? [] : p.flags;
        planFlags(p, ma, mb, last, rematched.has(p) ? 'rematch' : viaIntent ? 'intent' : 'flags');
      } else if (!ma && !mb) {
        actions.push(mark({ kind: 'drop', id: p.id, reason: 'gone' }));
      } else {
        // Deleted on one side: the other side follows its policy.
        const deletedOn: Side = ma ? 'b' : 'a';
        const keptOn = other(deletedOn);
        const keptUid = (keptOn === 'a' ? p.aUid : p.bUid)!;
        const policy = deletedOn === 'b' && opts.direction === 'a-to-b' ? 'never' : opts.deletions[keptOn];
        if (policy === 'never') {
          const rec: PairRecord = { ...plain(p), [deletedOn === 'a' ? 'aUid' : 'bUid']: null };
          actions.push(mark({ kind: 'link', record: rec, reason: 'tombstone' }));
        } else {
          actions.push(mark({ kind: 'drop', id: p.id, remove: { side: keptOn, uid: keptUid, mode: policy }, reason: 'deleted' }));
        }
      }
    } else {
      // A tombstone: the message lives on one side only, by policy. Forget it once that side lost it too.
      const live = p.aUid !== null ? ma : mb;
      if (!live) actions.push({ kind: 'drop', id: p.id, reason: 'gone' });
    }
  }
  if (opts.appendOnly) {
    // Forward: new messages of a go to b; nothing else is touched.
    for (const m of unpaired('a')) actions.push({ kind: 'copy', from: 'a', uid: m.uid, flags: storable(m.flags, kw.b), size: m.size, messageId: m.messageId });
    return { actions };
  }

  // 4. Unpaired messages on both sides: match by identity before copying, so nothing is doubled.
  let ua = unpaired('a');
  let ub = unpaired('b');
  if (ua.length > 0 && ub.length > 0) {
    const lack = { a: ua.filter((m) => m.messageId === undefined).map((m) => m.uid), b: ub.filter((m) => m.messageId === undefined).map((m) => m.uid) };
    if (lack.a.length || lack.b.length) return { actions: [], needIdentity: lack };
    // Messages without a Message-ID match by hash, asked for only where sizes could match.
    const sizesA = new Set(ua.filter((m) => m.messageId === null).map((m) => m.size));
    const sizesB = new Set(ub.filter((m) => m.messageId === null).map((m) => m.size));
    const hashA = ua.filter((m) => m.messageId === null && !m.hash && sizesB.has(m.size)).map((m) => m.uid);
    const hashB = ub.filter((m) => m.messageId === null && !m.hash && sizesA.has(m.size)).map((m) => m.uid);
    if (hashA.length || hashB.length) return { actions: [], needHash: { a: hashA, b: hashB } };
    const pool = new Map<string, MessageEntry[]>();
    for (const m of ub) {
      const k = identityKey(m);
      if (k === null) continue;
      const list = pool.get(k);
      if (list) list.push(m);
      else pool.set(k, [m]);
    }
    for (const ma of ua) {
      const k = identityKey(ma);
      const mb = k === null ? undefined : pool.get(k)?.shift();
      if (!mb) continue;
      used.a.add(ma.uid);
      used.b.add(mb.uid);
      const rec: PairRecord = { aUid: ma.uid, bUid: mb.uid, flags: [], messageId: ma.messageId ?? null, size: ma.size };
      if (ma.hash) rec.hash = ma.hash;
      planFlags(rec, ma, mb, [], 'match');
    }
    ua = unpaired('a');
    ub = unpaired('b');
  }

  // 5. What is left is new: copy it over.
  for (const m of ua) actions.push({ kind: 'copy', from: 'a', uid: m.uid, flags: storable(m.flags, kw.b), size: m.size, messageId: m.messageId });
  if (twoWay) for (const m of ub) actions.push({ kind: 'copy', from: 'b', uid: m.uid, flags: storable(m.flags, kw.a), size: m.size, messageId: m.messageId });
  return twoWay || ub.length === 0 ? { actions } : { actions, leftUnpaired: { a: 0, b: ub.length } };

  /** Merge (or, one-way, push) flags of a live pair and emit a link when anything changes. */
  function planFlags(p: WorkPair, ma: MessageEntry, mb: MessageEntry, last: readonly string[], reason: 'flags' | 'match' | 'rematch' | 'intent'): void {
    // The common case on every sync of a big folder: nothing changed on either side.
    if (reason === 'flags' && p.id !== undefined && sameSorted(ma.flags, last) && sameSorted(mb.flags, last)) return;
    let result: string[];
    let da: FlagDelta | undefined;
    let db: FlagDelta | undefined;
    const aFlags = effective(ma.flags, last, kw.a);
    const bFlags = effective(mb.flags, last, kw.b);
    if (twoWay) {
      result = mergeFlags(aFlags, bFlags, last);
      da = flagDelta(storable(ma.flags, kw.a), storable(result, kw.a));
      db = flagDelta(storable(mb.flags, kw.b), storable(result, kw.b));
    } else {
      // One way: a's changes since L are applied to b; b's own changes stay on b only.
      const L = new Set(last);
      const A = new Set(aFlags);
      const r = new Set(mb.flags);
      for (const f of A) if (!L.has(f)) r.add(f);
      for (const f of L) if (!A.has(f)) r.delete(f);
      db = flagDelta(storable(mb.flags, kw.b), storable([...r], kw.b));
      result = [...aFlags].sort();
    }
    const changedRecord = p.id === undefined || reason !== 'flags' || flagDelta(p.flags, result) !== undefined;
    if (!da && !db && !changedRecord) return;
    const rec: PairRecord = { ...plain(p), flags: result };
    const act: Action = { kind: 'link', record: rec, reason };
    if (p.fromIntent !== undefined) act.intentId = p.fromIntent;
    if (da) act.a = da;
    if (db) act.b = db;
    actions.push(act);
  }
}

/** Equal flag lists, both sorted (snapshots and records keep them sorted). */
function sameSorted(x: readonly string[], y: readonly string[]): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** A pair while planning: re-matching may lose a side, intents may create one. */
interface WorkPair extends PairRecord {
  lost?: boolean;
  /** The id of the intent whose landed copy this pair records. */
  fromIntent?: number;
}

/** The record without planning marks. */
function plain(p: WorkPair): PairRecord {
  const { lost: _l, fromIntent: _f, ...rec } = p;
  return rec;
}

function uniq(xs: number[]): number[] {
  return [...new Set(xs)].sort((x, y) => x - y);
}

/** Counts of a plan by kind, for summaries and dry runs. */
export function planSummary(p: Plan): { copyAtoB: number; copyBtoA: number; flagsA: number; flagsB: number; removeA: number; removeB: number; records: number; forgets: number } {
  const s = { copyAtoB: 0, copyBtoA: 0, flagsA: 0, flagsB: 0, removeA: 0, removeB: 0, records: 0, forgets: 0 };
  for (const a of p.actions) {
    if (a.kind === 'copy') {
      if (a.from === 'a') s.copyAtoB++;
      else s.copyBtoA++;
    } else if (a.kind === 'link') {
      s.records++;
      if (a.a) s.flagsA++;
      if (a.b) s.flagsB++;
    } else if (a.kind === 'drop') {
      s.forgets++;
      if (a.remove?.side === 'a') s.removeA++;
      if (a.remove?.side === 'b') s.removeB++;
    }
  }
  return s;
}
