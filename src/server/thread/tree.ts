/**
 * Thread trees shared by THREAD=REFERENCES and THREAD=ORDEREDSUBJECT (RFC 5256): the input each
 * message contributes, the container type, the sent-date ordering, and the response format
 * `(2)(3 6 (4 23)(44 7 96))`. Traversals use explicit stacks so a long reply chain cannot
 * overflow the call stack.
 */

/** What threading needs of one message. */
export interface ThreadMessage {
  /** The number reported: UID or sequence number. */
  id: number;
  /** Sequence number, the final tie-break (RFC 5256 2.2). */
  seq: number;
  /** Sent date in ms (Date header, else INTERNALDATE: RFC 5256 2.2). */
  date: number;
  /** Base subject (RFC 5256 2.1), compared case-insensitively. */
  baseSubject: string;
  /** The subject carried a reply/forward marker (Re:, Fwd:, [fwd: ...], (fwd)). */
  isReply: boolean;
  /** Message-ID without angle brackets significance: compared as given; null when absent or invalid. */
  messageId: string | null;
  /** References message ids, oldest first. */
  references: string[];
  /** In-Reply-To message ids. */
  inReplyTo: string[];
}

/** A node of a thread tree; `msg` undefined for a dummy (a message referred to but not present). */
export class Container {
  msg: ThreadMessage | undefined;
  parent: Container | undefined;
  children: Container[] = [];

  constructor(msg?: ThreadMessage) {
    this.msg = msg;
  }
}

/** The message a container sorts and groups by: its own, or a dummy's first child's. */
export function representative(c: Container): ThreadMessage | undefined {
  let cur: Container | undefined = c;
  while (cur && !cur.msg) cur = cur.children[0];
  return cur?.msg;
}

/** Orders by sent date, then sequence number (RFC 5256 2.2); dummies by their first child. */
export function compareByDate(a: Container, b: Container): number {
  const ma = representative(a);
  const mb = representative(b);
  if (!ma || !mb) return ma ? -1 : mb ? 1 : 0;
  if (ma.date !== mb.date) return ma.date < mb.date ? -1 : 1;
  return ma.seq - mb.seq;
}

/** Every container under the given roots, children before their parents (post-order). */
export function postOrder(roots: readonly Container[]): Container[] {
  const out: Container[] = [];
  const stack: Array<{ c: Container; i: number }> = roots.map((c) => ({ c, i: 0 })).reverse();
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.i < top.c.children.length) {
      stack.push({ c: top.c.children[top.i++], i: 0 });
    } else {
      stack.pop();
      out.push(top.c);
    }
  }
  return out;
}

/** The comparison key for subjects: i;ascii-casemap (RFC 5256 uses it for grouping and SORT). */
export function subjectKey(s: string): string {
  return s.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

/**
 * Formats threads as RFC 5256 thread-lists: a node with one child continues the same list,
 * a node with several children nests each child in its own parentheses, a dummy shows only its
 * children. Example: `(3 6 (4 23)(44 7 96))`, `((3)(5))`.
 */
export function formatThreads(roots: readonly Container[]): string {
  const tokens: Array<number | '(' | ')'> = [];
  // Work items: a container to write as a chain, or a token to emit.
  const stack: Array<Container | '(' | ')'> = [];
  for (let i = roots.length - 1; i >= 0; i--) stack.push(')', roots[i], '(');
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (item === '(' || item === ')') {
      tokens.push(item);
      continue;
    }
    // Walk the single-child chain, then nest the children of its last node.
    let node = item;
    for (;;) {
      if (node.msg) tokens.push(node.msg.id);
      if (node.children.length === 1) {
        node = node.children[0];
        continue;
      }
      for (let i = node.children.length - 1; i >= 0; i--) stack.push(')', node.children[i], '(');
      break;
    }
  }
  let out = '';
  let prev: number | '(' | ')' | undefined;
  for (const t of tokens) {
    if (prev !== undefined && typeof prev === 'number' && (typeof t === 'number' || t === '(')) out += ' ';
    out += String(t);
    prev = t;
  }
  return out;
}
