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

/** Return the bytes with every bare LF turned into CRLF (the same Buffer when there is none). */
export function toCrlf(data: Buffer): Buffer {
  if (!hasBareLf(data)) return data;
  const parts: Buffer[] = [];
  let start = 0;
  let i = data.indexOf(10);
  while (i !== -1) {
    if (i === 0 || data[i - 1] !== 13) {
      parts.push(data.subarray(start, i), CRLF);
      start = i + 1;
    }
    i = data.indexOf(10, i + 1);
  }
  parts.push(data.subarray(start));
  return Buffer.concat(parts);
}

const CRLF = Buffer.from('\r\n');
