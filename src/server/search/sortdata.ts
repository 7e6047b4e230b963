/**
 * What SORT and THREAD read from a message (RFC 5256 2.1-2.2, RFC 5957), in one normalised shape.
 * The MIME layer's sortFields() does the header work; this module adds the fallbacks and the
 * string collation.
 */
import { headerValues, sortFields, type MessageIndex } from '../../mime/index.js';
import type { MessageMeta } from '../../store/contract.js';

/** Per-message sort data. */
export interface SortData {
  /** Sent date in ms: the Date header, else INTERNALDATE (RFC 5256 2.2). */
  date: number;
  /** Base subject (RFC 5256 2.1); this and the address fields below are casemapped already. */
  subject: string;
  /** The subject held a reply/forward marker (THREAD=REFERENCES step 6). */
  isReply: boolean;
  /** addr-mailbox of the first From/To/Cc address, "" if none. */
  from: string;
  to: string;
  cc: string;
  /** RFC 5957 display names (falling back to the address). */
  displayFrom: string;
  displayTo: string;
  messageId: string | null;
  inReplyTo: string[];
  references: string[];
}

/** Detects a reply/forward marker the way base-subject extraction strips one (RFC 5256 2.1 steps 2-5). */
export function subjectIsReply(subject: string): boolean {
  const s = subject.trim();
  if (/\(fwd\)\s*$/i.test(s)) return true;
  if (/^\[fwd:/i.test(s)) return true;
  // subj-leader: optional [blobs], then re / fw / fwd, optional [blob], then ':'.
  return /^(?:\[[^[\]]*\]\s*)*(?:re|fwd?)\s*(?:\[[^[\]]*\])?\s*:/i.test(s);
}

/** Reads the sort data of one message. */
export function readSortData(raw: Buffer, index: MessageIndex, meta: MessageMeta): SortData {
  const f = sortFields(raw, index);
  const subject = headerValues(raw, index, 'subject');
  return {
    date: f.date ? f.date.getTime() : meta.internalDate.getTime(),
    subject: casemap(f.baseSubject),
    isReply: subject.length > 0 && subjectIsReply(subject[0]),
    from: casemap(f.from),
    to: casemap(f.to),
    cc: casemap(f.cc),
    displayFrom: casemap(f.displayFrom),
    displayTo: casemap(f.displayTo),
    messageId: f.messageId ?? null,
    inReplyTo: f.inReplyTo !== undefined ? [f.inReplyTo] : [],
    references: f.references,
  };
}

/** i;ascii-casemap (RFC 4790 9.2): a-z fold to A-Z; other characters stay, compared by code unit. */
export function casemap(s: string): string {
  return /[a-z]/.test(s) ? s.replace(/[a-z]+/g, (m) => m.toUpperCase()) : s;
}

/** Compares two casemapped strings. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
