/**
 * Header field values: raw (byte string, Dovecot's "full value") and decoded (RFC 2047 + charsets).
 */
import type { HeaderField, MimePart } from './types.js';
import { decodeBytes, decodeWords } from './charset.js';

/**
 * The value of a field as a byte string: leading whitespace after the colon skipped (all of it,
 * unless the value is only whitespace: then one byte), each line break reduced to "\n" (so a folded
 * value keeps "\n" + the continuation's leading whitespace), the final line break dropped.
 */
export function fieldValue(raw: Buffer, f: HeaderField): string {
  let s = f.valueStart;
  let e = f.end;
  if (e > s && raw[e - 1] === 0x0a) {
    e--;
    if (e > s && raw[e - 1] === 0x0d) e--;
  }
  if (s >= e) return '';
  let lineEnd = raw.indexOf(0x0a, s);
  if (lineEnd < 0 || lineEnd > e) lineEnd = e;
  else if (lineEnd > s && raw[lineEnd - 1] === 0x0d) lineEnd--;
  let p = s;
  while (p < lineEnd && (raw[p] === 0x20 || raw[p] === 0x09)) p++;
  // a whitespace-only first line loses just one byte
  if (p === lineEnd && lineEnd > s) p = s + 1;
  s = p;
  const text = raw.toString('latin1', s, e);
  if (text.indexOf('\n') < 0) return text;
  return text.replace(/\r?\n/g, '\n');
}

/** Fields of a part whose name matches (case-insensitive), in order. */
export function fieldsNamed(part: MimePart, lowerName: string): HeaderField[] {
  const out: HeaderField[] = [];
  for (const f of part.headers) {
    if (f.name.length === lowerName.length && f.name.toLowerCase() === lowerName) out.push(f);
  }
  return out;
}

/** Unfold a byte-string value (CRLF/LF + WSP become the WSP) and trim it. */
export function unfold(value: string): string {
  return value.replace(/\r?\n(?=[ \t])/g, '').replace(/\r?\n/g, ' ').trim();
}

/**
 * Decode a raw header value for humans: bytes as UTF-8 when valid (else Windows-1252), then RFC 2047
 * encoded words.
 */
export function decodeHeaderValue(value: string): string {
  const bytes = Buffer.from(unfold(value), 'latin1');
  return decodeWords(decodeBytes(bytes, null));
}
