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

function readSeqNumber(text: string): SeqNumber {
  const c = text.charCodeAt(at);
  if (c === 42 /* * */) {
    at++;
    return '*';
  }
  // nz-number = digit-nz *DIGIT: no zero, no leading zeros.
  if (c < 49 || c > 57) throw new ProtocolSyntaxError(`Invalid sequence set: ${clip(text)}`);
  let n = c - 48;
  at++;
  for (;;) {
    const d = text.charCodeAt(at);
    if (d < 48 || d > 57 || Number.isNaN(d)) break;
    n = n * 10 + (d - 48);
    if (n > MAX_NZ) throw new ProtocolSyntaxError(`Sequence number out of range: ${clip(text)}`);
    at++;
  }
  return n;
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/** Parse "1:3,7,9:*" or "$"; throws ProtocolSyntaxError on anything else. */
export function parseSequenceSet(text: string): SequenceSet {
  if (text === '$') return { kind: 'saved' };
  const n = text.length;
  if (n === 0) throw new ProtocolSyntaxError('Empty sequence set');
  const ranges: SeqRange[] = [];
  at = 0;
  for (;;) {
    const start = readSeqNumber(text);
    let end = start;
    if (text.charCodeAt(at) === 58 /* : */) {
      at++;
      end = readSeqNumber(text);
    }
    ranges.push({ start, end });
    if (at === n) break;
    if (text.charCodeAt(at) !== 44 /* , */) throw new ProtocolSyntaxError(`Invalid sequence set: ${clip(text)}`);
    at++;
  }
  return { kind: 'ranges', ranges };
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
