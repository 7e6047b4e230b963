/**
 * A model of two sync sides and the state database, in memory, that executes plans the way the
 * applier does (intent before a copy, record after; flags before their record; removal before the
 * forget) and can stop at any step, as a crash would. The planner's property tests drive it.
 */
import { plan, type Action, type DeletePolicy, type Intent, type PairRecord, type PlanOptions, type Side } from '../../src/sync/plan.js';
import type { MessageEntry } from '../../src/sync/repository.js';

/** Message content: what identifies it across sides. */
export interface Content {
  key: number;
  messageId: string | null;
  size: number;
  hash: string;
}

/** One message on a side. */
export interface Msg {
  c: Content;
  flags: Set<string>;
}

/** One side of a folder pair. */
export interface SideModel {
  uv: number;
  next: number;
  msgs: Map<number, Msg>;
  trash: Content[];
}

/** The state database of one folder pair. */
export interface StateModel {
  pairs: Map<number, PairRecord>;
  nextId: number;
  intents: Intent[];
  nextIntent: number;
  uv: { a?: number; b?: number };
}

/** A world: two sides and their state. */
export interface World {
  a: SideModel;
  b: SideModel;
  state: StateModel;
}

/** An empty world. */
export function newWorld(): World {
  return {
    a: { uv: 1, next: 1, msgs: new Map(), trash: [] },
    b: { uv: 1, next: 1, msgs: new Map(), trash: [] },
    state: { pairs: new Map(), nextId: 1, intents: [], nextIntent: 1, uv: {} },
  };
}

function snapshot(side: SideModel): MessageEntry[] {
  return [...side.msgs.entries()].sort((x, y) => x[0] - y[0]).map(([uid, m]) => ({ uid, flags: [...m.flags].sort(), size: m.c.size }));
}

/** Add a message to a side; returns its UID. */
export function addMessage(side: SideModel, c: Content, flags: Iterable<string>): number {
  const uid = side.next++;
  side.msgs.set(uid, { c, flags: new Set(flags) });
  return uid;
}

/** Give every message of a side a new UID under a new UIDVALIDITY (as a server that lost its index does). */
export function renumber(side: SideModel, keepFlags: boolean): void {
  const old = [...side.msgs.values()];
  side.uv++;
  side.next = 1;
  side.msgs.clear();
  for (const m of old) addMessage(side, m.c, keepFlags ? m.flags : []);
}

/** Result of one sync run. */
export interface RunResult {
  crashed: boolean;
  actions: Action[];
  rounds: number;
}

/**
 * Plan and apply one sync of the pair, as the engine does, stopping after `crashAfter` steps
 * (a step is one side effect: a flag store, a removal, a record write, an append, ...).
 */
export function runSync(w: World, options: PlanOptions, crashAfter = Infinity): RunResult {
  // A UIDVALIDITY change marks that side's UIDs stale and records the new value in one step; intents
  // name UIDs of the old numbering and go too (identity matching of unpaired messages replaces them).
  for (const side of ['a', 'b'] as const) {
    const uv = w[side].uv;
    const known = w.state.uv[side];
    if (known !== undefined && known !== uv) {
      for (const p of w.state.pairs.values()) if ((side === 'a' ? p.aUid : p.bUid) !== null) p[side === 'a' ? 'aStale' : 'bStale'] = true;
      w.state.intents = [];
    }
    w.state.uv[side] = uv;
  }
  const ea = snapshot(w.a);
  const eb = snapshot(w.b);
  const fill = (side: SideModel, entries: MessageEntry[], uids: number[], what: 'id' | 'hash') => {
    for (const uid of uids) {
      const e = entries.find((x) => x.uid === uid);
      const m = side.msgs.get(uid);
      if (!e || !m) throw new Error(`asked for ${what} of unknown uid ${uid}`);
      if (what === 'id') e.messageId = m.c.messageId;
      else e.hash = m.c.hash;
    }
  };
  let p = plan({ a: ea, b: eb, pairs: [...w.state.pairs.values()], intents: w.state.intents, options });
  let rounds = 1;
  while (p.needIdentity || p.needHash) {
    if (rounds > 6) throw new Error('planner keeps asking');
    if (p.needIdentity) {
      if (p.needIdentity.a.length + p.needIdentity.b.length === 0) throw new Error('empty needIdentity');
      fill(w.a, ea, p.needIdentity.a, 'id');
      fill(w.b, eb, p.needIdentity.b, 'id');
    }
    if (p.needHash) {
      if (p.needHash.a.length + p.needHash.b.length === 0) throw new Error('empty needHash');
      fill(w.a, ea, p.needHash.a, 'hash');
      fill(w.b, eb, p.needHash.b, 'hash');
    }
    p = plan({ a: ea, b: eb, pairs: [...w.state.pairs.values()], intents: w.state.intents, options });
    rounds++;
  }
  let steps = 0;
  const step = (): boolean => ++steps > crashAfter;
  const sideOf = (s: Side) => (s === 'a' ? w.a : w.b);
  const applyDelta = (side: SideModel, uid: number | null, d: { add: string[]; remove: string[] } | undefined) => {
    if (!d || uid === null) return;
    const m = side.msgs.get(uid);
    if (!m) return;
    for (const f of d.add) m.flags.add(f);
    for (const f of d.remove) m.flags.delete(f);
  };
  const upsert = (rec: PairRecord) => {
    const id = rec.id ?? w.state.nextId++;
    w.state.pairs.set(id, { ...rec, id });
  };
  for (const act of p.actions) {
    if (act.kind === 'link') {
      if (act.a) {
        if (step()) return { crashed: true, actions: p.actions, rounds };
        applyDelta(w.a, act.record.aUid, act.a);
      }
      if (act.b) {
        if (step()) return { crashed: true, actions: p.actions, rounds };
        applyDelta(w.b, act.record.bUid, act.b);
      }
      if (step()) return { crashed: true, actions: p.actions, rounds };
      upsert(act.record);
      if (act.intentId !== undefined) w.state.intents = w.state.intents.filter((i) => i.id !== act.intentId);
    } else if (act.kind === 'drop') {
      if (act.remove) {
        if (step()) return { crashed: true, actions: p.actions, rounds };
        const side = sideOf(act.remove.side);
        const m = side.msgs.get(act.remove.uid);
        if (m && act.remove.mode === 'trash') side.trash.push(m.c);
        side.msgs.delete(act.remove.uid);
      }
      if (act.id !== undefined || act.intentId !== undefined) {
        if (step()) return { crashed: true, actions: p.actions, rounds };
        if (act.id !== undefined) w.state.pairs.delete(act.id);
        if (act.intentId !== undefined) w.state.intents = w.state.intents.filter((i) => i.id !== act.intentId);
      }
    } else if (act.kind === 'intent-done') {
      if (step()) return { crashed: true, actions: p.actions, rounds };
      w.state.intents = w.state.intents.filter((i) => i.id !== act.id);
    } else {
      const src = sideOf(act.from);
      const dst = sideOf(act.from === 'a' ? 'b' : 'a');
      const m = src.msgs.get(act.uid);
      if (!m) continue;
      if (step()) return { crashed: true, actions: p.actions, rounds };
      const intent: Intent = {
        id: w.state.nextIntent++,
        from: act.from,
        srcUid: act.uid,
        messageId: m.c.messageId,
        size: m.c.size,
        hash: m.c.hash,
        flags: act.flags,
        targetMinUid: dst.next,
      };
      w.state.intents.push(intent);
      if (step()) return { crashed: true, actions: p.actions, rounds };
      const newUid = addMessage(dst, m.c, act.flags);
      if (step()) return { crashed: true, actions: p.actions, rounds };
      upsert({
        aUid: act.from === 'a' ? act.uid : newUid,
        bUid: act.from === 'a' ? newUid : act.uid,
        flags: [...act.flags].sort(),
        messageId: m.c.messageId,
        size: m.c.size,
        hash: m.c.hash,
      });
      w.state.intents = w.state.intents.filter((i) => i.id !== intent.id);
    }
  }
  return { crashed: false, actions: p.actions, rounds };
}

/** Content keys on a side, sorted (a multiset). */
export function contents(side: SideModel): number[] {
  return [...side.msgs.values()].map((m) => m.c.key).sort((x, y) => x - y);
}

/** Policies the tests draw from. */
export const POLICIES: DeletePolicy[] = ['never', 'trash', 'expunge'];
