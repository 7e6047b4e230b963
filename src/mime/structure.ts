/**
 * ENVELOPE (RFC 3501 7.4.2 / RFC 9051 7.5.2) and BODY/BODYSTRUCTURE built from the index, as
 * ResponseValue trees. Strings keep their raw bytes: anything non-ASCII is handed over as a literal
 * so the writer does not re-encode it. Formatting choices follow Dovecot 2.3: the subject and
 * display names are cleaned "for humans" (whitespace runs collapsed, trimmed), other strings only
 * lose their line breaks; text parts get a default charset parameter.
 */
import type { ResponseValue } from '../protocol/values.js';
import type { MimeParam, MimePart } from './types.js';
import { fieldValue } from './header.js';
import { parseAddressList, type Address } from './rfc822.js';

/** A byte string as a response value: plain string when 7-bit clean, otherwise a literal. */
export function bytesValue(s: string): ResponseValue {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 || c === 0 || c === 0x0d || c === 0x0a) return { literal: Buffer.from(s, 'latin1') };
  }
  return s;
}

/** NIL or a byte string with CR/LF removed (a space kept between lines that had none). */
export function nstringNolf(s: string | null): ResponseValue {
  if (s === null) return null;
  if (s.indexOf('\r') < 0 && s.indexOf('\n') < 0) return bytesValue(s);
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\r' && c !== '\n') {
      out += c;
      continue;
    }
    const next = s[i + 1];
    if (next !== undefined && next !== ' ' && next !== '\t' && next !== '\r' && next !== '\n' && next !== '\0') out += ' ';
  }
  return bytesValue(out);
}

/** A byte string cleaned for humans: CR/LF/TAB are spaces, runs collapse, ends trimmed, NUL -> 0x80. */
export function forHumans(s: string): ResponseValue {
  let out = '';
  let lastSpace = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) {
      if (!lastSpace) out += ' ';
      lastSpace = true;
    } else {
      out += c === 0 ? '\x80' : s[i];
      lastSpace = false;
    }
  }
  if (lastSpace && out.endsWith(' ')) out = out.slice(0, -1);
  return bytesValue(out);
}

/** Envelope data of one header (the message's or an embedded message's). */
interface EnvelopeData {
  date: string | null;
  subject: string | null;
  inReplyTo: string | null;
  messageId: string | null;
  from: Address[];
  sender: Address[];
  replyTo: Address[];
  to: Address[];
  cc: Address[];
  bcc: Address[];
}

/** U+FFFD as UTF-8 bytes (byte string): what a NUL in an envelope string becomes (Dovecot). */
const REPLACEMENT = '\xef\xbf\xbd';

function noNul(s: string): string {
  return s.indexOf('\0') < 0 ? s : s.replace(/\0/g, REPLACEMENT);
}

/** Collect envelope fields: the last of each string field wins, address fields accumulate. */
export function envelopeData(raw: Buffer, part: MimePart): EnvelopeData {
  const d: EnvelopeData = { date: null, subject: null, inReplyTo: null, messageId: null, from: [], sender: [], replyTo: [], to: [], cc: [], bcc: [] };
  for (const f of part.headers) {
    const name = f.name;
    if (name.length < 2 || name.length > 11) continue;
    switch (name.toLowerCase()) {
      case 'date':
        d.date = noNul(fieldValue(raw, f));
        break;
      case 'subject':
        d.subject = noNul(fieldValue(raw, f));
        break;
      case 'in-reply-to':
        d.inReplyTo = noNul(fieldValue(raw, f));
        break;
      case 'message-id':
        d.messageId = noNul(fieldValue(raw, f));
        break;
      case 'from':
        d.from.push(...parseAddressList(fieldValue(raw, f)));
        break;
      case 'sender':
        d.sender.push(...parseAddressList(fieldValue(raw, f)));
        break;
      case 'reply-to':
        d.replyTo.push(...parseAddressList(fieldValue(raw, f)));
        break;
      case 'to':
        d.to.push(...parseAddressList(fieldValue(raw, f)));
        break;
      case 'cc':
        d.cc.push(...parseAddressList(fieldValue(raw, f)));
        break;
      case 'bcc':
        d.bcc.push(...parseAddressList(fieldValue(raw, f)));
        break;
    }
  }
  return d;
}

function addresses(list: Address[]): ResponseValue {
  if (list.length === 0) return null;
  // env-from etc. are "(" 1*address ")": the addresses follow each other without spaces.
  return {
    adjacent: list.map((a) => [
      a.name === null ? null : forHumans(a.name),
      a.route === null ? null : bytesValue(a.route),
      a.mailbox === null ? null : bytesValue(a.mailbox),
      a.domain === null ? null : bytesValue(a.domain),
    ]),
  };
}

/** The ENVELOPE list of a message (or embedded message) root part. */
export function envelopeOf(raw: Buffer, part: MimePart): ResponseValue[] {
  const d = envelopeData(raw, part);
  return [
    nstringNolf(d.date),
    d.subject === null ? null : forHumans(d.subject),
    addresses(d.from),
    addresses(d.sender.length > 0 ? d.sender : d.from),
    addresses(d.replyTo.length > 0 ? d.replyTo : d.from),
    addresses(d.to),
    addresses(d.cc),
    addresses(d.bcc),
    nstringNolf(d.inReplyTo),
    nstringNolf(d.messageId),
  ];
}

function paramList(params: MimeParam[], defaultCharset: boolean): ResponseValue {
  if (params.length === 0 && !defaultCharset) return null;
  const out: ResponseValue[] = [];
  let seenCharset = false;
  for (const p of params) {
    if (defaultCharset && p.name.toLowerCase() === 'charset') seenCharset = true;
    out.push(bytesValue(p.name), bytesValue(p.value));
  }
  if (defaultCharset && !seenCharset) out.push('charset', 'us-ascii');
  return out;
}

function extensionTail(p: MimePart): ResponseValue[] {
  return [
    p.disposition === null ? null : [bytesValue(p.disposition), paramList(p.dispositionParams, false)],
    p.language === null ? null : p.language.map(bytesValue),
    nstringNolf(p.location),
  ];
}

const EMPTY_BODY: ResponseValue[] = ['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 0, 0];

/**
 * Dovecot's shortcut for a plain message (root text/plain, at most a charset=us-ascii parameter,
 * 7bit, no other Content-* data): its BODYSTRUCTURE is always written in the canonical lower-case
 * form, whatever case the header used.
 */
function plain7bit(p: MimePart): boolean {
  if (!p.text || p.multipart || p.message !== null) return false;
  if (p.contentType !== null && (p.contentSubtype ?? '').toLowerCase() !== 'plain') return false;
  if (p.params.length > 1) return false;
  const first = p.params[0];
  if (first && (first.name.toLowerCase() !== 'charset' || first.value.toLowerCase() !== 'us-ascii')) return false;
  if (p.id !== null || p.description !== null || p.md5 !== null || p.disposition !== null || p.language !== null || p.location !== null) return false;
  return p.encoding === null || p.encoding.toLowerCase() === '7bit';
}

/** BODYSTRUCTURE (extended) or BODY of a part; `top` marks the message's root part. */
export function structureOf(raw: Buffer, p: MimePart, extended: boolean, top = false): ResponseValue[] {
  if (p.multipart) {
    const out: ResponseValue[] = p.children.length > 0
      ? p.children.map((c) => structureOf(raw, c, extended))
      : [extended ? [...EMPTY_BODY, null, null, null, null] : [...EMPTY_BODY]];
    out.push(bytesValue(p.contentSubtype ?? ''));
    if (extended) out.push(paramList(p.params, false), ...extensionTail(p));
    return out;
  }
  if (top && plain7bit(p)) {
    const out: ResponseValue[] = ['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', p.size, p.lines];
    if (extended) out.push(null, null, null, null);
    return out;
  }
  const msg = p.message;
  let text: boolean;
  const out: ResponseValue[] = [];
  const lowerType = p.contentType?.toLowerCase();
  if (msg !== null && (p.type !== 'message' || p.subtype !== 'global')) {
    out.push('message', 'rfc822');
    text = false;
  } else if (p.contentType === null) {
    out.push('text', 'plain');
    text = msg === null;
  } else if (msg === null && (lowerType === 'multipart' || (lowerType === 'message' && p.contentSubtype?.toLowerCase() === 'rfc822'))) {
    // a container type on a part that is not parsed as one (too deep, no subtype): opaque data
    out.push('application', 'octet-stream');
    text = false;
  } else {
    out.push(bytesValue(p.contentType), bytesValue(p.contentSubtype ?? ''));
    text = msg === null && lowerType === 'text';
  }
  out.push(paramList(p.params, text), nstringNolf(p.id), nstringNolf(p.description), bytesValue(p.encoding ?? '7bit'), p.size);
  if (text) out.push(p.lines);
  else if (msg !== null) out.push(envelopeOf(raw, msg), structureOf(raw, msg, extended), p.lines);
  if (extended) out.push(nstringNolf(p.md5), ...extensionTail(p));
  return out;
}
