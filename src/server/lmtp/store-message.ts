/**
 * Store one message for one recipient through the MailStore contract and turn the outcome into
 * that recipient's LMTP reply. A 250 is only given once append() resolved, which the contract
 * makes durable; anything that may pass (locks, I/O, a full disk) is a 4xx so the MTA retries,
 * a full mailbox included, and only what will never work (too big, no such mailbox owner) is a 5xx, as in
 * `imapkit deliver`.
 */
import { StoreError, type MailStore } from '../../store/contract.js';
import type { Recipient } from './recipients.js';
import { recentKey, recentTracker } from '../recent.js';

/** Result of storing for one recipient. */
export interface StoreOutcome {
  /** The reply line (no CRLF). */
  reply: string;
  /** The folder it went to, when stored. */
  mailbox?: string;
  /** What went wrong (for the log), when not stored. */
  error?: string;
}

/** The folder named by the detail when the user has one (INBOX in any case counts), else INBOX. */
async function targetMailbox(names: () => Promise<Array<{ name: string }>>, detail: string | undefined): Promise<string> {
  if (detail === undefined) return 'INBOX';
  if (detail.toUpperCase() === 'INBOX') return 'INBOX';
  const list = await names();
  return list.some((m) => m.name === detail) ? detail : 'INBOX';
}

/** Store `data` (trace headers already on it) for `rcpt`; never throws. */
export async function storeForRecipient(store: MailStore, rcpt: Recipient, data: Buffer): Promise<StoreOutcome> {
  const who = `<${rcpt.address}>`;
  try {
    let u;
    try {
      u = await store.openUser(rcpt.user);
    } catch (err) {
      // As deliver: a user whose mail cannot exist at all (a bad name for the store) is not retried.
      if (err instanceof StoreError && err.code === 'CANNOT') return { reply: `550 5.1.1 ${who} No mailbox for this user`, error: err.message };
      throw err;
    }
    try {
      let mailbox = await targetMailbox(() => u.listMailboxes(), rcpt.detail);
      let mapping;
      try {
        mapping = await u.append(mailbox, [{ data }]);
      } catch (err) {
        // The folder went away between the look-up and the append: INBOX, as dovecot-lmtp does.
        if (mailbox === 'INBOX' || !(err instanceof StoreError) || !['NONEXISTENT', 'CANNOT'].includes(err.code)) throw err;
        mailbox = 'INBOX';
        mapping = await u.append(mailbox, [{ data }]);
      }
      // New mail for \Recent: the next IMAP SELECT of the folder in this process takes it.
      if (mapping.destUids.length > 0) recentTracker.arrived(recentKey(rcpt.user, mailbox, mapping.uidValidity), mapping.destUids[0]!);
      return { reply: `250 2.0.0 ${who} Saved`, mailbox };
    } finally {
      await u.close();
    }
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof StoreError) {
      // A full mailbox may empty: the MTA keeps the mail and retries, as `imapkit deliver` exits 75 (no mail is lost).
      if (err.code === 'OVERQUOTA') return { reply: `452 4.2.2 ${who} Mailbox is full, try again later`, error: `${err.code}: ${message}` };
      if (err.code === 'TOOBIG') return { reply: `552 5.3.4 ${who} Message too big`, error: `${err.code}: ${message}` };
      return { reply: `451 4.3.0 ${who} Temporary failure, try again later`, error: `${err.code}: ${message}` };
    }
    return { reply: `451 4.3.0 ${who} Temporary failure, try again later`, error: message };
  }
}
