/**
 * Rules shared by the backends: mailbox names, flag arithmetic, UIDVALIDITY, quota checks.
 */
import { describe, expect, it } from 'vitest';
import {
  applyFlagUpdate,
  canonicalFlags,
  canonicalMailboxName,
  checkQuota,
  isSelfOrDescendant,
  newObjectId,
  nextUidValidity,
  parentsOf,
  toKiB,
} from '../../src/store/common.js';
import { StoreError } from '../../src/store/contract.js';

describe('canonicalMailboxName', () => {
  it('canonicalises INBOX as the first level only', () => {
    expect(canonicalMailboxName('inbox')).toBe('INBOX');
    expect(canonicalMailboxName('iNbOx/Sub')).toBe('INBOX/Sub');
    expect(canonicalMailboxName('Archive/inbox')).toBe('Archive/inbox');
    expect(canonicalMailboxName('INBOXES')).toBe('INBOXES');
  });

  it('allows dots, spaces and Unicode inside levels', () => {
    for (const n of ['a.b/.hidden/c..d', 'Sent Items', 'Entwürfe/日本語', '%', '...']) expect(canonicalMailboxName(n)).toBe(n);
  });

  it('refuses bad names with CANNOT and a reason', () => {
    for (const [name, why] of [
      ['', /empty/],
      ['a\u0085b', /control/],
      ['x'.repeat(2000), /longer/],
      ['a/', /start or end/],
      ['a//b', /empty level/],
      ['a/..', /'\.\.' level/],
    ] as const) {
      let err: unknown;
      try {
        canonicalMailboxName(name);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe('CANNOT');
      expect((err as StoreError).message).toMatch(why);
    }
  });

  it('knows parents and descendants', () => {
    expect(parentsOf('a/b/c')).toEqual(['a', 'a/b']);
    expect(parentsOf('a')).toEqual([]);
    expect(isSelfOrDescendant('a/b', 'a')).toBe(true);
    expect(isSelfOrDescendant('a', 'a')).toBe(true);
    expect(isSelfOrDescendant('ab', 'a')).toBe(false);
  });
});

describe('flags', () => {
  it('canonicalFlags drops \\Recent and unknown system flags and dedupes', () => {
    expect(canonicalFlags(['\\seen', '\\Recent', '\\Foo', '$A', '$a', '\\SEEN'])).toEqual(['\\Seen', '$A']);
    expect(canonicalFlags(undefined)).toEqual([]);
    expect(() => canonicalFlags(['a(b'])).toThrow(StoreError);
    expect(() => canonicalFlags(['a]'])).toThrow(/invalid flag keyword/);
  });

  it('applyFlagUpdate reports no change as null', () => {
    expect(applyFlagUpdate(['\\Seen'], 'add', ['\\Seen'])).toBeNull();
    expect(applyFlagUpdate(['$Junk'], 'add', ['$junk'])).toBeNull();
    expect(applyFlagUpdate([], 'remove', ['\\Seen'])).toBeNull();
    expect(applyFlagUpdate(['$Junk', '\\Seen'], 'set', ['\\Seen', '$JUNK'])).toBeNull();
    expect(applyFlagUpdate(['a'], 'add', ['b'])).toEqual(['a', 'b']);
    expect(applyFlagUpdate(['a', 'B'], 'remove', ['b'])).toEqual(['a']);
    expect(applyFlagUpdate(['a', 'B'], 'set', ['b', 'c'])).toEqual(['B', 'c']);
    expect(applyFlagUpdate(['a'], 'set', [])).toEqual([]);
  });
});

describe('UIDVALIDITY, ids, quota', () => {
  it('nextUidValidity is increasing, nonzero and 32-bit', () => {
    const now = Date.UTC(2030, 0, 1);
    const a = nextUidValidity(0, now);
    expect(a).toBe(Math.floor(now / 1000));
    expect(nextUidValidity(a, now)).toBe(a + 1);
    expect(nextUidValidity(a + 100, now)).toBe(a + 101);
    const wrapped = nextUidValidity(0xffffffff, now);
    expect(wrapped).toBeGreaterThan(0);
    expect(wrapped).toBeLessThanOrEqual(0xffffffff);
  });

  it('object ids fit RFC 8474', () => {
    const id = newObjectId('M');
    expect(id).toMatch(/^M[A-Za-z0-9_-]{16}$/);
    expect(newObjectId('M')).not.toBe(id);
  });

  it('toKiB rounds up and checkQuota refuses going over', () => {
    expect(toKiB(0)).toBe(0);
    expect(toKiB(1)).toBe(1);
    expect(toKiB(1024)).toBe(1);
    expect(toKiB(1025)).toBe(2);
    expect(() => checkQuota({ messagesLimit: 2 }, 0, 2, 1, 1)).toThrow(/message count/);
    expect(() => checkQuota({ storageLimitKiB: 1 }, 1000, 0, 25, 1)).toThrow(/storage limit/);
    expect(() => checkQuota({ storageLimitKiB: 1 }, 1000, 0, 24, 1)).not.toThrow();
    expect(() => checkQuota(undefined, 1e12, 1e9, 1, 1)).not.toThrow();
  });
});
