/**
 * BODY[section] (RFC 3501 6.4.5 / RFC 9051 6.4.5) and BINARY[part] (RFC 3516) bytes from the index.
 * Output is CRLF-normalised (bare LF becomes CRLF) and, for BODY, NUL-free (NUL becomes 0x80), as
 * Dovecot serves it; BODYSTRUCTURE sizes count the same bytes.
 */
import type { Section } from '../protocol/ast.js';
import type { MessageIndex, MimePart } from './types.js';
import { crlf, noNuls } from './bytes.js';
import { decodeBase64, decodeQuotedPrintable, partCte } from './decode.js';

/**
 * Find a part by IMAP part number. A non-multipart part is its own part 1; a message/rfc822 part's
 * number continues into the embedded message (2.1 is the first part of the message in part 2).
 */
export function resolvePart(root: MimePart, path: number[]): MimePart | null {
  let part: MimePart | null = root;
  for (let i = 0; i < path.length && part !== null; i++) {
    const num = path[i]!;
    const more = i + 1 < path.length;
    if (part.multipart) {
      part = part.children[num - 1] ?? null;
    } else if (num !== 1 || (more && part.message === null)) {
      part = null;
    }
    if (part !== null && more && part.message !== null) part = part.message;
  }
  return part;
}

/**
 * HEADER.FIELDS: the selected fields, each ending in CRLF. HEADER.FIELDS.NOT: the other fields as
 * they are. Then the blank line, unless the message has none (RFC 3501 6.4.5; Dovecot adds it or
 * not depending on its cache state).
 */
function headerFields(raw: Buffer, part: MimePart, names: string[], exclude: boolean): Buffer {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const chunks: Buffer[] = [];
  for (const f of part.headers) {
    if ((f.name !== '' && wanted.has(f.name.toLowerCase())) === exclude) continue;
    const bytes = crlf(raw, f.start, f.end);
    chunks.push(bytes);
    if (!exclude && (bytes.length === 0 || bytes[bytes.length - 1] !== 0x0a)) chunks.push(Buffer.from('\r\n'));
  }
  if (part.bodyStart > part.headerEnd) chunks.push(Buffer.from('\r\n'));
  return Buffer.concat(chunks);
}

/** BODY[section] bytes before any <partial>; null when the part does not exist. */
export function sectionBytes(raw: Buffer, index: MessageIndex, section: Section): Buffer | null {
  const bare = index.bareLf;
  let part = section.part.length > 0 ? resolvePart(index.root, section.part) : index.root;
  if (part === null) return null;
  let out: Buffer;
  switch (section.text) {
    case undefined:
      out = section.part.length === 0 ? crlf(raw, 0, raw.length, bare) : crlf(raw, part.bodyStart, part.bodyEnd, bare);
      break;
    case 'MIME':
      out = crlf(raw, part.headerStart, part.bodyStart, bare);
      break;
    default: {
      // HEADER, HEADER.FIELDS(.NOT) and TEXT of a numbered part need an embedded message
      if (section.part.length > 0) {
        if (part.message === null) return null;
        part = part.message;
      }
      if (section.text === 'HEADER') out = crlf(raw, part.headerStart, part.bodyStart, bare);
      else if (section.text === 'TEXT') out = crlf(raw, part.bodyStart, part.bodyEnd, bare);
      else out = headerFields(raw, part, section.fields ?? [], section.text === 'HEADER.FIELDS.NOT');
    }
  }
  return noNuls(out);
}

/** A part's header with its Content-Transfer-Encoding fields replaced by "binary" (CRLF lines). */
function binaryHeader(raw: Buffer, part: MimePart): Buffer {
  const chunks: Buffer[] = [];
  for (const f of part.headers) {
    if (f.name.length === 25 && f.name.toLowerCase() === 'content-transfer-encoding') continue;
    const bytes = crlf(raw, f.start, f.end);
    chunks.push(bytes);
    if (bytes.length === 0 || bytes[bytes.length - 1] !== 0x0a) chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from('Content-Transfer-Encoding: binary\r\n'));
  if (part.bodyStart > part.headerEnd) chunks.push(Buffer.from('\r\n'));
  return Buffer.concat(chunks);
}

/**
 * BINARY[part]: the part's body with its transfer encoding undone; for a multipart or message part
 * every leaf below is decoded in place and its header says "binary" (as Dovecot does). [] is the
 * whole message, header included. Unknown encodings anywhere below give 'UNKNOWN-CTE'.
 */
export function binaryBytes(raw: Buffer, index: MessageIndex, path: number[]): Buffer | 'UNKNOWN-CTE' | null {
  const top = path.length === 0 ? index.root : resolvePart(index.root, path);
  if (top === null) return null;
  const bare = index.bareLf;
  const chunks: Buffer[] = [];
  let copyFrom = path.length === 0 ? top.headerStart : top.bodyStart;
  const flush = (to: number): void => {
    if (to > copyFrom) chunks.push(crlf(raw, copyFrom, to, bare));
    copyFrom = Math.max(copyFrom, to);
  };
  const add = (part: MimePart, withHeader: boolean): boolean => {
    const cte = partCte(raw, part);
    if (cte === 'unknown') return false;
    // an empty body at the very end is left as it is, header included (as Dovecot serves it)
    const converted = (cte === 'base64' || cte === 'quoted-printable') && (part.bodyEnd > part.bodyStart || part.bodyEnd < raw.length || part.multipart || part.message !== null);
    if (withHeader) {
      if (converted) {
        flush(part.headerStart);
        chunks.push(binaryHeader(raw, part));
      } else {
        flush(part.bodyStart);
      }
    }
    copyFrom = part.bodyStart;
    const kids = part.multipart ? part.children : part.message !== null ? [part.message] : [];
    if (kids.length > 0) {
      for (const k of kids) if (!add(k, true)) return false;
      flush(part.bodyEnd);
      copyFrom = part.bodyEnd;
      return true;
    }
    if (part.bodyEnd > part.bodyStart) {
      const body = raw.subarray(part.bodyStart, part.bodyEnd);
      if (cte === 'base64') chunks.push(decodeBase64(body));
      else if (cte === 'quoted-printable') chunks.push(decodeQuotedPrintable(body));
      else chunks.push(crlf(raw, part.bodyStart, part.bodyEnd, bare));
    }
    copyFrom = part.bodyEnd;
    return true;
  };
  if (!add(top, path.length === 0)) return 'UNKNOWN-CTE';
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
