/** Line-end normalisation of stored messages: IMAP sizes and sections count CRLF line ends. */

/** True when the bytes hold a LF that is not preceded by CR. */
export function hasBareLf(data: Buffer): boolean {
  let i = data.indexOf(10);
  while (i !== -1) {
    if (i === 0 || data[i - 1] !== 13) return true;
    i = data.indexOf(10, i + 1);
  }
  return false;
}

/** Number of bare LFs (LF not preceded by CR) in the bytes; indexOf is native, so this is one fast pass. */
export function bareLfCount(data: Buffer): number {
  let n = 0;
  let i = data.indexOf(10);
  while (i >= 0) {
    if (i === 0 || data[i - 1] !== 13) n++;
    i = data.indexOf(10, i + 1);
  }
  return n;
}

/**
 * The bytes with every bare LF turned into CRLF (Dovecot stores LF-only files and serves them so);
 * the same Buffer when there is none. A LF counts as bare by the byte before it in `data`, so
 * converting a prefix that does not end between CR and LF gives a prefix of the converted whole
 * (in files without any CR, the ones servedBytes converts, every cut is safe).
 */
export function toCrlf(data: Buffer): Buffer {
  if (!data.includes(13)) {
    // The common case (LF-only files): every LF is bare, and V8's native string replace beats
    // the counted copy below (measured on Node 20: 3.7 against 5.6 us for a 2.8 KB message).
    return data.includes(10) ? Buffer.from(data.toString('latin1').replaceAll('\n', '\r\n'), 'latin1') : data;
  }
  // Mixed line ends: count the bare LFs, allocate once, copy the runs between them natively.
  const extra = bareLfCount(data);
  if (extra === 0) return data;
  const out = Buffer.allocUnsafe(data.length + extra);
  let o = 0;
  let start = 0;
  let i = data.indexOf(10);
  while (i >= 0) {
    if (i === 0 || data[i - 1] !== 13) {
      o += data.copy(out, o, start, i);
      out[o++] = 13;
      out[o++] = 10;
      start = i + 1;
    }
    i = data.indexOf(10, i + 1);
  }
  data.copy(out, o, start);
  return out;
}
