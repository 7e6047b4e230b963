/**
 * THREAD=ORDEREDSUBJECT (RFC 5256 3): sort by base subject then sent date, split into threads of
 * equal base subject, make every later message a child of the first, and order the threads by the
 * sent date of their first message.
 */
import { compareByDate, Container, subjectKey, type ThreadMessage } from './tree.js';

/** Builds the ORDEREDSUBJECT thread forest; messages are given in sequence order. */
export function threadByOrderedSubject(messages: readonly ThreadMessage[]): Container[] {
  const groups = new Map<string, Container[]>();
  for (const msg of messages) {
    const key = subjectKey(msg.baseSubject);
    let g = groups.get(key);
    if (!g) {
      g = [];
      groups.set(key, g);
    }
    g.push(new Container(msg));
  }
  const roots: Container[] = [];
  for (const g of groups.values()) {
    g.sort(compareByDate);
    const root = g[0];
    for (let i = 1; i < g.length; i++) {
      g[i].parent = root;
      root.children.push(g[i]);
    }
    roots.push(root);
  }
  roots.sort(compareByDate);
  return roots;
}
