/**
 * THREAD=REFERENCES (RFC 5256 3, after Jamie Zawinski's algorithm): link messages by Message-ID,
 * References and In-Reply-To, prune dummies, sort by sent date, gather roots with the same base
 * subject, and sort every sibling set by sent date.
 */
import { compareByDate, Container, postOrder, representative, subjectKey, type ThreadMessage } from './tree.js';

/** True when `a` is `b` or an ancestor of `b` (walking up from b). */
function isAncestorOrSelf(a: Container, b: Container): boolean {
  // A childless container is nobody's ancestor: skips the walk for the usual new message.
  if (a !== b && a.children.length === 0) return false;
  for (let cur: Container | undefined = b; cur; cur = cur.parent) if (cur === a) return true;
  return false;
}

function unlink(c: Container): void {
  const p = c.parent;
  if (!p) return;
  const i = p.children.indexOf(c);
  if (i >= 0) p.children.splice(i, 1);
  c.parent = undefined;
}

function link(parent: Container, child: Container): void {
  child.parent = parent;
  parent.children.push(child);
}

/** Builds the REFERENCES thread forest; messages are given in sequence order. */
export function threadByReferences(messages: readonly ThreadMessage[]): Container[] {
  const byId = new Map<string, Container>();
  const all: Container[] = [];
  const lookup = (id: string): Container => {
    let c = byId.get(id);
    if (!c) {
      c = new Container();
      byId.set(id, c);
      all.push(c);
    }
    return c;
  };

  // Step 1: containers and parent/child links.
  for (const msg of messages) {
    let c: Container;
    const known = msg.messageId !== null ? byId.get(msg.messageId) : undefined;
    if (known && !known.msg) {
      known.msg = msg;
      c = known;
    } else {
      // A missing or duplicate Message-ID gets a container of its own (RFC 5256 3 step 1A).
      c = new Container(msg);
      all.push(c);
      if (msg.messageId !== null && !known) byId.set(msg.messageId, c);
    }
    const refs = msg.references.length > 0 ? msg.references : msg.inReplyTo.slice(0, 1);
    // Step 1B: chain the references, never re-parenting and never making a loop.
    let prev: Container | undefined;
    for (const id of refs) {
      const rc = lookup(id);
      if (prev && rc !== prev && !rc.parent && !isAncestorOrSelf(rc, prev)) link(prev, rc);
      prev = rc;
    }
    // Step 1C: the last reference is this message's parent, replacing any presumed one.
    unlink(c);
    if (prev && prev !== c && !isAncestorOrSelf(c, prev)) link(prev, c);
  }

  // Step 2: the root set.
  let roots = all.filter((c) => !c.parent);

  // Step 4: prune dummies, children first.
  for (const c of postOrder(roots)) c.children = promote(c.children, c, false);
  roots = promote(roots, undefined, true);

  // Step 5: sort the root set by sent date; a dummy sorts by its first child after sorting those.
  for (const r of roots) if (!r.msg) r.children.sort(compareByDate);
  roots.sort(compareByDate);

  // Step 6: gather roots with the same base subject.
  roots = mergeBySubject(roots);

  // Step 7: sort every sibling set under the roots, deepest first.
  for (const c of postOrder(roots)) if (c.children.length > 1) c.children.sort(compareByDate);
  return roots;
}

/**
 * Step 4 on one sibling list: a dummy without children goes, a dummy with children is replaced by
 * them, except at the root where a dummy with several children stays (RFC 5256 3 step 4B).
 */
function promote(list: Container[], parent: Container | undefined, atRoot: boolean): Container[] {
  let changed = false;
  for (const c of list) {
    if (!c.msg && (c.children.length === 0 || !atRoot || c.children.length === 1)) {
      changed = true;
      break;
    }
  }
  if (!changed) return list;
  const out: Container[] = [];
  for (const c of list) {
    if (c.msg || (atRoot && c.children.length > 1)) {
      out.push(c);
      continue;
    }
    for (const child of c.children) {
      child.parent = parent;
      out.push(child);
    }
    c.children = [];
  }
  return out;
}

function isReply(c: Container): boolean {
  return c.msg?.isReply === true;
}

/** Step 6: roots sharing a base subject become one thread. */
function mergeBySubject(roots: Container[]): Container[] {
  const subjectOf = (c: Container): string => subjectKey(representative(c)?.baseSubject ?? '');
  const table = new Map<string, Container>();
  // 6B: prefer a dummy, then a non-reply, as the thread's holder.
  for (const c of roots) {
    const s = subjectOf(c);
    if (s === '') continue;
    const t = table.get(s);
    if (!t) table.set(s, c);
    else if (t.msg && (!c.msg || (isReply(t) && !isReply(c)))) table.set(s, c);
  }
  const out = roots.slice();
  const position = new Map<Container, number>();
  out.forEach((c, i) => position.set(c, i));
  const removed = new Set<Container>();
  // 6C: attach each other root with that subject to the holder. 6B leaves a dummy or a non-reply
  // as holder whenever one exists, so "holder real, this one a dummy" and "holder a reply, this
  // one not" cannot occur; they would fall to the new-dummy case.
  for (const c of roots) {
    if (removed.has(c)) continue;
    const s = subjectOf(c);
    if (s === '') continue;
    const t = table.get(s);
    if (!t || t === c) continue;
    if (!t.msg && !c.msg) {
      for (const child of c.children) link(t, child);
      c.children = [];
      removed.add(c);
    } else if (!t.msg || (c.msg && isReply(c) && !isReply(t))) {
      link(t, c);
      removed.add(c);
    } else {
      // Both replies or neither: siblings under a new dummy that takes the holder's place.
      const d = new Container();
      const i = position.get(t)!;
      out[i] = d;
      position.set(d, i);
      link(d, t);
      link(d, c);
      removed.add(c);
      table.set(s, d);
    }
  }
  return out.filter((c) => !removed.has(c) && !c.parent);
}
