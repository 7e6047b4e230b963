/**
 * Properties of the planner, checked on a model of two sides and the state database
 * (test/sync/plan-model.ts): after random changes on both sides, syncs that crash at random
 * steps and one sync that completes, the sides converge, nothing is lost or held twice,
 * deletions follow the policy, flags follow the merge rule, and planning again gives nothing to do.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mergeFlags, plan, type DeletePolicy, type PlanOptions } from '../../src/sync/plan.js';
import { addMessage, contents, newWorld, renumber, runSync, POLICIES, type Content, type World } from './plan-model.js';

const FLAGS = ['\\Seen', '\\Flagged', '\\Answered', '$Label1', '$Label2'];

function content(i: number): Content {
  // Some messages share a Message-ID (different sizes), some have none and share sizes: identity needs the hash.
  const hasMid = i % 5 !== 3;
  return { key: i, messageId: hasMid ? `<${i % 12}@test>` : null, size: hasMid ? 1000 + i : 100 + (i % 3), hash: `h${i}` };
}

type Op =
  | { op: 'add'; side: 'a' | 'b'; c: number; flags: string[] }
  | { op: 'addBoth'; c: number; fa: string[]; fb: string[] }
  | { op: 'del'; side: 'a' | 'b'; pick: number }
  | { op: 'flag'; side: 'a' | 'b'; pick: number; flag: string; on: boolean }
  | { op: 'renumber'; side: 'a' | 'b'; keepFlags: boolean }
  | { op: 'sync'; crashAfter: number | null };

const sideArb = fc.constantFrom<'a' | 'b'>('a', 'b');
const flagsArb = fc.subarray(FLAGS);
const opArb = (withRenumber: boolean): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant('add' as const), side: sideArb, c: fc.nat(40), flags: flagsArb }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('addBoth' as const), c: fc.nat(40), fa: flagsArb, fb: flagsArb }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('del' as const), side: sideArb, pick: fc.nat() }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('flag' as const), side: sideArb, pick: fc.nat(), flag: fc.constantFrom(...FLAGS), on: fc.boolean() }) },
    { weight: withRenumber ? 1 : 0, arbitrary: fc.record({ op: fc.constant('renumber' as const), side: sideArb, keepFlags: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('sync' as const), crashAfter: fc.option(fc.nat(25), { nil: null }) }) },
  );

interface Tracking {
  added: Set<number>;
  /** Deleted by the user while the state knew the message's pair: the deletion must win (no renumbering). */
  deletedKnown: Set<number>;
  deleted: Set<number>;
  renumbered: boolean;
}

function runOps(w: World, ops: Op[], options: PlanOptions): Tracking {
  const t: Tracking = { added: new Set(), deletedKnown: new Set(), deleted: new Set(), renumbered: false };
  const pick = (side: 'a' | 'b', n: number) => {
    const uids = [...w[side].msgs.keys()].sort((x, y) => x - y);
    return uids.length ? uids[n % uids.length] : undefined;
  };
  for (const op of ops) {
    switch (op.op) {
      case 'add':
        if (t.added.has(op.c)) break;
        t.added.add(op.c);
        addMessage(w[op.side], content(op.c), op.flags);
        break;
      case 'addBoth':
        if (t.added.has(op.c)) break;
        t.added.add(op.c);
        addMessage(w.a, content(op.c), op.fa);
        addMessage(w.b, content(op.c), op.fb);
        break;
      case 'del': {
        const uid = pick(op.side, op.pick);
        if (uid === undefined) break;
        const key = w[op.side].msgs.get(uid)!.c.key;
        const field = op.side === 'a' ? 'aUid' : 'bUid';
        const known = [...w.state.pairs.values()].some((p) => p[field] === uid && p.aUid !== null && p.bUid !== null);
        w[op.side].msgs.delete(uid);
        t.deleted.add(key);
        if (known) t.deletedKnown.add(key);
        break;
      }
      case 'flag': {
        const uid = pick(op.side, op.pick);
        if (uid === undefined) break;
        const m = w[op.side].msgs.get(uid)!;
        if (op.on) m.flags.add(op.flag);
        else m.flags.delete(op.flag);
        break;
      }
      case 'renumber':
        t.renumbered = true;
        renumber(w[op.side], op.keepFlags);
        break;
      case 'sync':
        runSync(w, options, op.crashAfter ?? Infinity);
        break;
    }
  }
  return t;
}

function count(keys: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

/** Plan once more: there must be nothing left to do. */
function expectIdle(w: World, options: PlanOptions): void {
  const again = runSync(w, options);
  expect(again.actions).toEqual([]);
}

const policyArb = fc.constantFrom<DeletePolicy>(...POLICIES);

describe('plan: two-way sync on a model', () => {
  it('converges, loses nothing, doubles nothing, honours deletions, and is idempotent', () => {
    fc.assert(
      fc.property(fc.array(opArb(true), { maxLength: 40 }), policyArb, policyArb, (ops, pa, pb) => {
        const w = newWorld();
        const options = { direction: 'both' as const, deletions: { a: pa, b: pb } };
        const t = runOps(w, ops, options);
        const r = runSync(w, options);
        expect(r.crashed).toBe(false);
        const ca = count(contents(w.a));
        const cb = count(contents(w.b));
        // Nothing twice on a side.
        for (const n of [...ca.values(), ...cb.values()]) expect(n).toBe(1);
        // Nothing lost: every message never deleted by the user is on both sides.
        for (const k of t.added) {
          if (t.deleted.has(k)) continue;
          expect(ca.has(k), `message ${k} on a`).toBe(true);
          expect(cb.has(k), `message ${k} on b`).toBe(true);
        }
        // Converged: what one side has and the other lacks is a tombstone of the 'never' policy.
        const tombA = new Set([...w.state.pairs.values()].filter((p) => p.bUid === null && p.aUid !== null).map((p) => w.a.msgs.get(p.aUid!)?.c.key));
        const tombB = new Set([...w.state.pairs.values()].filter((p) => p.aUid === null && p.bUid !== null).map((p) => w.b.msgs.get(p.bUid!)?.c.key));
        for (const k of ca.keys()) if (!cb.has(k)) expect(tombA.has(k) && pa === 'never').toBe(true);
        for (const k of cb.keys()) if (!ca.has(k)) expect(tombB.has(k) && pb === 'never').toBe(true);
        // Deletions of known pairs win where the other side's policy removes (no UIDVALIDITY change).
        if (!t.renumbered) {
          for (const k of t.deletedKnown) {
            if (pa !== 'never' && pb !== 'never') {
              expect(ca.has(k), `deleted ${k} still on a`).toBe(false);
              expect(cb.has(k), `deleted ${k} still on b`).toBe(false);
            }
          }
        }
        // Flags agree on every live pair.
        for (const p of w.state.pairs.values()) {
          if (p.aUid === null || p.bUid === null) continue;
          const ma = w.a.msgs.get(p.aUid);
          const mb = w.b.msgs.get(p.bUid);
          expect(ma?.c.key).toBe(mb?.c.key);
          expect([...ma!.flags].sort()).toEqual([...mb!.flags].sort());
          expect([...ma!.flags].sort()).toEqual(p.flags);
        }
        expectIdle(w, options);
      }),
      { numRuns: 400 },
    );
  });

  it('moves deleted messages to trash under the trash policy', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(30), { minLength: 1, maxLength: 10 }), fc.nat(), (keys, pickIdx) => {
        const w = newWorld();
        const options = { direction: 'both' as const, deletions: { a: 'trash' as const, b: 'trash' as const } };
        const uniqKeys = [...new Set(keys)];
        for (const k of uniqKeys) addMessage(w.a, content(k), []);
        runSync(w, options);
        const uids = [...w.b.msgs.keys()];
        const uid = uids[pickIdx % uids.length]!;
        const key = w.b.msgs.get(uid)!.c.key;
        w.b.msgs.delete(uid);
        runSync(w, options);
        expect(w.a.trash.map((c) => c.key)).toEqual([key]);
        expect(contents(w.a)).toEqual(contents(w.b));
        expect(contents(w.a)).not.toContain(key);
      }),
      { numRuns: 100 },
    );
  });
});

describe('plan: one-way modes', () => {
  it('a-to-b: every message of a reaches b once; b keeps its own; b deletions are respected', () => {
    fc.assert(
      fc.property(fc.array(opArb(false), { maxLength: 40 }), policyArb, (ops, pb) => {
        const w = newWorld();
        const options = { direction: 'a-to-b' as const, deletions: { a: 'never' as const, b: pb } };
        const t = runOps(w, ops, options);
        runSync(w, options);
        const ca = count(contents(w.a));
        const cb = count(contents(w.b));
        for (const n of cb.values()) expect(n).toBe(1);
        for (const k of ca.keys()) {
          const deletedOnB = t.deleted.has(k);
          if (!deletedOnB) expect(cb.has(k), `message ${k} of a on b`).toBe(true);
        }
        expectIdle(w, options);
      }),
      { numRuns: 300 },
    );
  });

  it('append-only: each new message of a is appended to b exactly once, whatever crashes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ add: fc.nat(40), flags: flagsArb }), fc.record({ sync: fc.option(fc.nat(12), { nil: null }) }), fc.record({ delA: fc.nat() })), { maxLength: 40 }),
        (ops) => {
          const w = newWorld();
          const options = { direction: 'a-to-b' as const, appendOnly: true, deletions: { a: 'never' as const, b: 'never' as const } };
          const seenByA = new Set<number>();
          const synced = new Set<number>();
          const added = new Set<number>();
          for (const op of ops) {
            if ('add' in op) {
              if (added.has(op.add)) continue;
              added.add(op.add);
              addMessage(w.a, content(op.add), op.flags);
            } else if ('delA' in op) {
              const uids = [...w.a.msgs.keys()];
              if (!uids.length) continue;
              const uid = uids[op.delA % uids.length]!;
              // Only messages a sync has already forwarded are deleted (like a source's "delete after forward").
              if (!synced.has(w.a.msgs.get(uid)!.c.key)) continue;
              w.a.msgs.delete(uid);
            } else {
              const r = runSync(w, options, op.sync ?? Infinity);
              if (!r.crashed) for (const m of w.a.msgs.values()) synced.add(m.c.key);
            }
            for (const m of w.a.msgs.values()) seenByA.add(m.c.key);
          }
          runSync(w, options);
          for (const m of w.a.msgs.values()) synced.add(m.c.key);
          const cb = count(contents(w.b));
          for (const n of cb.values()) expect(n).toBe(1);
          for (const k of synced) expect(cb.has(k), `forwarded ${k}`).toBe(true);
          // b gets flags only at append time: nothing but copies happened on b.
          expect(w.b.trash).toEqual([]);
          expectIdle(w, options);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('plan: flag merge rule', () => {
  it('R = (A ∩ B) ∪ (A \\ L) ∪ (B \\ L): additions win, a removal beats "unchanged"', () => {
    expect(mergeFlags(['\\Seen', '\\Flagged'], ['\\Seen'], ['\\Seen'])).toEqual(['\\Flagged', '\\Seen']);
    expect(mergeFlags([], ['\\Seen'], ['\\Seen'])).toEqual([]);
    expect(mergeFlags(['\\Seen'], [], [])).toEqual(['\\Seen']);
    // Conflict: a removed \Seen, b added \Flagged: both changes win.
    expect(mergeFlags(['$x'], ['\\Seen', '$x', '\\Flagged'], ['\\Seen', '$x'])).toEqual(['$x', '\\Flagged']);
  });

  it('is symmetric, keeps unchanged flags, and equals a side when the other is unchanged', () => {
    const set = fc.subarray(FLAGS);
    fc.assert(
      fc.property(set, set, set, (a, b, l) => {
        const r = mergeFlags(a, b, l);
        expect(r).toEqual(mergeFlags(b, a, l));
        for (const f of FLAGS) {
          const inA = a.includes(f);
          const inB = b.includes(f);
          const inL = l.includes(f);
          if (inA && inB) expect(r).toContain(f);
          if (!inA && !inB) expect(r).not.toContain(f);
          if (inA !== inB && !inL) expect(r).toContain(f);
          if (inA !== inB && inL) expect(r).not.toContain(f);
        }
        if ([...a].sort().join() === [...l].sort().join()) expect(r).toEqual([...b].sort());
      }),
    );
  });

  it('never removes a keyword from a side because the other side cannot store keywords', () => {
    const p = plan({
      a: [{ uid: 1, flags: ['\\Seen'], size: 10 }],
      b: [{ uid: 7, flags: ['\\Seen', '$Work'], size: 10 }],
      pairs: [{ id: 1, aUid: 1, bUid: 7, flags: ['\\Seen', '$Work'], size: 10 }],
      options: { direction: 'both', deletions: { a: 'expunge', b: 'expunge' }, keywords: { a: false, b: true } },
    });
    expect(p.actions).toEqual([]);
  });

  it('asks for Message-IDs only when both sides have unpaired messages', () => {
    const opts = { direction: 'both' as const, deletions: { a: 'expunge' as const, b: 'expunge' as const } };
    const first = plan({ a: [{ uid: 1, flags: [], size: 5 }], b: [], pairs: [], options: opts });
    expect(first.needIdentity).toBeUndefined();
    expect(first.actions).toEqual([{ kind: 'copy', from: 'a', uid: 1, flags: [], size: 5, messageId: undefined }]);
    const both = plan({ a: [{ uid: 1, flags: [], size: 5 }], b: [{ uid: 3, flags: [], size: 5 }], pairs: [], options: opts });
    expect(both.needIdentity).toEqual({ a: [1], b: [3] });
  });
});
