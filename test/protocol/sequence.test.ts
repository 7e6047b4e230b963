import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { expandSequenceSet, formatSequenceSet, parseSequenceSet, ProtocolSyntaxError } from '../../src/protocol/sequence.js';

describe('parseSequenceSet', () => {
  it('numbers, ranges, * and $', () => {
    expect(parseSequenceSet('1')).toEqual({ kind: 'ranges', ranges: [{ start: 1, end: 1 }] });
    expect(parseSequenceSet('1:3,7,9:*')).toEqual({
      kind: 'ranges',
      ranges: [
        { start: 1, end: 3 },
        { start: 7, end: 7 },
        { start: 9, end: '*' },
      ],
    });
    expect(parseSequenceSet('*:4')).toEqual({ kind: 'ranges', ranges: [{ start: '*', end: 4 }] });
    expect(parseSequenceSet('5:2')).toEqual({ kind: 'ranges', ranges: [{ start: 5, end: 2 }] });
    expect(parseSequenceSet('4294967295')).toEqual({ kind: 'ranges', ranges: [{ start: 4294967295, end: 4294967295 }] });
    expect(parseSequenceSet('$')).toEqual({ kind: 'saved' });
  });

  it('rejects malformed sets', () => {
    for (const s of ['', '0', '01', '1:0', '4294967296', '1,', ',1', '1,,2', '1::2', '1:2:3', 'a', '1 2', '$,1', '1,$', '**', '-1']) {
      expect(() => parseSequenceSet(s), s).toThrow(ProtocolSyntaxError);
    }
  });
});

describe('expandSequenceSet', () => {
  const seqs = [1, 2, 3, 4, 5];
  const uids = [3, 7, 10, 20];

  it('expands against sequence numbers', () => {
    expect(expandSequenceSet(parseSequenceSet('2:4'), seqs)).toEqual([2, 3, 4]);
    expect(expandSequenceSet(parseSequenceSet('4:2,1,5:*'), seqs)).toEqual([1, 2, 3, 4, 5]);
    expect(expandSequenceSet(parseSequenceSet('3:9'), seqs)).toEqual([3, 4, 5]);
    expect(expandSequenceSet(parseSequenceSet('7'), seqs)).toEqual([]);
  });

  it('keeps only existing UIDs, ascending and deduplicated', () => {
    expect(expandSequenceSet(parseSequenceSet('1:8,7,3'), uids)).toEqual([3, 7]);
    expect(expandSequenceSet(parseSequenceSet('20,1:3,10'), uids)).toEqual([3, 10, 20]);
  });

  it('* is the largest existing number, even below the range start (RFC 3501 6.4.8)', () => {
    expect(expandSequenceSet(parseSequenceSet('*'), uids)).toEqual([20]);
    expect(expandSequenceSet(parseSequenceSet('25:*'), uids)).toEqual([20]);
    expect(expandSequenceSet(parseSequenceSet('8:*'), uids)).toEqual([10, 20]);
  });

  it('empty mailbox gives nothing', () => {
    expect(expandSequenceSet(parseSequenceSet('1:*'), [])).toEqual([]);
  });

  it('$ uses the saved result, filtered to existing numbers', () => {
    expect(expandSequenceSet({ kind: 'saved' }, uids, [20, 3, 4, 3])).toEqual([3, 20]);
    expect(expandSequenceSet({ kind: 'saved' }, uids)).toEqual([]);
  });

  it('matches a naive expansion', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 30 }),
        fc.array(fc.tuple(fc.oneof(fc.integer({ min: 1, max: 70 }), fc.constant('*' as const)), fc.oneof(fc.integer({ min: 1, max: 70 }), fc.constant('*' as const))), {
          minLength: 1,
          maxLength: 5,
        }),
        (raw, ranges) => {
          const values = [...raw].sort((a, b) => a - b);
          const set = { kind: 'ranges' as const, ranges: ranges.map(([start, end]) => ({ start, end })) };
          const max = values[values.length - 1];
          const expected = values.filter((v) =>
            ranges.some(([a, b]) => {
              if (max === undefined) return false;
              const x = a === '*' ? max : a;
              const y = b === '*' ? max : b;
              return v >= Math.min(x, y) && v <= Math.max(x, y);
            }),
          );
          expect(expandSequenceSet(set, values)).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('formatSequenceSet', () => {
  it('compacts runs', () => {
    expect(formatSequenceSet([1, 2, 3, 7, 9, 10, 11, 12])).toBe('1:3,7,9:12');
    expect(formatSequenceSet([5])).toBe('5');
    expect(formatSequenceSet([])).toBe('');
    expect(formatSequenceSet([9, 1, 2, 2, 3])).toBe('1:3,9');
  });

  it('round-trips through parse and expand', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 50 }), (nums) => {
        const sorted = [...nums].sort((a, b) => a - b);
        const text = formatSequenceSet(nums);
        const all = Array.from({ length: 200 }, (_v, i) => i + 1);
        expect(expandSequenceSet(parseSequenceSet(text), all)).toEqual(sorted);
      }),
      { numRuns: 300 },
    );
  });
});
