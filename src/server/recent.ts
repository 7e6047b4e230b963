/**
 * \Recent (RFC 3501 2.3.2), for IMAP4rev1 clients (IMAP4rev2 dropped it): a message is recent in
 * the one session that first selects its mailbox read-write, or already has it selected, after the
 * message arrived; EXAMINE shows it without taking it. The stores do not keep it, so this process
 * keeps, per mailbox, the highest UID a session has taken. A mailbox first met here (at SELECT,
 * EXAMINE or STATUS) starts with nothing recent, unless this process delivered to it before
 * (APPEND, COPY, MOVE, LMTP: arrived()), from its first delivery on; what arrives afterwards is
 * recent once. Bounded, oldest mailboxes forgotten first (they then start over).
 */

/** Mailboxes remembered at most. */
const MAX_MAILBOXES = 100_000;

/** The key of a mailbox: user, name (INBOX in any case is INBOX) and UIDVALIDITY. */
export function recentKey(user: string, mailbox: string, uidValidity: number): string {
  return `${user}\0${/^inbox$/i.test(mailbox) ? 'INBOX' : mailbox}\0${uidValidity}`;
}

/** Highest taken UID per mailbox. */
export class RecentTracker {
  private readonly marks = new Map<string, number>();

  /** UIDs up to the returned one are no longer recent to anyone new; first sight sets it to uidNext - 1. */
  peek(key: string, uidNext: number): number {
    let mark = this.marks.get(key);
    if (mark === undefined) {
      mark = uidNext - 1;
      if (this.marks.size >= MAX_MAILBOXES) this.marks.delete(this.marks.keys().next().value as string);
      this.marks.set(key, mark);
    }
    return mark;
  }

  /** Takes every UID up to `upTo`; returns the mark before, so the caller's recent UIDs are those above it. */
  claim(key: string, upTo: number, uidNext: number): number {
    const before = this.peek(key, uidNext);
    if (upTo > before) this.marks.set(key, upTo);
    return before;
  }

  /** Messages from `firstUid` on were just delivered: a mailbox not met yet starts just below them. */
  arrived(key: string, firstUid: number): void {
    if (!this.marks.has(key)) this.peek(key, firstUid);
  }

  /** Forgets everything (tests). */
  clear(): void {
    this.marks.clear();
  }
}

/** The tracker of this process. */
export const recentTracker = new RecentTracker();
