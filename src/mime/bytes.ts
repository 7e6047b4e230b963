/**
 * Byte helpers for serving parts: LF -> CRLF normalisation and NUL replacement.
 */

/** Bytes [start, end) with every LF not preceded by CR turned into CRLF (a view when none is). */
export function crlf(raw: Buffer, start: number, end: number, mayHaveBareLf = true): Buffer {
  const view = raw.subarray(start, end);
  if (!mayHaveBareLf) return view;
  let extra = 0;
  for (let i = view.indexOf(0x0a); i >= 0; i = view.indexOf(0x0a, i + 1)) {
    if (i === 0 ? start === 0 || raw[start - 1] !== 0x0d : view[i - 1] !== 0x0d) extra++;
  }
  if (extra === 0) return view;
  const out = Buffer.allocUnsafe(view.length + extra);
  let o = 0;
  let from = 0;
  for (let i = view.indexOf(0x0a); i >= 0; i = view.indexOf(0x0a, i + 1)) {
    const bare = i === 0 ? start === 0 || raw[start - 1] !== 0x0d : view[i - 1] !== 0x0d;
    if (!bare) continue;
    o += view.copy(out, o, from, i);
    out[o++] = 0x0d;
    out[o++] = 0x0a;
    from = i + 1;
  }
  o += view.copy(out, o, from);
  return out.subarray(0, o);
}

/** IMAP literals must not hold NUL: replace each with 0x80, as Dovecot does (copies only when needed). */
export function noNuls(buf: Buffer): Buffer {
  let i = buf.indexOf(0);
  if (i < 0) return buf;
  const out = Buffer.from(buf);
  for (; i >= 0; i = out.indexOf(0, i + 1)) out[i] = 0x80;
  return out;
}
