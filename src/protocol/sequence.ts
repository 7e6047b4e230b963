/**
 * Sequence sets (RFC 3501 9 `sequence-set`, RFC 5182 `$`): parse, expand against the numbers in
 * use, and format compactly. Numbers are message sequence numbers or UIDs alike.
 */
import type { SeqNumber, SeqRange, SequenceSet } from './ast.js';

/** A syntax error in IMAP input; `code` is the response code to send with the BAD, if any. */
export class ProtocolSyntaxError extends Error {
  /** Response code such as BADCHARSET, TOOBIG or LIMIT. */
  readonly code?: string;

  constructor(message: string, code?: string) {
    super(message);
    this.name = 'ProtocolSyntaxError';
    if (code !== undefined) this.code = code;
  }
}

const MAX_NZ = 4294967295;

// Position shared by the helpers below, so that number parsing returns no tuples (hot path).
let at = 0;

function syntax(bytes: Uint8Array, start: number, end: number, what: string): never {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset + start, Math.min(end - start, 40)).toString('latin1');
  throw new ProtocolSyntaxError(`${what}: ${text}${end - start > 40 ? '...' : ''}`);
}

function readSeqNumber(bytes: Uint8Array, start: number, end: number): SeqNumber {
  const c = at < end ? bytes[at]! : -1;
  if (c === 42 /* * */) {
    at++;
    return '*';
  }
  // nz-number = digit-nz *DIGIT: no zero, no leading zeros.
  if (c < 49 || c > 57) syntax(bytes, start, end, 'Invalid sequence set');
  let n = c - 48;
  at++;
  while (at < end) {
    const d = bytes[at]!;
    if (d < 48 || d > 57) break;
    n = n * 10 + (d - 48);
    if (n > MAX_NZ) syntax(bytes, start, end, 'Sequence number out of range');
    at++;
  }
  return n;
}

/** Parse a sequence set from bytes [start, end) (the parser's hot path); throws ProtocolSyntaxError. */
export function parseSequenceBytes(bytes: Uint8Array, start: number, end: number): SequenceSet {
  if (end - start === 1 && bytes[start] === 36 /* $ */) return { kind: 'saved' };
  if (end <= start) throw new ProtocolSyntaxError('Empty sequence set');
  const ranges: SeqRange[] = [];
  at = start;
  for (;;) {
    const first = readSeqNumber(bytes, start, end);
    let last = first;
    if (at < end && bytes[at] === 58 /* : */) {
      at++;
      last = readSeqNumber(bytes, start, end);
    }
    ranges.push({ start: first, end: last });
    if (at === end) break;
    if (bytes[at] !== 44 /* , */) syntax(bytes, start, end, 'Invalid sequence set');
    at++;
  }
  return { kind: 'ranges', ranges };
}

/** Parse "1:3,7,9:*" or "$"; throws ProtocolSyntaxError on anything else. */
export function parseSequenceSet(text: string): SequenceSet {
  const bytes = Buffer.from(text, 'latin1');
  // Non-Latin-1 characters would be truncated to bytes by the encoding: refuse them outright.
  if (bytes.length !== text.length || /[^\x21-\x7e]/.test(text)) {
    if (text.length === 0) throw new ProtocolSyntaxError('Empty sequence set');
    throw new ProtocolSyntaxError(`Invalid sequence set: ${text.length > 40 ? `${text.slice(0, 40)}...` : text}`);
  }
  return parseSequenceBytes(bytes, 0, bytes.length);
}

/** First index in ascending `values` whose value is >= x. */
function lowerBound(values: readonly number[], x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The existing numbers a set names, ascending and deduplicated. `values` are the numbers in use
 * (ascending); `*` is the largest of them, so "20:*" still names the largest UID when it is below
 * 20 (RFC 3501 6.4.8). `saved` is the SEARCHRES result that `$` stands for.
 */
export function expandSequenceSet(set: SequenceSet, values: number[], saved?: number[]): number[] {
  if (values.length === 0) return [];
  if (set.kind === 'saved') {
    if (!saved || saved.length === 0) return [];
    const sorted = isAscending(saved) ? saved : [...saved].sort((a, b) => a - b);
    const out: number[] = [];
    let last = -1;
    for (const v of sorted) {
      if (v === last) continue;
      last = v;
      const i = lowerBound(values, v);
      if (i < values.length && values[i] === v) out.push(v);
    }
    return out;
  }
  const max = values[values.length - 1]!;
  // Turn each range into a half-open index interval over `values`, then merge the intervals.
  const spans: Array<[number, number]> = [];
  for (const r of set.ranges) {
    let a = r.start === '*' ? max : r.start;
    let b = r.end === '*' ? max : r.end;
    if (a > b) [a, b] = [b, a];
    const i = lowerBound(values, a);
    const j = lowerBound(values, b + 1);
    if (i < j) spans.push([i, j]);
  }
  if (spans.length === 0) return [];
  if (spans.length > 1) spans.sort((x, y) => x[0] - y[0]);
  const out: number[] = [];
  let [curI, curJ] = spans[0]!;
  for (let k = 1; k < spans.length; k++) {
    const [i, j] = spans[k]!;
    if (i <= curJ) {
      if (j > curJ) curJ = j;
    } else {
      for (let x = curI; x < curJ; x++) out.push(values[x]!);
      curI = i;
      curJ = j;
    }
  }
  for (let x = curI; x < curJ; x++) out.push(values[x]!);
  return out;
}

function isAscending(a: readonly number[]): boolean {
  for (let i = 1; i < a.length; i++) if (a[i - 1]! > a[i]!) return false;
  return true;
}

/** Compact form of a list of numbers: [1,2,3,7,9,10] → "1:3,7,9:10" (sorted and deduplicated first). */
export function formatSequenceSet(numbers: number[]): string {
  if (numbers.length === 0) return '';
  const sorted = isAscending(numbers) ? numbers : [...numbers].sort((a, b) => a - b);
  const parts: string[] = [];
  let start = sorted[0]!;
  let prev = start;
  for (let i = 1; i < sorted.length; i++) {
    const v = sorted[i]!;
    if (v === prev) continue;
    if (v === prev + 1) {
      prev = v;
      continue;
    }
    parts.push(start === prev ? `${start}` : `${start}:${prev}`);
    start = prev = v;
  }
  parts.push(start === prev ? `${start}` : `${start}:${prev}`);
  return parts.join(',');
}
