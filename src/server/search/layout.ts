/**
 * What SEARCH TEXT/BODY with a plain needle (printable ASCII without ':' or space) needs of a
 * message's MIME structure, kept per message content across searches, as Dovecot keeps a message's
 * part layout (mime.parts) in its index cache: which byte ranges are header blocks and text
 * bodies, and which of them are their own text (ASCII, no encoded word, no transfer encoding, an
 * ASCII-transparent charset) so that they are searched as bytes. A repeated search (a client
 * refining a query, a saved search) then reads the bytes but parses nothing. The layout holds
 * offsets and a few short strings, a few hundred bytes per message, in one process-wide LRU bounded
 * in bytes like the structure cache. Messages are immutable and an EMAILID names one content
 * (RFC 8474), so (user, EMAILID) is a safe key.
 */
import { isAscii } from 'node:buffer';
import { bodyTextOf, headerLine, indexHeader, partCharset, partEncoding, plainTextPart, walkParts, type Cte, type MessageIndex, type MimePart } from '../../mime/index.js';
import { contains, fold } from './text.js';

/** A text body that must be decoded before it is searched. */
interface EncodedBody {
  start: number;
  end: number;
  cte: Cte;
  charset: string | null;
}

/** The searchable ranges of one message; each number array holds [start, end) pairs. */
export interface SearchLayout {
  /** Header blocks that are ASCII without encoded words: searched as they are. */
  plainHeaders: number[];
  /** Other header blocks: their fields are decoded one by one. */
  otherHeaders: number[];
  /** Text bodies that are their own text. */
  plainBodies: number[];
  /** Other text bodies. */
  otherBodies: EncodedBody[];
}

/** True when raw[start, end) holds "=?" (a possible RFC 2047 encoded word). */
export function hasEncodedWord(raw: Buffer, start: number, end: number): boolean {
  return end - start >= 2 && raw.subarray(start, end).indexOf('=?', 0, 'latin1') >= 0;
}

/** The layout of a parsed message, visiting parts as the full search does. */
export function layoutOf(raw: Buffer, index: MessageIndex): SearchLayout {
  const l: SearchLayout = { plainHeaders: [], otherHeaders: [], plainBodies: [], otherBodies: [] };
  walkParts(index, {
    header: (p: MimePart) => {
      if (p.headers.length === 0) return;
      const start = p.headers[0]!.start;
      const end = p.headers[p.headers.length - 1]!.end;
      if (isAscii(raw.subarray(start, end)) && !hasEncodedWord(raw, start, end)) l.plainHeaders.push(start, end);
      else l.otherHeaders.push(start, end);
    },
    text: (p: MimePart) => {
      if (isAscii(raw.subarray(p.bodyStart, p.bodyEnd)) && plainTextPart(raw, p)) l.plainBodies.push(p.bodyStart, p.bodyEnd);
      else l.otherBodies.push({ start: p.bodyStart, end: p.bodyEnd, cte: partEncoding(raw, p), charset: partCharset(p) });
    },
  });
  return l;
}

/**
 * True when the message holds the folded plain `needle` in its text (headers too when `headers`),
 * with `re` its case-insensitive matcher: the same answer as searching the decoded header and
 * body text. An ASCII needle without ':', space or line break cannot span a field's "name: value"
 * join, a folded line or the break between two ranges, so each range is searched alone.
 */
export function layoutContains(raw: Buffer, l: SearchLayout, needle: string, re: RegExp, headers: boolean): boolean {
  const found = (start: number, end: number): boolean => re.test(raw.toString('latin1', start, end));
  if (headers) {
    for (let i = 0; i < l.plainHeaders.length; i += 2) if (found(l.plainHeaders[i]!, l.plainHeaders[i + 1]!)) return true;
  }
  for (let i = 0; i < l.plainBodies.length; i += 2) if (found(l.plainBodies[i]!, l.plainBodies[i + 1]!)) return true;
  if (headers) {
    for (let i = 0; i < l.otherHeaders.length; i += 2) {
      // Only this block's fields: it is re-read alone, as a header of its own.
      const block = raw.subarray(l.otherHeaders[i]!, l.otherHeaders[i + 1]!);
      for (const f of indexHeader(block).index.root.headers) {
        if (isAscii(block.subarray(f.start, f.end)) && !hasEncodedWord(block, f.valueStart, f.end)) {
          if (re.test(block.toString('latin1', f.start, f.end))) return true;
        } else if (contains(fold(headerLine(block, f)), needle)) return true;
      }
    }
  }
  for (const b of l.otherBodies) if (contains(fold(bodyTextOf(raw.subarray(b.start, b.end), b.cte, b.charset)), needle)) return true;
  return false;
}

/** True when every range of the layout lies within a message of `size` bytes (a stored layout must not point past it). */
export function fitsIn(l: SearchLayout, size: number): boolean {
  const within = (xs: number[]): boolean => xs.every((x) => x <= size);
  return within(l.plainHeaders) && within(l.otherHeaders) && within(l.plainBodies) && l.otherBodies.every((b) => b.end <= size);
}

/** Rough memory of a layout, bytes. */
function layoutBytes(l: SearchLayout): number {
  return 160 + 8 * (l.plainHeaders.length + l.otherHeaders.length + l.plainBodies.length) + 64 * l.otherBodies.length;
}

/** Default bound of the layout cache, in (estimated) bytes: some 20,000 typical messages. */
export const DEFAULT_LAYOUT_BYTES = 8 * 1024 * 1024;

/** An LRU of layouts bounded by estimated memory. */
export class LayoutCache {
  private readonly entries = new Map<string, { layout: SearchLayout; bytes: number }>();
  private total = 0;

  constructor(private readonly maxBytes: number = DEFAULT_LAYOUT_BYTES) {}

  /** Number of layouts held. */
  get size(): number {
    return this.entries.size;
  }

  /** The layout of a message, refreshing its recency; undefined on a miss. */
  get(key: string): SearchLayout | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.layout;
  }

  /** Keeps a layout, evicting the least recently used beyond the bound. */
  set(key: string, layout: SearchLayout): void {
    if (this.maxBytes <= 0) return;
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.total -= old.bytes;
    }
    const bytes = layoutBytes(layout);
    this.entries.set(key, { layout, bytes });
    this.total += bytes;
    for (const [k, e] of this.entries) {
      if (this.total <= this.maxBytes) break;
      this.entries.delete(k);
      this.total -= e.bytes;
    }
  }

  /** Drops everything. */
  clear(): void {
    this.entries.clear();
    this.total = 0;
  }
}

/** The cache all sessions share. */
export const layoutCache = new LayoutCache();
