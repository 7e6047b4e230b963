/**
 * Rules every backend shares, so they agree: mailbox name validation and canonical form,
 * flag canonicalisation and STORE arithmetic, UIDVALIDITY generation, object ids (RFC 8474).
 */
import { randomBytes } from 'node:crypto';
import { StoreError, type FlagUpdate } from './contract.js';

/** The hierarchy separator of store mailbox names. */
export const SEPARATOR = '/';

const MAX_NAME_LENGTH = 1024;

/**
 * Validate a mailbox name and return its canonical form: a first segment equal to "INBOX" in any
 * case becomes "INBOX" (so "inbox/x" is "INBOX/x"). Throws StoreError CANNOT for an empty name,
 * control characters, a leading or trailing '/', an empty segment ('//'), or a '.' or '..' segment.
 */
export function canonicalMailboxName(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new StoreError('CANNOT', 'mailbox name must not be empty');
  if (name.length > MAX_NAME_LENGTH) throw new StoreError('CANNOT', `mailbox name longer than ${MAX_NAME_LENGTH} characters`);
  if (/[\x00-\x1f\x7f-\x9f]/.test(name)) throw new StoreError('CANNOT', 'mailbox name contains a control character');
  if (name.startsWith(SEPARATOR) || name.endsWith(SEPARATOR)) {
    throw new StoreError('CANNOT', `mailbox name must not start or end with '${SEPARATOR}'`);
  }
  const segments = name.split(SEPARATOR);
  for (const s of segments) {
    if (s === '') throw new StoreError('CANNOT', `mailbox name contains an empty level ('${SEPARATOR}${SEPARATOR}')`);
    if (s === '.' || s === '..') throw new StoreError('CANNOT', `mailbox name contains a '${s}' level`);
  }
  if (segments[0]!.toUpperCase() === 'INBOX') segments[0] = 'INBOX';
  return segments.join(SEPARATOR);
}

/** True for the canonical name "INBOX" itself (not its children). */
export function isInbox(canonicalName: string): boolean {
  return canonicalName === 'INBOX';
}

/** Ancestors of a canonical name, outermost first: "a/b/c" -> ["a", "a/b"]. */
export function parentsOf(canonicalName: string): string[] {
  const segs = canonicalName.split(SEPARATOR);
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) out.push(segs.slice(0, i).join(SEPARATOR));
  return out;
}

/** True when `name` is `ancestor` or lies below it. */
export function isSelfOrDescendant(name: string, ancestor: string): boolean {
  return name === ancestor || name.startsWith(ancestor + SEPARATOR);
}

/** The five storable system flags in canonical spelling (RFC 3501 2.3.2; \Recent is not storable). */
export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'] as const;
const SYSTEM_BY_LOWER = new Map<string, string>(SYSTEM_FLAGS.map((f) => [f.toLowerCase(), f]));
// atom-char minus resp-specials (RFC 3501 9): what a flag keyword may contain.
const BAD_KEYWORD_CHAR = /[\x00-\x20\x7f(){%*"\\\]]/;

/**
 * Canonical form of one flag: system flags in canonical case; keywords as given. Returns null for
 * flags that are not stored (\Recent, unknown backslash flags). Throws StoreError CANNOT for a keyword
 * that is not an IMAP atom.
 */
export function canonicalFlag(flag: string): string | null {
  if (flag.startsWith('\\')) return SYSTEM_BY_LOWER.get(flag.toLowerCase()) ?? null;
  if (flag.length === 0 || BAD_KEYWORD_CHAR.test(flag)) throw new StoreError('CANNOT', `invalid flag keyword ${JSON.stringify(flag)}`);
  return flag;
}

/** Canonicalise a flag list: drop unstorable flags and case-insensitive duplicates (the first spelling wins). */
export function canonicalFlags(flags: readonly string[] | undefined): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of flags ?? []) {
    const c = canonicalFlag(f);
    if (c === null) continue;
    const key = c.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(c);
  }
  return out;
}

/**
 * Apply a STORE operation to a message's flags. `flags` must already be canonical (canonicalFlags).
 * Returns the new list, or null when nothing changes (keywords compare case-insensitively; a stored
 * keyword keeps its spelling).
 */
export function applyFlagUpdate(current: readonly string[], action: FlagUpdate['action'], flags: readonly string[]): string[] | null {
  const have = new Set(current.map((f) => f.toLowerCase()));
  const want = new Set(flags.map((f) => f.toLowerCase()));
  if (action === 'add') {
    const added = flags.filter((f) => !have.has(f.toLowerCase()));
    return added.length ? [...current, ...added] : null;
  }
  if (action === 'remove') {
    const kept = current.filter((f) => !want.has(f.toLowerCase()));
    return kept.length === current.length ? null : kept;
  }
  const kept = current.filter((f) => want.has(f.toLowerCase()));
  const added = flags.filter((f) => !have.has(f.toLowerCase()));
  return kept.length === current.length && added.length === 0 ? null : [...kept, ...added];
}

/** True when a flag list holds the given system flag (canonical lists only). */
export function hasFlag(flags: readonly string[], flag: (typeof SYSTEM_FLAGS)[number]): boolean {
  return flags.includes(flag);
}

/**
 * The next UIDVALIDITY for a user: greater than the last one handed out (so a re-created or renamed-into
 * name never repeats an old value), at least the current time in seconds, nonzero, and within 32 bits.
 */
export function nextUidValidity(last: number, nowMs: number = Date.now()): number {
  let v = Math.max(last + 1, Math.floor(nowMs / 1000));
  // Past 2106 or after 4 billion creations: wrap, still nonzero.
  if (v > 0xffffffff) v = (v % 0xffffffff) + 1;
  return v;
}

/** A fresh RFC 8474 object id: the prefix and 16 characters of [A-Za-z0-9_-]. */
export function newObjectId(prefix: string): string {
  return prefix + randomBytes(12).toString('base64url');
}

/** RFC 9208 STORAGE usage: bytes to KiB, rounded up. */
export function toKiB(bytes: number): number {
  return Math.ceil(bytes / 1024);
}

/** Quota limits a store may enforce on append and copy (RFC 9208). */
export interface QuotaLimits {
  storageLimitKiB?: number;
  messagesLimit?: number;
}

/** Throw StoreError OVERQUOTA when adding `addBytes` in `addCount` messages would pass a limit. */
export function checkQuota(limits: QuotaLimits | undefined, usedBytes: number, usedCount: number, addBytes: number, addCount: number): void {
  if (!limits || addCount === 0) return;
  if (limits.messagesLimit !== undefined && usedCount + addCount > limits.messagesLimit) {
    throw new StoreError('OVERQUOTA', `message count limit (${limits.messagesLimit}) reached`);
  }
  if (limits.storageLimitKiB !== undefined && toKiB(usedBytes + addBytes) > limits.storageLimitKiB) {
    throw new StoreError('OVERQUOTA', `storage limit (${limits.storageLimitKiB} KiB) reached`);
  }
}

/** Call every listener with an event; a throwing listener does not stop the others or the store. */
export function emitTo<E>(listeners: Iterable<(e: E) => void>, event: E): void {
  for (const l of [...listeners]) {
    try {
      l(event);
    } catch {
      // a listener's bug is its own; the change already happened
    }
  }
}
