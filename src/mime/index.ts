/**
 * The MIME layer's public face: index a message's raw bytes once, then answer ENVELOPE,
 * BODYSTRUCTURE, BODY[section], BINARY[part], search text and sort keys from the index.
 * Nothing here throws on malformed mail; nothing decodes bodies until asked.
 */
import type { Section } from '../protocol/ast.js';
import type { ResponseValue } from '../protocol/values.js';
import type { HeaderField, MessageIndex, MimePart } from './types.js';
import { buildHeaderIndex, buildIndex, newPart } from './parse.js';
import { envelopeOf, structureOf } from './structure.js';
import { binaryBytes, sectionBytes } from './section.js';
import { decodeHeaderValue, fieldValue, fieldsNamed } from './header.js';
import { decodeBytes } from './charset.js';
import { decodeBody, partCte, type Cte } from './decode.js';
import { sortKeys, type SortFields } from './sort.js';

export type { HeaderField, MessageIndex, MimeParam, MimePart } from './types.js';
export type { SortFields } from './sort.js';
export { MAX_DEPTH, MAX_PARTS } from './parse.js';
export { baseSubject, parseDate } from './sort.js';
export { resolvePart } from './section.js';
export { decodeBase64, decodeQuotedPrintable, type Cte } from './decode.js';
export { fieldValue } from './header.js';

/** Index a message: MIME tree with byte offsets and sizes. Never throws, for any bytes. */
export function indexMessage(raw: Buffer): MessageIndex {
  try {
    return buildIndex(raw);
  } catch {
    // defensive: an internal error still yields a usable (header-less, single text part) index
    return fallbackIndex(raw);
  }
}

/**
 * Index only the top-level header, never scanning the body: what ENVELOPE, BODY[HEADER] and
 * BODY[HEADER.FIELDS (...)] need (the index has `headerOnly` set; nothing else may use it).
 * `raw` may be a prefix of the message: `complete` is false when it ended before the header's
 * blank line, so a longer prefix (or the whole message) is needed. Never throws.
 */
export function indexHeader(raw: Buffer): { index: MessageIndex; complete: boolean } {
  try {
    return buildHeaderIndex(raw);
  } catch {
    return { index: { ...fallbackIndex(raw), headerOnly: true }, complete: true };
  }
}

function fallbackIndex(raw: Buffer): MessageIndex {
  let bare = 0;
  let lines = 0;
  for (let i = raw.indexOf(0x0a); i >= 0; i = raw.indexOf(0x0a, i + 1)) {
    lines++;
    if (i === 0 || raw[i - 1] !== 0x0d) bare++;
  }
  const root: MimePart = {
    ...newPart(0, 0),
    bodyEnd: raw.length,
    lines,
    size: raw.length + bare,
  };
  return { size: raw.length + bare, rawSize: raw.length, bareLf: bare > 0, root, partCount: 1 };
}

/** The ENVELOPE list (RFC 3501 7.4.2 / RFC 9051 7.5.2), built the way Dovecot builds it. */
export function envelope(raw: Buffer, index: MessageIndex): ResponseValue[] {
  return envelopeOf(raw, index.root);
}

/** BODYSTRUCTURE (extended = true) or BODY (extended = false) of the message. */
export function bodyStructure(raw: Buffer, index: MessageIndex, extended: boolean): ResponseValue[] {
  return structureOf(raw, index.root, extended, true);
}

/** BODY[section] bytes (before <partial>): CRLF line ends, NUL as 0x80; null when the part does not exist. */
export function extractSection(raw: Buffer, index: MessageIndex, section: Section): Buffer | null {
  return sectionBytes(raw, index, section);
}

/** BINARY[part] (RFC 3516) bytes; [] = the whole message; 'UNKNOWN-CTE' for an unknown encoding; null when absent. */
export function decodePart(raw: Buffer, index: MessageIndex, part: number[]): Buffer | 'UNKNOWN-CTE' | null {
  return binaryBytes(raw, index, part);
}

/** Decoded (RFC 2047, charsets) and unfolded values of a top-level header field, in order. */
export function headerValues(raw: Buffer, index: MessageIndex, name: string): string[] {
  return fieldsNamed(index.root, name.toLowerCase()).map((f) => decodeHeaderValue(fieldValue(raw, f)));
}

/**
 * Every header field of every part (the top-level header, MIME part headers, headers of attached
 * messages), one "name: decoded value" line each, in document order: what SEARCH TEXT reads besides
 * bodyText(), as Dovecot does.
 */
export function allHeaderText(raw: Buffer, index: MessageIndex): string {
  const lines: string[] = [];
  walkParts(index, { header: (p) => p.headers.forEach((f) => lines.push(headerLine(raw, f))) });
  return lines.join('\n');
}

/**
 * Visits a message's parts in document order, as SEARCH reads them: `header` for every part
 * (the root, multipart children, embedded messages), `text` for every text/* leaf with a body.
 */
export function walkParts(index: MessageIndex, visit: { header?: (p: MimePart) => void; text?: (p: MimePart) => void }): void {
  const go = (p: MimePart): void => {
    visit.header?.(p);
    if (p.multipart) {
      for (const c of p.children) go(c);
      return;
    }
    if (p.message !== null) {
      go(p.message);
      return;
    }
    if (p.text && p.bodyEnd > p.bodyStart) visit.text?.(p);
  };
  go(index.root);
}

/** "name: decoded value" of one header field, as allHeaderText() writes it. */
export function headerLine(raw: Buffer, f: HeaderField): string {
  return `${f.name}: ${decodeHeaderValue(fieldValue(raw, f))}`;
}

/** Decoded text of one text/* leaf, as bodyText() includes it. */
export function partText(raw: Buffer, p: MimePart): string {
  return bodyTextOf(raw.subarray(p.bodyStart, p.bodyEnd), partCte(raw, p), partCharset(p));
}

/** Text of body bytes given their transfer encoding and charset (what partText does for a part). */
export function bodyTextOf(body: Buffer, cte: Cte, charset: string | null): string {
  return decodeBytes(decodeBody(body, cte), charset);
}

/** A part's Content-Transfer-Encoding as the decoder reads it. */
export function partEncoding(raw: Buffer, p: MimePart): Cte {
  return partCte(raw, p);
}

/** The declared charset of a part, or null. */
export function partCharset(p: MimePart): string | null {
  return p.params.find((x) => x.name.toLowerCase() === 'charset')?.value ?? null;
}

/**
 * True when the part's body bytes are its text unchanged if they are ASCII: no transfer encoding
 * to undo and a charset in which ASCII bytes are ASCII characters.
 */
export function plainTextPart(raw: Buffer, p: MimePart): boolean {
  const cte = partCte(raw, p);
  if (cte === 'base64' || cte === 'quoted-printable') return false;
  return ASCII_CHARSET.test(partCharset(p)?.trim().toLowerCase() ?? '');
}

const ASCII_CHARSET = /^(?:|us-ascii|ascii|utf-?8|iso-8859-\d{1,2}|windows-125\d|cp125\d|latin1)$/;

/** Decoded text of every text/* leaf (embedded messages included), for SEARCH BODY/TEXT. */
export function bodyText(raw: Buffer, index: MessageIndex): string {
  const out: string[] = [];
  walkParts(index, { text: (p) => out.push(partText(raw, p)) });
  return out.join('\n');
}

/** SORT (RFC 5256, RFC 5957) and THREAD keys. */
export function sortFields(raw: Buffer, index: MessageIndex): SortFields {
  return sortKeys(raw, index);
}
export { hasBareLf, toCrlf } from './crlf.js';
