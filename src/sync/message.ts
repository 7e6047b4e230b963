/**
 * The two facts the sync engine needs of message bytes: the Message-ID header and a content hash.
 * Only the header block is scanned (no MIME parsing): this runs for every copied message.
 */
import { createHash } from 'node:crypto';

/** End of the header block (index of the blank line's start), or the buffer length when there is none. */
function headerEnd(raw: Buffer): number {
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== 0x0a) continue;
    if (raw[i + 1] === 0x0a) return i + 1;
    if (raw[i + 1] === 0x0d && raw[i + 2] === 0x0a) return i + 1;
  }
  return raw.length;
}

/**
 * The Message-ID of a message (RFC 5322 3.6.4): the first Message-ID field, unfolded; the
 * `<...>` part when present, else the trimmed value; null when there is none or it is empty.
 */
export function messageIdOf(raw: Buffer): string | null {
  const head = raw.subarray(0, headerEnd(raw)).toString('latin1');
  const re = /^message-id[ \t]*:/gim;
  const m = re.exec(head);
  if (!m) return null;
  let end = m.index + m[0].length;
  // The field continues over folded lines (those starting with white space).
  let value = '';
  for (;;) {
    const nl = head.indexOf('\n', end);
    const line = head.slice(end, nl < 0 ? head.length : nl);
    value += line.replace(/\r$/, '');
    if (nl < 0 || !(head[nl + 1] === ' ' || head[nl + 1] === '\t')) break;
    end = nl + 1;
  }
  return normalizeMessageId(value);
}

/** Normalise a Message-ID value as read from a header or a FETCH response: the `<...>` part, no white space. */
export function normalizeMessageId(value: string): string | null {
  const v = value.replace(/[\r\n]+/g, ' ').trim();
  const bracket = /<[^<>]*>/.exec(v);
  const id = (bracket ? bracket[0] : v).replace(/\s+/g, '');
  return id === '' || id === '<>' ? null : Buffer.from(id, 'latin1').toString('utf8');
}

/** SHA-256 (hex) of the message with line ends normalised to LF, so CRLF and LF copies hash alike. */
export function contentHash(raw: Buffer): string {
  const h = createHash('sha256');
  let start = 0;
  for (let i = raw.indexOf(0x0d); i >= 0; i = raw.indexOf(0x0d, i + 1)) {
    if (raw[i + 1] !== 0x0a) continue;
    h.update(raw.subarray(start, i));
    start = i + 1;
  }
  h.update(raw.subarray(start));
  return h.digest('hex');
}

/** RFC822.SIZE of bytes as an IMAP server reports them: bare LF counts as CRLF. */
export function crlfSize(raw: Buffer): number {
  let n = raw.length;
  for (let i = raw.indexOf(0x0a); i >= 0; i = raw.indexOf(0x0a, i + 1)) if (i === 0 || raw[i - 1] !== 0x0d) n++;
  return n;
}
