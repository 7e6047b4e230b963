/**
 * Charset decoding for search and sort: libmime (iconv-lite, plus encoding-japanese for ISO-2022-JP).
 */
import { isUtf8 } from 'node:buffer';
import libmime from 'libmime';
import libcharset from 'libmime/lib/charset.js';

/**
 * Decode bytes in a declared charset. Without one (or for us-ascii/utf-8), valid UTF-8 is taken as
 * UTF-8 and anything else as Windows-1252, which covers raw 8-bit headers in the wild.
 */
export function decodeBytes(bytes: Buffer, charset: string | null): string {
  const cs = charset?.trim().toLowerCase() ?? '';
  if (cs === '' || cs === 'us-ascii' || cs === 'ascii' || cs === 'utf-8' || cs === 'utf8') {
    if (isUtf8(bytes)) return bytes.toString('utf8');
    return libcharset.decode(bytes, 'windows-1252');
  }
  try {
    return libcharset.decode(bytes, cs);
  } catch {
    // unknown charset: keep what can be read
    return bytes.toString('utf8');
  }
}

/** Decode RFC 2047 encoded words in a header value (adjacent words are joined). */
export function decodeWords(text: string): string {
  if (text.indexOf('=?') < 0) return text;
  try {
    return libmime.decodeWords(text);
  } catch {
    return text;
  }
}
