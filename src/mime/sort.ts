/**
 * Sort and thread keys: RFC 5256 (base subject, first mailbox), RFC 5957 (display names),
 * message identifiers for THREAD=REFERENCES.
 */
import type { MessageIndex } from './types.js';
import { decodeHeaderValue, fieldValue, fieldsNamed } from './header.js';
import { decodeWords } from './charset.js';
import { parseAddressList, type Address } from './rfc822.js';

/** The fields SORT and THREAD need, decoded. */
export interface SortFields {
  /** Parsed Date field (undefined when absent or unparsable: the caller falls back to INTERNALDATE). */
  date?: Date;
  /** RFC 5256 base subject. */
  baseSubject: string;
  /** addr-mailbox of the first From / To / Cc address ("" when none). */
  from: string;
  to: string;
  cc: string;
  /** RFC 5957: display name of the first From / To mailbox, else its addr-spec. */
  displayFrom: string;
  displayTo: string;
  /** First msg-id of Message-ID / In-Reply-To, without angle brackets. */
  messageId?: string;
  inReplyTo?: string;
  /** msg-ids of References in order, without angle brackets. */
  references: string[];
}

const LEADER = /^(?:\[[^[\]]*\][ ]*)*(?:re|fwd?)[ ]*(?:\[[^[\]]*\][ ]*)?:[ ]*/i;
const BLOB = /^\[[^[\]]*\][ ]*/;

/** RFC 5256 2.1 base subject of a decoded subject. */
export function baseSubject(subject: string): string {
  let s = subject.replace(/[ \t\r\n]+/g, ' ');
  for (;;) {
    // (2) trailing "(fwd)" and whitespace
    for (;;) {
      const t = s.replace(/(?:\(fwd\)|[ ])$/i, '');
      if (t === s) break;
      s = t;
    }
    // (3)-(5) leading "re:", "fwd:", "[blob]" (a blob only when something remains)
    for (;;) {
      const before = s;
      s = s.replace(/^[ ]+/, '');
      const m = LEADER.exec(s);
      if (m) s = s.slice(m[0].length);
      const b = BLOB.exec(s);
      if (b && b[0].length < s.length) s = s.slice(b[0].length);
      if (s === before) break;
    }
    // (6) "[fwd: ...]" wrapper
    const w = /^\[fwd:(.*)\]$/i.exec(s);
    if (!w) break;
    s = w[1]!;
  }
  return s;
}

function msgIds(value: string): string[] {
  const out: string[] = [];
  const re = /<([^<>]*)>/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(value)) !== null) {
    const id = m[1]!.replace(/[ \t\r\n]+/g, '');
    if (id.length > 0) out.push(id);
  }
  return out;
}

/** Parse an RFC 5322 date (comments removed); undefined when unparsable. */
export function parseDate(value: string): Date | undefined {
  const cleaned = value.replace(/\([^()]*\)/g, ' ').replace(/\s+/g, ' ').trim();
  if (cleaned === '') return undefined;
  const t = Date.parse(cleaned.replace(/^[A-Za-z]{3},\s*/, ''));
  return Number.isNaN(t) ? undefined : new Date(t);
}

function firstAddresses(raw: Buffer, index: MessageIndex, name: string): Address[] {
  const out: Address[] = [];
  for (const f of fieldsNamed(index.root, name)) out.push(...parseAddressList(fieldValue(raw, f)));
  return out;
}

function firstMailbox(list: Address[]): string {
  const a = list[0];
  return a?.mailbox ?? '';
}

function display(list: Address[]): string {
  // skip group markers: the first real mailbox counts
  const a = list.find((x) => x.domain !== null);
  if (!a) return '';
  if (a.name !== null && a.name.trim() !== '') return decodeHeaderValue(a.name);
  const spec = a.domain && a.domain !== 'MISSING_DOMAIN' ? `${a.mailbox}@${a.domain}` : (a.mailbox ?? '');
  return decodeWords(Buffer.from(spec, 'latin1').toString('utf8'));
}

/** SORT/THREAD keys of a message. */
export function sortKeys(raw: Buffer, index: MessageIndex): SortFields {
  const root = index.root;
  const first = (name: string): string | undefined => {
    const f = fieldsNamed(root, name)[0];
    return f ? fieldValue(raw, f) : undefined;
  };
  const dateValue = first('date');
  const subject = first('subject');
  const from = firstAddresses(raw, index, 'from');
  const to = firstAddresses(raw, index, 'to');
  const cc = firstAddresses(raw, index, 'cc');
  const mid = first('message-id');
  const irt = first('in-reply-to');
  const refs = first('references');
  const out: SortFields = {
    baseSubject: subject === undefined ? '' : baseSubject(decodeHeaderValue(subject)),
    from: firstMailbox(from),
    to: firstMailbox(to),
    cc: firstMailbox(cc),
    displayFrom: display(from),
    displayTo: display(to),
    references: refs === undefined ? [] : msgIds(refs),
  };
  const date = dateValue === undefined ? undefined : parseDate(dateValue);
  if (date) out.date = date;
  const m = mid === undefined ? undefined : msgIds(mid)[0];
  if (m !== undefined) out.messageId = m;
  const r = irt === undefined ? undefined : msgIds(irt)[0];
  if (r !== undefined) out.inReplyTo = r;
  return out;
}
