/**
 * Sequence-set helpers the message commands share: validating a client's set against the view,
 * matching numbers against a set, formatting result sets (COPYUID, ESEARCH ALL, MODIFIED, VANISHED),
 * and finding sequence numbers in the view without O(n) scans.
 */
import type { SequenceSet } from '../../protocol/ast.js';

/**
 * True when a non-UID sequence set names a message number the view does not have. Dovecot answers
 * those with BAD "Invalid messageset" (an empty mailbox makes every explicit set invalid, `*` too).
 */
export function invalidMessageSet(set: SequenceSet, count: number): boolean {
  if (set.kind !== 'ranges') return false;
  if (count === 0) return set.ranges.length > 0;
  for (const r of set.ranges) {
    if (r.start !== '*' && r.start > count) return true;
    if (r.end !== '*' && r.end > count) return true;
  }
  return false;
}

/** True when n lies in one of the ranges; `*` stands for max (the largest number in use). */
export function inRanges(set: SequenceSet, n: number, max: number): boolean {
  if (set.kind !== 'ranges') return false;
  for (const r of set.ranges) {
    const a = r.start === '*' ? max : r.start;
    const b = r.end === '*' ? max : r.end;
    if (a <= b ? n >= a && n <= b : n >= b && n <= a) return true;
  }
  return false;
}

/**
 * Formats numbers as a sequence set in the order given, joining runs that ascend by one
 * ("1:3,7,5"). Order is kept because COPYUID pairs source and destination sets element by
 * element and ESORT's ALL lists messages in sort order; sort the input first for a canonical set.
 */
export function formatSet(nums: readonly number[]): string {
  let out = '';
  let i = 0;
  while (i < nums.length) {
    const start = nums[i];
    let j = i;
    while (j + 1 < nums.length && nums[j + 1] === nums[j] + 1) j++;
    if (out !== '') out += ',';
    out += j > i ? `${start}:${nums[j]}` : `${start}`;
    i = j + 1;
  }
  return out;
}

/** Index of uid in an ascending UID array (binary search), or -1. */
export function indexOfUid(uids: readonly number[], uid: number): number {
  let lo = 0;
  let hi = uids.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = uids[mid];
    if (v === uid) return mid;
    if (v < uid) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Numbers sorted ascending without duplicates (a new array). */
export function sortedUnique(nums: Iterable<number>): number[] {
  const out = Array.from(new Set(nums));
  out.sort((a, b) => a - b);
  return out;
}
