/**
 * A process-wide cache of ENVELOPE, BODYSTRUCTURE and BODY answers, the role Dovecot's
 * dovecot.index.cache plays: FETCH 1:* (ENVELOPE BODYSTRUCTURE) then neither reads nor parses a
 * message it has seen. Messages are immutable and an EMAILID names one message content (RFC 8474),
 * so (user, EMAILID) is a safe key. The cache is shared by all sessions and bounded in bytes, so it
 * costs nothing per connection. Values are kept pre-encoded as one atom when their wire form is
 * plain ASCII without literals (the common case), which also spares the writer the work.
 */
import { checkedAtom, type ResponseValue } from '../../protocol/values.js';
import { encodeValue } from '../../protocol/writer.js';

/** The items cached per message. */
export type CachedItem = 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY';

interface Entry {
  values: Partial<Record<CachedItem, ResponseValue>>;
  bytes: number;
  /** Value of the cache's clock when the entry was last moved to the young end. */
  stamp: number;
}

/** Default bound on the cache, in (estimated) bytes. */
export const DEFAULT_CACHE_BYTES = 32 * 1024 * 1024;

/** Rough overhead of one entry (key, Map slot, objects), bytes. */
const ENTRY_OVERHEAD = 160;

/** An LRU of structure answers bounded by estimated memory. */
export class StructureCache {
  private readonly entries = new Map<string, Entry>();
  private total = 0;
  /** Counts moves to the young end; an entry younger than half the cache is not moved again on a hit. */
  private clock = 0;

  constructor(private readonly maxBytes: number = DEFAULT_CACHE_BYTES) {}

  /** Estimated bytes held. */
  get bytes(): number {
    return this.total;
  }

  /** Number of messages with cached answers. */
  get size(): number {
    return this.entries.size;
  }

  /** The cached answer, refreshing the entry's recency; undefined on a miss. */
  get(key: string, item: CachedItem): ResponseValue | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    const v = e.values[item];
    // An approximate LRU: a hit moves the entry (a Map delete + set) only when it is in the older
    // half, so FETCH 1:* over a cached mailbox does not reorder every entry every time.
    if (v !== undefined && this.clock - e.stamp > this.entries.size >> 1) this.touch(key, e);
    return v;
  }

  /** Every cached answer of a message (one lookup for all items), refreshing its recency; undefined on a miss. */
  values(key: string): Readonly<Partial<Record<CachedItem, ResponseValue>>> | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.clock - e.stamp > this.entries.size >> 1) this.touch(key, e);
    return e.values;
  }

  /** Stores an answer; `utf8` says how the session writes strings (the pre-encoded form depends on it). */
  set(key: string, item: CachedItem, value: ResponseValue, utf8: boolean): ResponseValue {
    if (this.maxBytes <= 0) return value;
    const { stored, bytes } = compact(value, utf8);
    let e = this.entries.get(key);
    if (!e) {
      e = { values: {}, bytes: ENTRY_OVERHEAD, stamp: 0 };
      this.total += ENTRY_OVERHEAD;
    }
    e.values[item] = stored;
    e.bytes += bytes;
    this.total += bytes;
    this.touch(key, e);
    this.evict();
    return stored;
  }

  /** Moves an entry to the young end of the Map (its iteration order is the eviction order). */
  private touch(key: string, e: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, e);
    e.stamp = ++this.clock;
  }

  /** Drops everything. */
  clear(): void {
    this.entries.clear();
    this.total = 0;
  }

  private evict(): void {
    if (this.total <= this.maxBytes) return;
    for (const [k, e] of this.entries) {
      this.entries.delete(k);
      this.total -= e.bytes;
      if (this.total <= this.maxBytes) break;
    }
  }
}

/**
 * The form to keep: one atom holding the encoded text when that is 7-bit and literal-free (the
 * writer copies atoms verbatim), else the value itself. Returns an estimate of its memory.
 */
export function compact(value: ResponseValue, utf8: boolean): { stored: ResponseValue; bytes: number } {
  // Already compact (an answer read back from the store, see stored.ts): printable ASCII atoms stay as they are.
  if (value !== null && typeof value === 'object' && 'atom' in value && /^[\x20-\x7e]*$/.test(value.atom)) {
    return { stored: value.checked === true ? value : checkedAtom(value.atom), bytes: value.atom.length + 32 };
  }
  const buf = encodeValue(value, { utf8 });
  let plain = true;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (c >= 0x80 || c === 0x0d || c === 0x0a) {
      plain = false;
      break;
    }
  }
  // A string of n ASCII characters costs about n bytes in V8; a value tree several times its text.
  if (plain) return { stored: checkedAtom(buf.toString('latin1')), bytes: buf.length + 32 };
  return { stored: value, bytes: buf.length * 4 + 64 };
}

/** The cache all sessions share. */
export const structureCache = new StructureCache();

/** The cache key of a message of a user. */
export function cacheKey(user: string, emailId: string): string {
  return `${user}\0${emailId}`;
}
