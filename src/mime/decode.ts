/**
 * Content-transfer decoding (RFC 2045) for BINARY (RFC 3516) and search text. Decoders are
 * lenient the way RFC 2045 asks (6.7 note 1, 6.8): bytes outside the base64 alphabet are ignored,
 * a broken "=" escape in quoted-printable is kept literally.
 */
import type { MimePart } from './types.js';
import { fieldValue } from './header.js';
import { Scanner } from './rfc822.js';

/** Transfer encodings BINARY can undo; anything else is UNKNOWN-CTE. */
export type Cte = '7bit' | 'binary' | 'base64' | 'quoted-printable' | 'unknown';

const B64 = new Int16Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => {
  B64[c.charCodeAt(0)] = i;
});

/** Decode base64, skipping bytes outside the alphabet; "=" ends a quantum (later data still decodes). */
export function decodeBase64(src: Buffer): Buffer {
  const out = Buffer.allocUnsafe(Math.ceil((src.length * 3) / 4) + 3);
  let o = 0;
  let acc = 0;
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    const v = B64[c]!;
    if (v >= 0) {
      acc = (acc << 6) | v;
      if (++n === 4) {
        out[o++] = (acc >> 16) & 0xff;
        out[o++] = (acc >> 8) & 0xff;
        out[o++] = acc & 0xff;
        acc = 0;
        n = 0;
      }
    } else if (c === 0x3d && n > 0) {
      o = flushQuantum(out, o, acc, n);
      acc = 0;
      n = 0;
    }
  }
  if (n > 0) o = flushQuantum(out, o, acc, n);
  return out.subarray(0, o);
}

function flushQuantum(out: Buffer, o: number, acc: number, n: number): number {
  if (n === 2) {
    out[o++] = (acc >> 4) & 0xff;
  } else if (n === 3) {
    out[o++] = (acc >> 10) & 0xff;
    out[o++] = (acc >> 2) & 0xff;
  }
  return o;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Decode quoted-printable: "=XX" (either case), soft breaks "=" [WSP] [CR]LF, trailing whitespace
 * dropped, hard line breaks written as CRLF, a broken "=" kept as is.
 */
export function decodeQuotedPrintable(src: Buffer): Buffer {
  const out = Buffer.allocUnsafe(src.length * 2 + 2);
  let o = 0;
  const n = src.length;
  let i = 0;
  while (i < n) {
    let lf = src.indexOf(0x0a, i);
    const hasBreak = lf >= 0;
    if (!hasBreak) lf = n;
    let end = lf;
    if (hasBreak && end > i && src[end - 1] === 0x0d) end--;
    while (end > i && (src[end - 1] === 0x20 || src[end - 1] === 0x09)) end--;
    // "=" last on the line (trailing whitespace aside) is a soft line break
    const soft = end > i && src[end - 1] === 0x3d;
    if (soft) end--;
    for (let j = i; j < end; j++) {
      const c = src[j]!;
      if (c === 0x3d && j + 2 < end) {
        const h = hexVal(src[j + 1]!);
        const l = hexVal(src[j + 2]!);
        if (h >= 0 && l >= 0) {
          out[o++] = (h << 4) | l;
          j += 2;
          continue;
        }
      }
      out[o++] = c;
    }
    if (hasBreak && !soft) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    }
    i = lf + 1;
  }
  return out.subarray(0, o);
}

/** The transfer encoding BINARY sees: the last Content-Transfer-Encoding field, MIME or not. */
export function partCte(raw: Buffer, part: MimePart): Cte {
  let cte: Cte = '7bit';
  for (const f of part.headers) {
    if (f.name.length !== 25 || f.name.toLowerCase() !== 'content-transfer-encoding') continue;
    const sc = new Scanner(fieldValue(raw, f));
    sc.skipLwsp();
    sc.mimeToken();
    switch (sc.out.toLowerCase()) {
      case '7bit':
      case '8bit':
        cte = '7bit';
        break;
      case 'binary':
        cte = 'binary';
        break;
      case 'base64':
        cte = 'base64';
        break;
      case 'quoted-printable':
        cte = 'quoted-printable';
        break;
      default:
        cte = 'unknown';
    }
  }
  return cte;
}

/** Decode one body by transfer encoding (unknown encodings pass through). */
export function decodeBody(body: Buffer, cte: Cte): Buffer {
  if (cte === 'base64') return decodeBase64(body);
  if (cte === 'quoted-printable') return decodeQuotedPrintable(body);
  return body;
}
