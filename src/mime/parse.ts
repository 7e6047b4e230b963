/**
 * The indexer: one forward pass over the raw bytes, line by line (Buffer.indexOf), recording where
 * every part's header and body start and end, with LF and bare-LF counts for IMAP sizes. Bodies are
 * never decoded here. The rules for malformed MIME follow Dovecot 2.3 (and RFC 2046 5.1.1):
 *
 * - a boundary line is "--" + a boundary of any open multipart as a prefix of the line; when
 *   several match, the longest wins (innermost on a tie); "--boundary--" closes that multipart;
 * - a boundary line closes every part nested inside the multipart it belongs to;
 * - the line break before a boundary line belongs to the boundary, except on the first line of a
 *   body (right after a header or a boundary line);
 * - a header ends at a blank line, at a boundary line (its last line break then belongs to the
 *   parent) or at the end of data; a multipart only gets children when its header ended with a
 *   blank line;
 * - Content-* fields only count in MIME parts (MIME-Version or Content-Type present, or any child
 *   of a multipart); parts of multipart/digest default to message/rfc822;
 * - containers nested 100 deep are opaque; after 10000 parts boundaries are no longer recognised.
 */
import type { HeaderField, MessageIndex, MimePart } from './types.js';
import { fieldValue } from './header.js';
import { Scanner, parseParams } from './rfc822.js';

/** Parts nested this deep (root = 0) are never containers. */
export const MAX_DEPTH = 100;
/** After this many parts no further part is created. */
export const MAX_PARTS = 10000;

interface Boundary {
  buf: Buffer;
  part: MimePart;
}

interface Open {
  part: MimePart;
  lf0: number;
  bare0: number;
}

/** A fresh text/plain part starting at byte `start` (its fields are filled as the header is read). */
export function newPart(depth: number, start: number): MimePart {
  return {
    contentType: null,
    contentSubtype: null,
    type: 'text',
    subtype: 'plain',
    params: [],
    id: null,
    description: null,
    md5: null,
    location: null,
    encoding: null,
    disposition: null,
    dispositionParams: [],
    language: null,
    headers: [],
    headerStart: start,
    headerEnd: start,
    bodyStart: start,
    bodyEnd: start,
    lines: 0,
    size: 0,
    headerSize: 0,
    multipart: false,
    text: true,
    children: [],
    message: null,
    depth,
  };
}

/** What a header scan found at its end. */
type HeaderEnd = { kind: 'eoh' } | { kind: 'eof' } | { kind: 'cut'; at: number; boundary: Boundary; eol: number };

/** A boundary line found while reading a header: handled as the first line of a body. */
interface Pending {
  at: number;
  boundary: Boundary;
}

/** Flags derived from a part's header, before limits are applied. */
interface PartKind {
  multipart: boolean;
  digest: boolean;
  message: boolean;
  boundary: string | null;
}

class Indexer {
  private readonly n: number;
  private pos = 0;
  /** LF bytes and bare LF bytes before `pos`. */
  private lf = 0;
  private bare = 0;
  private boundaries: Boundary[] = [];
  private readonly open: Open[] = [];
  private partCount = 0;
  private capped = false;

  constructor(private readonly raw: Buffer) {
    this.n = raw.length;
  }

  run(): MessageIndex {
    const root = this.createPart(0, 0);
    this.loop(this.startPart(root, false, false));
    return {
      size: this.n + this.bare,
      rawSize: this.n,
      bareLf: this.bare > 0,
      root,
      partCount: this.partCount,
    };
  }

  /**
   * Only the top-level header (ENVELOPE, BODY[HEADER], HEADER.FIELDS need nothing else): the body is
   * never scanned, so `size` and `bareLf` describe the header alone. `complete` is false when the
   * data ended before a blank line, i.e. a prefix may have cut the header short.
   */
  runHeader(): { index: MessageIndex; complete: boolean } {
    const root = this.createPart(0, 0);
    const end = this.scanHeader(root);
    root.headerSize = root.bodyStart - root.headerStart + this.bare;
    root.bodyEnd = root.bodyStart;
    const index: MessageIndex = { size: root.headerSize, rawSize: this.n, bareLf: this.bare > 0, root, partCount: 1, headerOnly: true };
    return { index, complete: end.kind === 'eoh' };
  }

  private createPart(depth: number, start: number): MimePart {
    this.partCount++;
    if (this.partCount >= MAX_PARTS && !this.capped) {
      // from here on everything is body text of the parts already open
      this.capped = true;
      this.boundaries = [];
    }
    return newPart(depth, start);
  }

  /** Longest boundary matching the line at `at` (which starts with "--"), innermost on a tie. */
  private match(at: number): Boundary | null {
    const raw = this.raw;
    let best: Boundary | null = null;
    const from = at + 2;
    for (let i = this.boundaries.length - 1; i >= 0; i--) {
      const b = this.boundaries[i]!;
      const buf = b.buf;
      const len = buf.length;
      if (from + len > this.n || (best !== null && best.buf.length >= len)) continue;
      // byte loop: boundaries are short, and Buffer.compare's call overhead dominates here
      let k = 0;
      while (k < len && raw[from + k] === buf[k]) k++;
      if (k === len) best = b;
    }
    return best;
  }

  /**
   * Parse the header of `part` at `pos` and set up its body; an embedded message's header follows
   * at once (iteratively). Returns a boundary line met inside a header: the caller handles it.
   */
  private startPart(first: MimePart, mimeChild: boolean, parentDigest: boolean): Pending | null {
    let part = first;
    for (;;) {
      const bare0 = this.bare;
      let end = this.scanHeader(part);
      const kind = analyze(this.raw, part, mimeChild, parentDigest);
      const depthOk = part.depth + 1 < MAX_DEPTH && !this.capped;
      part.multipart = kind.multipart && depthOk;
      if ((kind.multipart || kind.message) && !depthOk) {
        // too deep: an opaque body (BODYSTRUCTURE calls it application/octet-stream, as Dovecot does)
        part.type = 'application';
        part.subtype = 'octet-stream';
        part.text = false;
      }
      // a multipart's own boundary is known from its blank line on
      const own = end.kind === 'eoh' && part.multipart && kind.boundary !== null ? { buf: Buffer.from(kind.boundary, 'latin1'), part } : null;
      if (own) this.boundaries.push(own);
      if (end.kind === 'eoh' && this.raw[this.pos] === 0x2d && this.raw[this.pos + 1] === 0x2d && this.boundaries.length > 0) {
        // an enclosing boundary right after the blank line takes the blank line's line break
        const b = this.match(this.pos);
        if (b !== null && b.part !== part) end = { kind: 'cut', at: this.pos, boundary: b, eol: this.pos - part.headerEnd };
      }
      if (end.kind === 'cut') {
        // the header's last line break belongs to the parent; the body is empty
        part.headerSize = part.headerEnd - part.headerStart + (this.bare - bare0) - (end.eol === 1 ? 1 : 0);
        part.bodyStart = part.bodyEnd = part.headerEnd;
        if (kind.message && depthOk) {
          const child = this.createPart(part.depth + 1, part.bodyStart);
          analyze(this.raw, child, false, false);
          part.message = child;
        }
        return { at: end.at, boundary: end.boundary };
      }
      part.headerSize = part.bodyStart - part.headerStart + (this.bare - bare0);
      this.open.push({ part, lf0: this.lf, bare0: this.bare });
      if (own) return null;
      if (!kind.message || !depthOk) return null;
      const child = this.createPart(part.depth + 1, this.pos);
      part.message = child;
      part = child;
      mimeChild = false;
      parentDigest = false;
    }
  }

  /** Read header lines until a blank line, a boundary line or the end. */
  private scanHeader(part: MimePart): HeaderEnd {
    const raw = this.raw;
    const n = this.n;
    const fields: HeaderField[] = part.headers;
    let field: HeaderField | null = null;
    let prevEol = 0;
    part.headerStart = this.pos;
    for (;;) {
      const at = this.pos;
      if (at >= n) {
        part.headerEnd = part.bodyStart = n;
        return { kind: 'eof' };
      }
      const c = raw[at]!;
      if (c === 0x2d && raw[at + 1] === 0x2d && this.boundaries.length > 0) {
        const b = this.match(at);
        if (b !== null && b.part !== part) {
          part.headerEnd = at - prevEol;
          return { kind: 'cut', at, boundary: b, eol: prevEol };
        }
      }
      const lfAt = raw.indexOf(0x0a, at);
      const lineEnd = lfAt < 0 ? n : lfAt;
      const next = lfAt < 0 ? n : lfAt + 1;
      if (lineEnd === at || (lfAt >= 0 && lineEnd === at + 1 && c === 0x0d)) {
        part.headerEnd = at;
        part.bodyStart = next;
        this.countLf(lfAt);
        this.pos = next;
        return { kind: 'eoh' };
      }
      if ((c === 0x20 || c === 0x09) && field !== null) {
        field.end = next;
      } else {
        let colon = -1;
        for (let i = at; i < lineEnd; i++) {
          if (raw[i] === 0x3a) {
            colon = i;
            break;
          }
        }
        let nameEnd: number;
        let valueStart: number;
        if (colon >= 0) {
          nameEnd = colon;
          while (nameEnd > at && (raw[nameEnd - 1] === 0x20 || raw[nameEnd - 1] === 0x09)) nameEnd--;
          valueStart = colon + 1;
        } else {
          // a line without a colon stays in the header but names no field (Dovecot)
          nameEnd = at;
          valueStart = at;
        }
        field = { name: nameEnd > at ? fieldName(raw, at, nameEnd) : '', start: at, valueStart, end: next };
        fields.push(field);
      }
      prevEol = lfAt < 0 ? 0 : lfAt > at && raw[lfAt - 1] === 0x0d ? 2 : 1;
      this.countLf(lfAt);
      this.pos = next;
    }
  }

  private countLf(lfAt: number): void {
    if (lfAt < 0) return;
    this.lf++;
    if (lfAt === 0 || this.raw[lfAt - 1] !== 0x0d) this.bare++;
  }

  /** Close the innermost open part at `end`, given LF counters at `end`. */
  private closeTop(end: number, lf: number, bare: number): void {
    const o = this.open.pop()!;
    const p = o.part;
    p.bodyEnd = end;
    p.lines = lf - o.lf0;
    p.size = end - p.bodyStart + (bare - o.bare0);
  }

  /** A boundary line at `at` (its "--") for boundary `b`. */
  private boundaryAt(at: number, b: Boundary, firstLine: boolean): Pending | null {
    const raw = this.raw;
    let end = at;
    let lf = this.lf;
    let bare = this.bare;
    if (!firstLine) {
      // the line break before the boundary belongs to the boundary
      lf--;
      if (at >= 2 && raw[at - 2] === 0x0d) end = at - 2;
      else {
        end = at - 1;
        bare--;
      }
    }
    while (this.open.length > 0 && this.open[this.open.length - 1]!.part !== b.part) this.closeTop(end, lf, bare);
    const idx = this.boundaries.indexOf(b);
    const len = b.buf.length;
    const closing = at + 2 + len + 2 <= this.n && raw[at + 2 + len] === 0x2d && raw[at + 3 + len] === 0x2d;
    this.boundaries.length = closing ? idx : idx + 1;
    // skip the rest of the boundary line
    const lfAt = raw.indexOf(0x0a, at);
    this.countLf(lfAt);
    this.pos = lfAt < 0 ? this.n : lfAt + 1;
    if (closing || this.capped) return null;
    const parent = b.part;
    const child = this.createPart(parent.depth + 1, this.pos);
    parent.children.push(child);
    return this.startPart(child, true, parent.subtype === 'digest');
  }

  /** Scan body lines of the innermost open part until a boundary or the end. */
  private loop(pending: Pending | null): void {
    const raw = this.raw;
    const n = this.n;
    for (;;) {
      while (pending !== null) pending = this.boundaryAt(pending.at, pending.boundary, true);
      const segStart = this.pos;
      if (this.open.length === 0) return;
      let found: Boundary | null = null;
      let at = this.pos;
      while (at < n) {
        if (raw[at] === 0x2d && raw[at + 1] === 0x2d && this.boundaries.length > 0) {
          found = this.match(at);
          if (found !== null) break;
        }
        const lfAt = raw.indexOf(0x0a, at);
        if (lfAt < 0) {
          at = n;
          break;
        }
        this.lf++;
        if (raw[lfAt - 1] !== 0x0d) this.bare++;
        at = lfAt + 1;
      }
      this.pos = at;
      if (found === null) {
        while (this.open.length > 0) this.closeTop(n, this.lf, this.bare);
        return;
      }
      pending = this.boundaryAt(at, found, at === segStart);
    }
  }
}

/**
 * Field names met before, keyed by length, first and last byte: a mailbox repeats a few dozen
 * names, and one new string per field was a large share of the indexer's time and garbage.
 * Bounded, so odd names in hostile mail cannot grow it.
 */
const NAMES = new Map<number, string[]>();
const NAME_MAX = 40;
const NAMES_MAX = 2048;
let namesHeld = 0;

/** The latin1 string of raw[start, end), shared with earlier fields of the same name. */
function fieldName(raw: Buffer, start: number, end: number): string {
  const len = end - start;
  if (len > NAME_MAX) return raw.toString('latin1', start, end);
  const key = len | (raw[start]! << 8) | (raw[end - 1]! << 16);
  const known = NAMES.get(key);
  if (known !== undefined) {
    for (const name of known) {
      let i = 1;
      while (i < len && name.charCodeAt(i) === raw[start + i]) i++;
      if (i >= len) return name;
    }
  }
  const name = raw.toString('latin1', start, end);
  if (namesHeld < NAMES_MAX) {
    namesHeld++;
    if (known !== undefined) known.push(name);
    else NAMES.set(key, [name]);
  }
  return name;
}

/** Lower-cased names of the fields analyze() reads, by field name as written; others map to "". */
const KINDS = new Map<string, string>();

/** "mime-version" or a lower-cased "content-*" name for the fields analyze() reads, else "" (memoised: names repeat). */
function fieldKind(name: string): string {
  let kind = KINDS.get(name);
  if (kind === undefined) {
    const lower = name.toLowerCase();
    kind = lower === 'mime-version' || lower.startsWith('content-') ? lower : '';
    // Bounded like NAMES; a name past the bound is simply worked out again.
    if (KINDS.size < NAMES_MAX) KINDS.set(name, kind);
  }
  return kind;
}

/** A value up to its first NUL (Dovecot keeps these as C strings). */
function cString(s: string): string {
  const nul = s.indexOf('\0');
  return nul < 0 ? s : s.slice(0, nul);
}

/** Read a part's Content-* fields (Dovecot's rules on which occurrence wins) and derive its kind. */
function analyze(raw: Buffer, part: MimePart, mimeChild: boolean, parentDigest: boolean): PartKind {
  let isMime = mimeChild;
  let ctSeen = false;
  let ctString = '';
  let ctRet = -1;
  let ctParams: ReturnType<typeof parseParams> = [];
  let encodingSeen = false;
  let dispositionWithParams = false;
  for (const f of part.headers) {
    const lower = fieldKind(f.name);
    if (lower === '') continue;
    if (lower === 'mime-version') {
      isMime = true;
      continue;
    }
    switch (lower) {
      case 'content-type': {
        isMime = true;
        if (ctSeen) break;
        ctSeen = true;
        const sc = new Scanner(fieldValue(raw, f));
        sc.skipLwsp();
        ctRet = sc.contentType();
        ctString = sc.out;
        if (ctRet >= 0) ctParams = parseParams(sc);
        break;
      }
      case 'content-transfer-encoding': {
        if (encodingSeen) break;
        encodingSeen = true;
        const sc = new Scanner(fieldValue(raw, f));
        sc.skipLwsp();
        if (sc.mimeToken() >= 0 && sc.skipLwsp() === 0 && sc.out.length > 0) part.encoding = sc.out;
        else encodingSeen = false;
        break;
      }
      case 'content-id':
        part.id ??= cString(fieldValue(raw, f));
        break;
      case 'content-md5':
        part.md5 ??= cString(fieldValue(raw, f));
        break;
      case 'content-description':
        part.description ??= cString(fieldValue(raw, f));
        break;
      case 'content-location':
        part.location ??= cString(fieldValue(raw, f));
        break;
      case 'content-language': {
        if (part.language !== null) break;
        const sc = new Scanner(fieldValue(raw, f));
        const langs: string[] = [];
        sc.skipLwsp();
        for (;;) {
          sc.out = '';
          if (sc.atom() < 0) break;
          langs.push(sc.out);
          if (sc.atEnd() || sc.cur() !== 0x2c) break;
          sc.pos++;
          sc.skipLwsp();
        }
        if (langs.length > 0) part.language = langs;
        break;
      }
      case 'content-disposition': {
        // a later field replaces one that had no parameters (Dovecot)
        if (dispositionWithParams) break;
        const sc = new Scanner(fieldValue(raw, f));
        sc.skipLwsp();
        if (sc.mimeToken() < 0) break;
        part.disposition = sc.out;
        part.dispositionParams = parseParams(sc);
        dispositionWithParams = part.dispositionParams.length > 0;
        break;
      }
    }
  }
  const kind: PartKind = { multipart: false, digest: false, message: false, boundary: null };
  if (!isMime) {
    // without MIME-Version or Content-Type, Content-* fields do not count
    part.encoding = part.id = part.md5 = part.description = part.location = part.disposition = null;
    part.language = null;
    part.dispositionParams = [];
  }
  if (!ctSeen || !isMime) {
    if (parentDigest) {
      kind.message = true;
      part.type = 'message';
      part.subtype = 'rfc822';
      part.text = false;
    }
    return kind;
  }
  const slash = ctString.indexOf('/');
  part.contentType = slash < 0 ? ctString : ctString.slice(0, slash);
  part.contentSubtype = slash < 0 ? null : ctString.slice(slash + 1);
  if (ctRet >= 0) part.params = ctParams;
  part.type = part.contentType.toLowerCase();
  part.subtype = (part.contentSubtype ?? '').toLowerCase();
  part.text = part.type === 'text';
  const lowerCt = ctString.toLowerCase();
  if (lowerCt === 'message/rfc822' || lowerCt === 'message/global') {
    // message/global nests like message/rfc822 (RFC 9051 7.5.2; Dovecot 2.3 treats it as opaque)
    kind.message = true;
  } else if (lowerCt.startsWith('multipart/')) {
    kind.multipart = true;
    kind.digest = lowerCt === 'multipart/digest';
    if (ctRet >= 0) {
      for (const p of ctParams) {
        if (p.name.toLowerCase() === 'boundary') {
          kind.boundary = p.value;
          break;
        }
      }
    }
  }
  return kind;
}

/** Index a message: never throws, whatever the bytes. */
export function buildIndex(raw: Buffer): MessageIndex {
  return new Indexer(raw).run();
}

/** Index of the top-level header only (see Indexer.runHeader). */
export function buildHeaderIndex(raw: Buffer): { index: MessageIndex; complete: boolean } {
  return new Indexer(raw).runHeader();
}
