/**
 * One Maildir folder: the files in cur/ and new/, the dovecot-uidlist that gives them UIDs, the
 * dovecot-keywords letters, and imapkit's cache (MODSEQs, sizes, dates). `sync()` brings the
 * in-memory state up to date with the disk; every write follows the Maildir rules (tmp/, fsync,
 * rename) and Dovecot's uidlist locking, so imapkit and Dovecot can work on one folder at once.
 *
 * Consistency across processes: a file change always happens before the cache transaction that
 * records it, and each process merges rows other processes committed (MODSEQ above what it knew)
 * before applying what its own directory scan saw, so MODSEQs only grow and every change gets one.
 */
import { promises as fs, constants as fsc, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { StoreError, type PrefixRead, type ChangeEvent, type MessageMeta, type NewMessage, type UidMapping, type FlagUpdate, type FlagUpdateResult } from '../contract.js';
import { FolderCache, type CacheRow } from './cache.js';
import { Dotlock } from './dotlock.js';
import { buildName, lettersToFlags, newBaseName, parseName, preservedLetters, servedBytes, servedSize, sortLetters, systemLetter, toCrlf, fileSizeOf, vsizeOf } from './filename.js';
import { fsyncDir, isErr, mkdirOwned, writeNewFile, writeSmallNewFile, type Owner } from './fsutil.js';
import { addKeywords, keywordIndex, keywordsStampSync, readKeywords, type KeywordTable } from './keywords.js';
import { Mutex } from './mutex.js';
import { canonicalFlags } from '../common.js';
import { appendToUidlist, formatRecord, newMailboxGuid, parseUidlist, recordExt, serializeUidlist, type Uidlist, type UidlistRecord } from './uidlist.js';
import { nextUidValidity } from './uidvalidity.js';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync, watch as nodeWatch } from 'node:fs';

/** Changes within this long before a listing may share the directory's mtime tick: list again until it passes. */
const DIRTY_MS = 1000;
/** Messages up to this size are read (and written to tmp/, all but the fsync) with synchronous calls. */
const SYNC_READ_MAX = 256 * 1024;
/** Scratch for synchronous prefix reads (never held across an await). */
let scratch = Buffer.allocUnsafe(64 * 1024);
/** toCrlf of a view into the scratch, as a Buffer of its own. */
function ownedCrlf(raw: Buffer): Buffer {
  const out = toCrlf(raw);
  return out === raw ? Buffer.from(raw) : out;
}
/** Files left in tmp/ longer than this are leftovers of a crash (Dovecot uses 36 hours too). */
const TMP_MAX_AGE_MS = 36 * 3600 * 1000;
/** File system calls of one batch (writes, renames, unlinks) in flight at once. */
const IO_CONCURRENCY = 16;

type Sub = 'new' | 'cur';
const SUBS: readonly Sub[] = ['new', 'cur'];

/**
 * What the last complete listing of new/ or cur/ saw: the directory's stat before it, when it was
 * taken, the names as readdir gave them, and our own changes since (names we placed or renamed
 * to, names we renamed away or unlinked).
 */
interface Listing {
  sig: string;
  mtimeMs: number;
  /** Date.now() before the stat. */
  at: number;
  /** null: unknown, the next sync lists the directory in full. */
  names: string[] | null;
  added: Set<string>;
  removed: Set<string>;
}

function noListing(): Listing {
  return { sig: '', mtimeMs: 0, at: 0, names: null, added: new Set(), removed: new Set() };
}

/** Names scan() ignores (dot files, and names a uidlist line could not hold). */
function skippedName(f: string): boolean {
  return f.charCodeAt(0) === 46 /* . */ || f.includes('\n') || f.includes('\r');
}

/**
 * True when a new listing holds exactly the names of the old one minus `removed` plus `added`
 * (skipped names aside). One walk over both: the same names come in the same order (readdir's are
 * sorted), so nearly every step is one string comparison, without hashing 10,000 fresh strings.
 * It proves equality whatever the order; names out of order only make it answer false.
 */
function sameListing(old: readonly string[], removed: ReadonlySet<string>, added: ReadonlySet<string>, now: readonly string[]): boolean {
  let i = 0;
  let j = 0;
  let gone = 0;
  let come = 0;
  while (i < old.length || j < now.length) {
    const a = old[i];
    const b = now[j];
    if (a !== undefined && a === b) {
      i++;
      j++;
    } else if (a !== undefined && (skippedName(a) || (removed.has(a) && ++gone > 0))) {
      i++;
    } else if (b !== undefined && (skippedName(b) || (added.has(b) && ++come > 0))) {
      j++;
    } else {
      return false;
    }
  }
  // Every name we removed was missing and every one we added was there.
  return gone === removed.size && come === added.size;
}

function mtimeMsOf(st: BigIntStats): number {
  return Number(st.mtimeNs / 1_000_000n);
}

/** Run fn over items with at most `limit` in flight; results in item order. Every call has settled when it returns or throws. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed: { err: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw (failed as { err: unknown }).err;
  return out;
}

/** What a folder needs from its user store. */
export interface FolderEnv {
  root: string;
  owner: Owner | undefined;
  /** Cache database path for a folder directory, or null to keep it in memory. */
  cacheFile(dir: string): string | null;
  /** Report a change to watchers. */
  emit(event: ChangeEvent): void;
  /** Report a problem worth a log line. */
  warn(message: string): void;
  lockTimeoutMs?: number;
  staleLockMs?: number;
}

/** One message as the folder knows it. */
interface Entry {
  uid: number;
  base: string;
  /** "cur/<file>" or "new/<file>". */
  name: string;
  flags: string[];
  modseq: bigint;
  size: number;
  mtime: number;
  savedate: number;
  guid: string;
  /** EMAILID, computed once (a hash of the GUID). */
  id: string | undefined;
  /** The MessageMeta last built for this entry, valid while its modseq is the entry's (flags never change without a new MODSEQ). */
  meta: MessageMeta | undefined;
  /** The modseq `meta` was built for. */
  metaFor: bigint;
}

/** An entry; every one is made here, with all fields in one order, so property loads on 10,000 of them stay monomorphic. */
function makeEntry(uid: number, base: string, name: string, flags: string[], modseq: bigint, size: number, mtime: number, savedate: number, guid: string): Entry {
  return { uid, base, name, flags, modseq, size, mtime, savedate, guid, id: undefined, meta: undefined, metaFor: -1n };
}

/** What changed, for events. */
interface Delta {
  append: boolean;
  flags: boolean;
  expunge: boolean;
}

function noDelta(): Delta {
  return { append: false, flags: false, expunge: false };
}

function sigOf(st: BigIntStats | null): string {
  return st ? `${st.ino}:${st.mtimeNs}:${st.size}` : '';
}

async function statOrNull(p: string): Promise<BigIntStats | null> {
  try {
    return await fs.stat(p, { bigint: true });
  } catch (err) {
    if (isErr(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}

/** statOrNull done synchronously: the quiet check of every sync is three stats, cheaper than three thread-pool hops. */
function statSyncOrNull(p: string): BigIntStats | null {
  try {
    return statSync(p, { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch (err) {
    if (isErr(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}

/** Sort base names by their leading timestamp, then as text (delivery order for the usual names). */
function compareBases(a: string, b: string): number {
  const ta = parseInt(a, 10);
  const tb = parseInt(b, 10);
  if (ta !== tb && Number.isFinite(ta) && Number.isFinite(tb)) return ta - tb;
  return a < b ? -1 : a > b ? 1 : 0;
}

function sameFlags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((f) => s.has(f));
}

const EMAILID_SCRATCH = Buffer.alloc(768);

/** EMAILID (RFC 8474 objectid) from a message GUID: same GUID, same id. */
export function emailIdOf(guid: string): string {
  // The GUID itself in the objectid alphabet (cheap, and unique as GUIDs are); a hash only for long ones.
  // (Through one scratch buffer: this runs for every message of a cold SELECT.)
  const n = guid.length * 3 <= EMAILID_SCRATCH.length ? EMAILID_SCRATCH.write(guid, 'utf8') : -1;
  const enc = n >= 0 ? EMAILID_SCRATCH.toString('base64url', 0, n) : Buffer.from(guid).toString('base64url');
  return enc.length <= 200 ? 'M' + enc : 'H' + createHash('sha256').update(guid).digest('base64url').slice(0, 32);
}

/**
 * The metadata of an entry, built once per change and shared by every caller (SELECT of every
 * session, FETCH, STORE replies): callers treat MessageMeta as read-only, and the flag list is frozen
 * to keep it so.
 */
function toMeta(e: Entry, mtimeOf: (e: Entry) => number): MessageMeta {
  const cached = e.meta;
  if (cached !== undefined && e.metaFor === e.modseq) return cached;
  e.metaFor = e.modseq;
  return (e.meta = buildMeta(e, mtimeOf));
}

function buildMeta(e: Entry, mtimeOf: (e: Entry) => number): MessageMeta {
  const id = (e.id ??= emailIdOf(e.guid));
  // Lists shared between entries (see flagsOfName) are frozen already and can be handed out as they are.
  const flags = Object.isFrozen(e.flags) ? e.flags : (Object.freeze([...e.flags]) as string[]);
  // Not looked up yet (a cold SELECT does not stat every file, as Dovecot does not): on first use.
  if (Number.isNaN(e.mtime)) return new LazyDateMeta(e, mtimeOf, flags, id);
  return {
    uid: e.uid,
    flags,
    modSeq: e.modseq,
    size: e.size,
    internalDate: new Date(e.mtime),
    saveDate: new Date(e.savedate),
    emailId: id,
    threadId: id,
  };
}

/** A MessageMeta whose INTERNALDATE is looked up (a stat) when first read; one class, so no closures per message. */
class LazyDateMeta implements MessageMeta {
  readonly uid: number;
  readonly flags: string[];
  readonly modSeq: bigint;
  readonly size: number;
  readonly saveDate: Date;
  readonly emailId: string;
  readonly threadId: string;
  readonly #entry: Entry;
  readonly #mtimeOf: (e: Entry) => number;
  #date: Date | undefined;

  constructor(e: Entry, mtimeOf: (e: Entry) => number, flags: string[], id: string) {
    this.uid = e.uid;
    this.flags = flags;
    this.modSeq = e.modseq;
    this.size = e.size;
    this.saveDate = new Date(e.savedate);
    this.emailId = id;
    this.threadId = id;
    this.#entry = e;
    this.#mtimeOf = mtimeOf;
  }

  get internalDate(): Date {
    return (this.#date ??= new Date(this.#mtimeOf(this.#entry)));
  }

  set internalDate(d: Date) {
    this.#date = d;
  }
}

function rowOf(e: Entry): CacheRow {
  return { uid: e.uid, base: e.base, name: e.name, flags: e.flags.join(' '), modseq: e.modseq, size: e.size, mtime: e.mtime, savedate: e.savedate, guid: e.guid };
}

function entryOf(r: CacheRow, flags: string[] = r.flags === '' ? [] : r.flags.split(' ')): Entry {
  return makeEntry(r.uid, r.base, r.name, flags, r.modseq, r.size, r.mtime, r.savedate, r.guid);
}

/** Copy-in source for copy/move: where the bytes are and what to keep. */
interface Incoming {
  /** Path of a file in the target's tmp/ (already written and fsynced), or of a source file to rename in. */
  path: string;
  rename: boolean;
  base: string;
  flags: string[];
  size: number;
  mtime: number;
  guid: string;
  /** Source UID (copy/move) for the mapping. */
  sourceUid?: number;
  /** The server's structure entry (NewMessage.structure, or the source's on copy/move), kept in the cache row. */
  structure?: Buffer;
}

/** A Maildir folder's live state. */
export class Folder {
  readonly mutex = new Mutex();
  private ul: Uidlist | null = null;
  private ulSig = '';
  /** The uidlist's bytes as parsed, when they were the whole file (own appends extend them); else null. */
  private ulBuf: Buffer | null = null;
  private ulMtimeMs = 0;
  /** Date.now() before the uidlist was last read or compared. */
  private ulReadAt = 0;
  private byBase = new Map<string, UidlistRecord>();
  private kw: KeywordTable = { names: [], stamp: '' };
  private kwApplied = '';
  private entries = new Map<number, Entry>();
  private sortedCache: number[] | null = null;
  /** Every message's metadata, ascending (shared: callers get copies of the array), and the counters; rebuilt after a change. */
  private metaList: MessageMeta[] | null = null;
  private countsCache: { messages: number; unseen: number; deleted: number; size: number } | null = null;
  private hms = 1n;

  /** HIGHESTMODSEQ this object is in step with; every change to the entries ends by setting it. */
  private get knownHms(): bigint {
    return this.hms;
  }

  private set knownHms(v: bigint) {
    this.hms = v;
    this.changed();
  }

  /** Forget what was derived from the entries (after any change to them). */
  private changed(): void {
    this.sortedCache = null;
    this.metaList = null;
    this.countsCache = null;
  }
  private listings: Record<Sub, Listing> = { new: noListing(), cur: noListing() };
  private forceNext = true;
  /** False until the first sync: what it finds was there before anyone looked, so it is not announced. */
  private announced = false;
  private watchers: Array<{ close(): void }> = [];
  /** Set once the folder was deleted or renamed away: every later call fails with NONEXISTENT. */
  gone = false;
  /** Handles and other users of this object. */
  refs = 0;

  private constructor(
    private readonly env: FolderEnv,
    /** Mailbox name ("INBOX", "A/B"). */
    public name: string,
    /** Folder directory. */
    public dir: string,
    private cache: FolderCache,
  ) {}

  /** True while some process-level watcher is attached. */
  get watched(): boolean {
    return this.watchers.length > 0;
  }

  /** Open a folder whose directory exists; creates cur/ new/ tmp/ when missing and syncs once. */
  static async open(env: FolderEnv, name: string, dir: string): Promise<Folder> {
    const st = await statOrNull(dir);
    if (!st || !st.isDirectory()) throw new StoreError('NONEXISTENT', `mailbox ${name} does not exist`);
    for (const sub of ['cur', 'new', 'tmp']) await mkdirOwned(path.join(dir, sub), env.owner);
    const cache = await FolderCache.open(env.cacheFile(dir), env.warn, env.owner);
    const f = new Folder(env, name, dir, cache);
    // Most messages share a handful of flag combinations: one frozen list each (see flagsOfName).
    const lists = new Map<string, string[]>();
    for (const row of cache.all()) {
      let flags = lists.get(row.flags);
      if (!flags) lists.set(row.flags, (flags = Object.freeze(row.flags === '' ? [] : row.flags.split(' ')) as string[]));
      f.entries.set(row.uid, entryOf(row, flags));
    }
    f.knownHms = cache.highestModSeq();
    // The keyword table the cached flags were resolved with: unchanged means no re-resolving.
    f.kwApplied = cache.meta('kw') ?? '';
    void f.cleanTmp();
    await f.mutex.run(() => f.syncLocked(true));
    return f;
  }

  private get uidlistPath(): string {
    return path.join(this.dir, 'dovecot-uidlist');
  }

  private get keywordsPath(): string {
    return path.join(this.dir, 'dovecot-keywords');
  }

  private check(): void {
    if (this.gone) throw new StoreError('NONEXISTENT', `mailbox ${this.name} no longer exists`);
  }

  /** UIDVALIDITY (after the first sync there always is one). */
  get uidValidity(): number {
    return this.ul?.uidValidity ?? 0;
  }

  /** MAILBOXID: the uidlist's mailbox GUID, which survives renames. */
  get mailboxId(): string {
    return 'F' + (this.ul?.guid ?? '');
  }

  /** Next UID to be given. */
  get uidNext(): number {
    return this.ul?.nextUid ?? 1;
  }

  /** HIGHESTMODSEQ as of the last sync. */
  get highestModSeq(): bigint {
    return this.knownHms;
  }

  private sortedUids(): number[] {
    if (!this.sortedCache) {
      // Entries are mostly added in UID order: sort only when they are not.
      const uids = [...this.entries.keys()];
      let sorted = true;
      for (let i = 1; i < uids.length && sorted; i++) sorted = (uids[i - 1] as number) < (uids[i] as number);
      this.sortedCache = sorted ? uids : uids.sort((a, b) => a - b);
    }
    return this.sortedCache;
  }

  /** Every message's metadata, ascending. */
  metas(): MessageMeta[] {
    this.metaList ??= this.sortedUids().map((uid) => toMeta(this.entries.get(uid) as Entry, this.mtimeOf));
    return this.metaList.slice();
  }

  /** Metadata of some UIDs (missing ones omitted), ascending. */
  metasOf(uids: number[]): MessageMeta[] {
    const out: MessageMeta[] = [];
    for (const uid of [...new Set(uids)].sort((a, b) => a - b)) {
      const e = this.entries.get(uid);
      if (e) out.push(toMeta(e, this.mtimeOf));
    }
    return out;
  }

  /** Counters. */
  counts(): { messages: number; unseen: number; deleted: number; size: number } {
    if (this.countsCache) return { ...this.countsCache };
    let unseen = 0;
    let deleted = 0;
    let size = 0;
    for (const e of this.entries.values()) {
      if (!e.flags.includes('\\Seen')) unseen++;
      if (e.flags.includes('\\Deleted')) deleted++;
      size += e.size;
    }
    this.countsCache = { messages: this.entries.size, unseen, deleted, size };
    return { ...this.countsCache };
  }

  /** Messages changed since a MODSEQ, and UIDs expunged since. */
  changesSince(since: bigint): { changed: MessageMeta[]; expunged: number[] } {
    const changed = this.sortedUids()
      .map((uid) => this.entries.get(uid) as Entry)
      .filter((e) => e.modseq > since)
      .map((e) => toMeta(e, this.mtimeOf));
    const expunged = this.cache.goneSince(since).filter((uid) => !this.entries.has(uid));
    return { changed, expunged };
  }

  /** Bring the state up to date with the disk (cheap when nothing changed). */
  sync(force = false): Promise<void> {
    return this.mutex.run(async () => {
      this.check();
      await this.syncLocked(force);
    });
  }

  // ---- reading the disk ----

  private resetUidlist(): void {
    this.ul = null;
    this.ulSig = '';
    this.ulBuf = null;
    this.byBase.clear();
  }

  /** True when the uidlist's stat still says what we read, and was taken long enough after its last change to be sure. */
  private uidlistTrusted(st: BigIntStats | null): boolean {
    return this.ul !== null && this.ulSig !== '' && sigOf(st) === this.ulSig && this.ulReadAt - this.ulMtimeMs > DIRTY_MS;
  }

  /**
   * Bring `ul` up to date with the file. Returns false when the list is unchanged. A file whose
   * stat may hide a change (same mtime tick) is read and compared byte for byte; one that only grew
   * by appended lines (Dovecot and we append in place) has only its new lines parsed.
   */
  private async readUidlist(): Promise<boolean> {
    const readAt = Date.now();
    // Synchronous calls: a 10,000-message uidlist is read in a fraction of a millisecond, far less
    // than the four thread-pool round trips of the async calls (this runs on every sync during the
    // second after another process wrote the file, see uidlistTrusted).
    let fd: number;
    try {
      fd = openSync(this.uidlistPath, 'r');
    } catch (err) {
      if (!isErr(err, 'ENOENT')) throw err;
      const had = this.ul !== null;
      this.resetUidlist();
      return had;
    }
    try {
      const st = fstatSync(fd, { bigint: true });
      const sig = sigOf(st);
      if (this.uidlistTrusted(st)) return false;
      const buf = readFileSync(fd);
      const old = this.ulBuf;
      const mark = (complete: boolean, bytes: Buffer): void => {
        // A half-appended last line: read again next time.
        this.ulSig = complete ? sig : '';
        this.ulBuf = complete ? bytes : null;
        this.ulMtimeMs = mtimeMsOf(st);
        this.ulReadAt = readAt;
      };
      if (this.ul && old && buf.equals(old)) {
        mark(true, old);
        return false;
      }
      if (this.ul && old && buf.length > old.length && buf.subarray(0, old.length).equals(old)) {
        const hdrEnd = old.indexOf(10);
        const grown = appendToUidlist(this.ul, old.subarray(0, hdrEnd + 1).toString('utf8'), buf.subarray(old.length).toString('utf8'));
        if (grown) {
          for (const r of grown.list.records.slice(this.ul.records.length)) this.byBase.set(r.base, r);
          this.ul = grown.list;
          const complete = old.length + grown.bytes === buf.length;
          mark(complete, buf);
          return true;
        }
      }
      const parsed = parseUidlist(buf.toString('utf8'));
      if (!parsed.ok) {
        this.env.warn(`${this.uidlistPath}: ${parsed.reason}; it will be recreated`);
        this.resetUidlist();
        return true;
      }
      mark(parsed.bytes === buf.length, buf);
      this.ul = parsed.list;
      this.byBase = new Map(parsed.list.records.map((r) => [r.base, r]));
      return true;
    } finally {
      closeSync(fd);
    }
  }

  /** base -> "cur/<file>" | "new/<file>"; new/ is read first so a concurrent new->cur move is never missed. */
  private async scan(): Promise<Map<string, string>> {
    const at = Date.now();
    const [newSt, curSt] = await Promise.all([statOrNull(path.join(this.dir, 'new')), statOrNull(path.join(this.dir, 'cur'))]);
    if (!newSt || !curSt) {
      if (!(await statOrNull(this.dir))) {
        this.gone = true;
        throw new StoreError('NONEXISTENT', `mailbox ${this.name} no longer exists`);
      }
      for (const sub of ['cur', 'new', 'tmp']) await mkdirOwned(path.join(this.dir, sub), this.env.owner);
    }
    const map = new Map<string, string>();
    for (const sub of SUBS) {
      const st = sub === 'new' ? newSt : curSt;
      this.listings[sub] = noListing();
      let names: string[];
      try {
        names = await fs.readdir(path.join(this.dir, sub));
      } catch (err) {
        if (isErr(err, 'ENOENT')) continue;
        throw err;
      }
      const prefix = sub + '/';
      for (const f of names) {
        if (skippedName(f)) continue;
        const colon = f.indexOf(':');
        map.set(colon < 0 ? f : f.slice(0, colon), prefix + f);
      }
      if (st) this.listings[sub] = { sig: sigOf(st), mtimeMs: mtimeMsOf(st), at, names, added: new Set(), removed: new Set() };
    }
    return map;
  }

  /**
   * The cheap check of a sync: true when new/ and cur/ still hold exactly the names we know. A
   * directory whose stat is unchanged since a listing taken more than DIRTY_MS after its last
   * change is trusted as is; any other (changed by us or by others) is listed again and compared.
   *
   * Why not trust the stat taken right after our own change: a file another process drops or
   * renames between our stat before and our stat after leaves the same mtime as ours alone, and
   * so does one landing in the same clock tick right after. Only a listing tells them apart, so
   * after our own changes we list again (one readdir, no parsing, no cache work) instead.
   */
  private async listingsCurrent(newSt: BigIntStats | null, curSt: BigIntStats | null, at: number): Promise<boolean> {
    const todo: Array<{ sub: Sub; st: BigIntStats; l: Listing & { names: string[] } }> = [];
    for (const sub of SUBS) {
      const st = sub === 'new' ? newSt : curSt;
      const l = this.listings[sub];
      if (!st || !l.names) return false;
      if (sigOf(st) === l.sig && l.at - l.mtimeMs > DIRTY_MS && l.added.size === 0 && l.removed.size === 0) continue;
      todo.push({ sub, st, l: l as Listing & { names: string[] } });
    }
    if (todo.length === 0) return true;
    let lists: string[][];
    try {
      lists = await Promise.all(todo.map((t) => fs.readdir(path.join(this.dir, t.sub))));
    } catch (err) {
      if (isErr(err, 'ENOENT', 'ENOTDIR')) return false;
      throw err;
    }
    if (!todo.every((t, i) => sameListing(t.l.names, t.l.removed, t.l.added, lists[i] as string[]))) return false;
    // Rows another imapkit process committed are merged by the full sync.
    if (this.cache.highestModSeq() !== this.knownHms) return false;
    todo.forEach((t, i) => (this.listings[t.sub] = { sig: sigOf(t.st), mtimeMs: mtimeMsOf(t.st), at, names: lists[i] as string[], added: new Set(), removed: new Set() }));
    return true;
  }

  /** Keep the known listing in step with a file we just placed, renamed or removed ("new/<f>" or "cur/<f>"). */
  private noteFile(rel: string, present: boolean): void {
    const l = this.listings[rel.startsWith('new/') ? 'new' : 'cur'];
    if (!l.names) return;
    const f = rel.slice(4);
    // Net changes against the old listing: a name added and removed again is no change.
    if (present) {
      if (!l.removed.delete(f)) l.added.add(f);
    } else if (!l.added.delete(f)) l.removed.add(f);
  }

  /** Run one of our own changes; if it fails half way the known listings may be off, so the next sync is a full one. */
  private async own<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.forceNext = true;
      throw err;
    }
  }

  /** Flag lists by letters, for the keyword table they were resolved with (most files share a handful of combinations). */
  private flagMemo: { table: KeywordTable; byLetters: Map<string, string[]> } | null = null;

  /** The flags of a file name; entries of equal letters share one list (never changed in place, only replaced). */
  private flagsOfName(name: string): string[] {
    if (name.startsWith('new/')) return [];
    // The letters after ":2," (what parseName gives, without its size fields: this runs for every file).
    const colon = name.indexOf(':', 4);
    const letters = colon >= 0 && name.charCodeAt(colon + 1) === 50 && name.charCodeAt(colon + 2) === 44 ? name.slice(colon + 3) : '';
    if (this.flagMemo?.table !== this.kw) this.flagMemo = { table: this.kw, byLetters: new Map() };
    let flags = this.flagMemo.byLetters.get(letters);
    if (!flags) {
      flags = Object.freeze(lettersToFlags(letters, this.kw.names)) as string[];
      this.flagMemo.byLetters.set(letters, flags);
    }
    return flags;
  }

  private async withUidlistLock<T>(fn: (lock: Dotlock) => Promise<T>): Promise<T> {
    const lock = await Dotlock.acquire(this.uidlistPath, { owner: this.env.owner, timeoutMs: this.env.lockTimeoutMs, staleTimeoutMs: this.env.staleLockMs });
    try {
      return await fn(lock);
    } finally {
      await lock.release();
    }
  }

  private async freshUidlist(): Promise<Uidlist> {
    const uidValidity = await nextUidValidity(this.env.root, this.env.owner);
    return { version: 3, uidValidity, nextUid: 1, guid: newMailboxGuid(), hdrExt: [], records: [] };
  }

  /**
   * Write new records (under the lock, as the last step of the locked section): appended in place
   * like Dovecot does, or the whole file rewritten (renamed over) when it is missing, old-format,
   * or mostly stale lines.
   */
  private async writeUidlist(lock: Dotlock, list: Uidlist, added: UidlistRecord[], present: Map<string, string> | null): Promise<void> {
    const existed = this.ul !== null && this.ulSig !== '';
    let recreate = !existed || list.version !== 3 || !list.guid;
    let records = list.records;
    if (!recreate && present && list.records.length - this.entries.size > Math.max(32, list.records.length / 4)) {
      // Compress: drop lines of UIDs a previous sync confirmed expunged (tombstones) whose file is still absent.
      const gone = new Set(this.cache.goneSince(0n));
      const kept = records.filter((r) => present.has(r.base) || !gone.has(r.uid));
      if (kept.length < records.length) {
        records = kept;
        recreate = true;
      }
    }
    const all = records.concat(added);
    const next = { ...list, version: 3, guid: list.guid || newMailboxGuid(), records: all };
    // The file's bytes after our write, when we know them (the whole file, or what we read plus our lines).
    let bytes: Buffer | null = null;
    const writeAt = Date.now();
    if (recreate) {
      bytes = Buffer.from(serializeUidlist(next));
      await lock.replace(bytes);
    } else if (added.length > 0) {
      const lines = Buffer.from(added.map(formatRecord).join(''));
      const fh = await fs.open(this.uidlistPath, fsc.O_WRONLY | fsc.O_APPEND);
      try {
        await fh.write(lines);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      bytes = this.ulBuf ? Buffer.concat([this.ulBuf, lines]) : null;
    } else {
      bytes = this.ulBuf;
    }
    if (recreate) {
      this.byBase = new Map(all.map((r) => [r.base, r]));
    } else {
      for (const r of added) this.byBase.set(r.base, r);
    }
    this.ul = next;
    // Our own write needs no re-read: the stat is ours as long as the size is what we wrote (we hold the lock).
    const st = await statOrNull(this.uidlistPath);
    const ok = st !== null && bytes !== null && Number(st.size) === bytes.length;
    this.ulSig = ok ? sigOf(st) : '';
    this.ulBuf = ok ? bytes : null;
    this.ulMtimeMs = st ? mtimeMsOf(st) : 0;
    this.ulReadAt = writeAt;
  }

  /** Give UIDs to files no uidlist record names yet (under the lock, after a fresh read and scan). */
  private async assignUnknown(): Promise<Map<string, string>> {
    return this.withUidlistLock(async (lock) => {
      await this.readUidlist();
      const scan = await this.scan();
      const list = this.ul ? { ...this.ul } : await this.freshUidlist();
      if (!this.ul) this.byBase.clear();
      const unknown = [...scan.keys()].filter((b) => !this.byBase.has(b)).sort(compareBases);
      const added = unknown.map((base) => ({ uid: list.nextUid++, base, ext: [] as string[] }));
      if (added.length > 0 || !this.ul || this.ul.version !== 3 || !this.ul.guid) await this.writeUidlist(lock, list, added, scan);
      return scan;
    });
  }

  /**
   * Sizes of files we have no entry for: from W= in the name (no system call), else from the bytes
   * (files of other MDAs, once). INTERNALDATE is left for later (see mtimeOf): stat-ing every file
   * would make a cold SELECT of a large folder slow, and Dovecot does not do it either.
   */
  private sizesOfNew(list: Uidlist, names: ReadonlyArray<string | undefined>): Map<number, number> {
    const out = new Map<number, number>();
    for (let i = 0; i < list.records.length; i++) {
      const rec = list.records[i] as UidlistRecord;
      const name = names[i];
      if (!name) continue;
      const e = this.entries.get(rec.uid);
      if (e && e.base === rec.base) continue;
      const size = vsizeOf(name, 4);
      if (size !== undefined) {
        out.set(rec.uid, size);
        continue;
      }
      try {
        out.set(rec.uid, servedSize(readFileSync(path.join(this.dir, name))));
      } catch (err) {
        // Renamed or expunged under us: the next sync picks it up.
        if (!isErr(err, 'ENOENT')) throw err;
        this.forceNext = true;
      }
    }
    return out;
  }

  private mtimeDirty: Array<{ uid: number; base: string; mtime: number }> = [];
  private mtimeFlush: NodeJS.Immediate | undefined;

  /** INTERNALDATE (ms) of an entry, stat-ing its file the first time; remembered in the cache. */
  readonly mtimeOf = (e: Entry): number => {
    if (!Number.isNaN(e.mtime)) return e.mtime;
    let st: import('node:fs').Stats | undefined;
    for (let attempt = 0; attempt < 3 && !st; attempt++) {
      try {
        st = statSync(path.join(this.dir, e.name));
        break;
      } catch (err) {
        if (!isErr(err, 'ENOENT')) throw err;
      }
      // Renamed since we last looked (flags changed, or moved from new/ to cur/): find it by its
      // base name, new/ first so that a move to cur/ in between is still caught.
      for (const sub of ['new', 'cur']) {
        const hit = readdirSafe(path.join(this.dir, sub)).find((f) => f === e.base || f.startsWith(e.base + ':'));
        if (!hit) continue;
        try {
          st = statSync(path.join(this.dir, sub, hit));
          break;
        } catch (err) {
          if (!isErr(err, 'ENOENT')) throw err;
        }
      }
    }
    // Gone (being expunged): answer with the save date, but remember nothing.
    if (!st) return e.savedate;
    // utimes() stores a Date through a float of seconds: round back to the millisecond it was.
    e.mtime = Math.round(st.mtimeMs);
    this.mtimeDirty.push({ uid: e.uid, base: e.base, mtime: e.mtime });
    this.mtimeFlush ??= setImmediate(() => this.flushMtimes());
    return e.mtime;
  };

  private flushMtimes(): void {
    this.mtimeFlush = undefined;
    const items = this.mtimeDirty;
    this.mtimeDirty = [];
    if (items.length === 0 || this.gone) return;
    try {
      this.cache.transaction(() => this.cache.setMtimes(items));
    } catch {
      // Only a cache: the dates are looked up again next time.
    }
  }

  /** Apply rows other processes committed since we last looked. Returns the UIDs taken from the cache. */
  private mergeFromCache(delta: Delta): Set<number> {
    const merged = new Set<number>();
    const hms = this.cache.highestModSeq();
    if (hms <= this.knownHms) return merged;
    for (const uid of this.cache.goneSince(this.knownHms)) {
      if (this.entries.delete(uid)) {
        delta.expunge = true;
        this.changed();
      }
      merged.add(uid);
    }
    for (const row of this.cache.changedSince(this.knownHms)) {
      const old = this.entries.get(row.uid);
      const e = entryOf(row);
      if (!old) {
        delta.append = true;
        this.changed();
      } else if (!sameFlags(old.flags, e.flags)) delta.flags = true;
      this.entries.set(row.uid, e);
      merged.add(row.uid);
    }
    // Rows from others may be newer than our scan: look again next time.
    if (merged.size > 0) this.forceNext = true;
    return merged;
  }

  private emit(delta: Delta, origin?: string): void {
    const base = { mailbox: this.name, modSeq: this.knownHms, ...(origin ? { origin } : {}) };
    if (delta.append) this.env.emit({ ...base, kind: 'append' });
    if (delta.flags) this.env.emit({ ...base, kind: 'flags' });
    if (delta.expunge) this.env.emit({ ...base, kind: 'expunge' });
  }

  /** The sync itself; the caller holds the mutex. */
  async syncLocked(force: boolean): Promise<void> {
    const at = Date.now();
    const ulSt = statSyncOrNull(this.uidlistPath);
    const newSt = statSyncOrNull(path.join(this.dir, 'new'));
    const curSt = statSyncOrNull(path.join(this.dir, 'cur'));
    const kwSig = keywordsStampSync(this.keywordsPath);
    if (!force && !this.forceNext && this.ul !== null && this.ulSig !== '' && sigOf(ulSt) === this.ulSig && kwSig === this.kw.stamp) {
      // Quiet (three stats) or, after a change, one listing compared with what we know.
      const ulSame = this.uidlistTrusted(ulSt) || !(await this.readUidlist());
      if (ulSame && (await this.listingsCurrent(newSt, curSt, at))) return;
    }
    this.forceNext = false;
    // A full sync that fails half way (say the cache is busy) leaves the listings ahead of the entries.
    await this.own(() => this.fullSync(newSt, curSt, kwSig));
  }

  private async fullSync(newSt: BigIntStats | null, curSt: BigIntStats | null, kwSig: string): Promise<void> {
    if (!newSt && !curSt && !(await statOrNull(this.dir))) {
      this.gone = true;
      throw new StoreError('NONEXISTENT', `mailbox ${this.name} no longer exists`);
    }
    if (kwSig !== this.kw.stamp) this.kw = await readKeywords(this.keywordsPath);
    // Read the uidlist while the directories are listed (disk work overlaps; which comes first does
    // not matter: a file without a record is given one under the lock below, re-reading both).
    let scan = (await Promise.all([this.scan(), this.readUidlist()]))[0];
    let unknown = !this.ul || this.ul.version !== 3 || !this.ul.guid;
    if (!unknown) {
      for (const b of scan.keys()) {
        if (!this.byBase.has(b)) {
          unknown = true;
          break;
        }
      }
    }
    if (unknown) scan = await this.assignUnknown();
    const list = this.ul;
    if (!list) throw new StoreError('SERVERBUG', `${this.uidlistPath} could not be created`);

    // Each record's file (one lookup per record, shared by the steps below), and how many entries
    // are still where we knew them: their file listed, their base still theirs in the uidlist.
    const files = (): { names: Array<string | undefined>; found: number } => {
      const names = new Array<string | undefined>(list.records.length);
      let found = 0;
      list.records.forEach((rec, i) => {
        const name = scan.get(rec.base);
        names[i] = name;
        if (name === undefined) return;
        const e = this.entries.get(rec.uid);
        if (e !== undefined && e.base === rec.base && this.byBase.get(rec.base)?.uid === rec.uid) found++;
      });
      return { names, found };
    };
    let seen = files();
    // A file we know but did not see may just be mid-rename (flag change): look once more.
    if (seen.found < this.entries.size) {
      const again = await this.scan();
      for (const [b, n] of again) scan.set(b, n);
      // A file only the first listing saw is kept this time; the next sync must list again to drop it.
      if (scan.size !== again.size) this.forceNext = true;
      seen = files();
    }

    if (this.cache.meta('uidvalidity') !== String(list.uidValidity) && this.entries.size > 0) {
      // Another UIDVALIDITY: everything we cached belongs to the old one.
      this.entries.clear();
      this.changed();
    }
    const sizes = this.sizesOfNew(list, seen.names);
    const delta = noDelta();
    this.cache.transaction(() => {
      // One MODSEQ for everything this sync found.
      let ms: bigint | null = null;
      const mod = (): bigint => (ms ??= this.cache.nextModSeq());
      if (this.cache.meta('uidvalidity') !== String(list.uidValidity)) {
        if (this.cache.meta('uidvalidity') !== undefined) delta.expunge = this.entries.size > 0;
        this.cache.reset(list.uidValidity);
        this.entries.clear();
        this.changed();
      }
      const merged = this.mergeFromCache(delta);
      const kwChanged = this.kw.stamp !== this.kwApplied;
      const now = Date.now();
      // Rows of new messages, written together at the end (a cold start writes one per message).
      const fresh: CacheRow[] = [];
      const anyMerged = merged.size > 0;
      // Entries that are now where the files and the uidlist say: those found before, plus new ones.
      let placed = seen.found;
      for (let i = 0; i < list.records.length; i++) {
        const rec = list.records[i] as UidlistRecord;
        if (anyMerged && merged.has(rec.uid)) continue;
        const name = seen.names[i];
        if (!name) continue;
        const e = this.entries.get(rec.uid);
        if (e && e.base === rec.base) {
          if (e.name === name && !kwChanged) continue;
          const flags = this.flagsOfName(name);
          const flagsChanged = !sameFlags(flags, e.flags);
          if (!flagsChanged && e.name === name) continue;
          if (flagsChanged) {
            e.flags = flags;
            e.modseq = mod();
            delta.flags = true;
          }
          e.name = name;
          this.cache.put(rowOf(e));
          continue;
        }
        const size = sizes.get(rec.uid);
        if (size === undefined) continue;
        const ne = makeEntry(rec.uid, rec.base, name, this.flagsOfName(name), mod(), size, NaN, now, recordExt(rec, 'G') ?? rec.base);
        if (e) this.cache.remove(e.uid, ne.modseq);
        this.entries.set(rec.uid, ne);
        // (Unless another record claims the base: the check below then drops it again, as before.)
        if (this.byBase.get(rec.base)?.uid === rec.uid) placed++;
        this.changed();
        fresh.push(rowOf(ne));
        delta.append = true;
      }
      this.cache.putMany(fresh);
      const gone: number[] = [];
      // Every entry accounted for (the usual case): nothing can be gone, no need to look at each.
      const all = !anyMerged && placed === this.entries.size;
      for (const e of all ? [] : this.entries.values()) {
        if (anyMerged && merged.has(e.uid)) continue;
        if (scan.has(e.base) && this.byBase.get(e.base)?.uid === e.uid) continue;
        gone.push(e.uid);
      }
      for (const uid of gone) {
        this.cache.remove(uid, mod());
        this.entries.delete(uid);
        this.changed();
        delta.expunge = true;
      }
      if (this.kwApplied !== this.kw.stamp) this.cache.setMeta('kw', this.kw.stamp);
      this.kwApplied = this.kw.stamp;
      this.knownHms = this.cache.highestModSeq();
    });
    if (this.announced) this.emit(delta);
    this.announced = true;
  }

  // ---- reading messages ----

  /** The message bytes, or null when expunged. LF-only files (as Dovecot and MDAs write them) are served with CRLF, as Dovecot does. */
  async read(uid: number): Promise<Buffer | null> {
    this.check();
    for (let attempt = 0; attempt < 3; attempt++) {
      const e = this.entries.get(uid);
      if (!e) return null;
      try {
        // Small files (nearly all mail) are read synchronously: far cheaper than four thread-pool
        // round trips, and too short to hold up other sessions. Large ones go through the pool.
        const file = path.join(this.dir, e.name);
        return servedBytes(e.size <= SYNC_READ_MAX ? readFileSync(file) : await fs.readFile(file));
      } catch (err) {
        if (!isErr(err, 'ENOENT')) throw err;
        // Renamed (flags) or expunged meanwhile: find it again.
        await this.sync(true);
      }
    }
    return null;
  }

  /** Files read by prefix whose rest was searched for a CR: uid -> base and the answer (a file's bytes never change). */
  private crPastPrefix = new Map<number, { base: string; cr: boolean }>();

  /**
   * The start of a message as read() serves it (MailboxHandle.readPrefix). A file holding a CR is
   * served as stored, one without converted (servedBytes): a raw prefix with a CR, or the whole
   * file, decides by itself; otherwise the rest of the file is searched for a CR (once per file),
   * without being kept or converted. Converting a CR-free prefix gives a prefix of the converted
   * whole (every LF is bare), and the result is at least as long as the raw prefix.
   */
  async readPrefix(uid: number, bytes: number): Promise<PrefixRead | null> {
    this.check();
    const want = Math.max(1, Math.floor(bytes));
    for (let attempt = 0; attempt < 3; attempt++) {
      const e = this.entries.get(uid);
      if (!e) return null;
      const file = path.join(this.dir, e.name);
      try {
        if (e.size > SYNC_READ_MAX) return await this.prefixAsync(e, file, want);
        const fd = openSync(file, 'r');
        try {
          return this.prefixSync(e, fd, want);
        } finally {
          closeSync(fd);
        }
      } catch (err) {
        if (!isErr(err, 'ENOENT')) throw err;
        await this.sync(true);
      }
    }
    return null;
  }

  /** readPrefix of a small file: synchronous reads into the shared scratch, one allocation for the result. */
  private prefixSync(e: Entry, fd: number, want: number): PrefixRead {
    if (scratch.length < want + 1) scratch = Buffer.allocUnsafe(want + 1);
    // One byte more than asked tells whether the file goes on.
    // A short read that ends exactly at the S= size of the name is the end of the file: that
    // saves the second read() a small file otherwise takes to see its end.
    const size = fileSizeOf(e.base) ?? -1;
    let got = 0;
    while (got < want + 1) {
      const n = readSync(fd, scratch, got, want + 1 - got, got);
      got += n;
      if (n === 0 || got === size) break;
    }
    if (got <= want) {
      const raw = scratch.subarray(0, got);
      return { data: raw.includes(13) ? Buffer.from(raw) : ownedCrlf(raw), whole: true };
    }
    const raw = scratch.subarray(0, want);
    if (raw.includes(13) || scratch[want] === 13) return { data: Buffer.from(raw), whole: false };
    let cr = this.knownCr(e);
    if (cr === undefined) {
      // Past the prefix (in the scratch tail first, then the rest of the file).
      cr = false;
      let pos = want + 1;
      const buf = scratch.subarray(want + 1);
      const chunk = buf.length >= 4096 ? buf : Buffer.allocUnsafe(64 * 1024);
      for (;;) {
        const n = readSync(fd, chunk, 0, chunk.length, pos);
        if (n === 0) break;
        if (chunk.subarray(0, n).includes(13)) {
          cr = true;
          break;
        }
        pos += n;
      }
      this.noteCr(e, cr);
    }
    return { data: cr ? Buffer.from(raw) : ownedCrlf(raw), whole: false };
  }

  /** readPrefix of a large file: through the thread pool, as read() does. */
  private async prefixAsync(e: Entry, file: string, want: number): Promise<PrefixRead> {
    const fh = await fs.open(file, fsc.O_RDONLY);
    try {
      const buf = Buffer.allocUnsafe(want + 1);
      let got = 0;
      for (let n = -1; n !== 0 && got < want + 1; got += n) n = (await fh.read(buf, got, want + 1 - got, got)).bytesRead;
      if (got <= want) return { data: servedBytes(buf.subarray(0, got)), whole: true };
      const raw = buf.subarray(0, want);
      if (raw.includes(13) || buf[want] === 13) return { data: raw, whole: false };
      let cr = this.knownCr(e);
      if (cr === undefined) {
        cr = false;
        const chunk = Buffer.allocUnsafe(256 * 1024);
        for (let pos = want + 1; ; ) {
          const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
          if (bytesRead === 0) break;
          if (chunk.subarray(0, bytesRead).includes(13)) {
            cr = true;
            break;
          }
          pos += bytesRead;
        }
        this.noteCr(e, cr);
      }
      return { data: cr ? raw : toCrlf(raw), whole: false };
    } finally {
      await fh.close();
    }
  }

  private noteCr(e: Entry, cr: boolean): void {
    // Only files past the prefix and without a CR in it get here (few); a cap bounds what expunges leave.
    if (this.crPastPrefix.size >= 10_000) this.crPastPrefix.clear();
    this.crPastPrefix.set(e.uid, { base: e.base, cr });
  }

  private knownCr(e: Entry): boolean | undefined {
    const k = this.crPastPrefix.get(e.uid);
    return k && k.base === e.base ? k.cr : undefined;
  }

  /** Path of a message's file right now (may change with the next flag change). */
  pathOf(uid: number): string | null {
    const e = this.entries.get(uid);
    return e ? path.join(this.dir, e.name) : null;
  }

  /** The cached per-message blob (MIME index) if still valid for this message. */
  auxOf(uid: number): Buffer | null {
    const e = this.entries.get(uid);
    return e ? this.cache.aux(uid, e.base) : null;
  }

  /** Store the per-message blob. */
  setAux(uid: number, data: Buffer): void {
    const e = this.entries.get(uid);
    if (e) this.cache.setAux(uid, e.base, data);
  }

  /** The blobs of some UIDs (MailboxHandle.structures): present ones only. */
  auxMany(uids: readonly number[]): Map<number, Buffer> {
    this.check();
    const out = new Map<number, Buffer>();
    for (const uid of uids) {
      const e = this.entries.get(uid);
      const b = e ? this.cache.aux(uid, e.base) : null;
      if (b) out.set(uid, b);
    }
    return out;
  }

  /** Store blobs of some UIDs (MailboxHandle.saveStructures): one transaction, no MODSEQ; gone UIDs skipped. */
  setAuxMany(entries: ReadonlyMap<number, Buffer>): void {
    this.check();
    if (entries.size === 0) return;
    this.cache.transaction(() => {
      for (const [uid, data] of entries) {
        const e = this.entries.get(uid);
        if (e) this.cache.setAux(uid, e.base, data);
      }
    });
  }

  // ---- writing ----

  /** Keyword letters for the flags, creating letters (under the uidlist lock) when needed. */
  private async ensureKeywords(flags: Iterable<string>): Promise<void> {
    const wanted = [...new Set([...flags].filter((f) => !f.startsWith('\\')))];
    if (wanted.every((k) => keywordIndex(this.kw.names, k) >= 0)) return;
    await this.withUidlistLock(async () => {
      this.kw = await readKeywords(this.keywordsPath);
      try {
        await addKeywords(this.keywordsPath, this.kw.names, wanted, this.env.owner);
      } catch (err) {
        if (err instanceof RangeError) throw new StoreError('LIMIT', err.message);
        throw err;
      }
      this.kw = await readKeywords(this.keywordsPath);
    });
  }

  /** Letters for a flag list (keywords must already have letters), keeping `keep` letters (e.g. P). */
  private lettersOf(flags: Iterable<string>, keep = ''): string {
    let letters = keep;
    for (const f of flags) {
      if (f.startsWith('\\')) {
        const l = systemLetter(f);
        if (l) letters += l;
        continue;
      }
      const idx = keywordIndex(this.kw.names, f);
      if (idx >= 0) letters += String.fromCharCode(97 + idx);
    }
    return sortLetters(letters);
  }

  /** Canonical flags as stored: system flags in their usual spelling, keywords spelled as in dovecot-keywords. */
  private canonicalFlags(letters: string): string[] {
    return lettersToFlags(letters, this.kw.names);
  }

  /**
   * Bring files into this folder and give them UIDs, all under one uidlist lock. Each incoming file
   * is renamed to new/ (no flags) or cur/ (with flags); on any failure the ones already placed are
   * taken out again, so the call stores all or none. Durable on return.
   */
  async placeLocked(incoming: Incoming[], origin: string | undefined): Promise<{ uids: number[]; placed: Incoming[] }> {
    this.check();
    if (incoming.length === 0) return { uids: [], placed: [] };
    await this.ensureKeywords(incoming.flatMap((m) => m.flags));
    const placedPaths: Array<{ from: string; to: string; rename: boolean }> = [];
    const result = await this.withUidlistLock(async (lock) => {
      // Someone else changed the uidlist (new records, a rewrite, another UIDVALIDITY): the next sync must look at everything.
      if (await this.readUidlist()) this.forceNext = true;
      const list = this.ul ? { ...this.ul } : await this.freshUidlist();
      if (!this.ul) this.byBase.clear();
      const added: UidlistRecord[] = [];
      const placed: Incoming[] = [];
      const rows: Entry[] = [];
      try {
        // Names first (a base already in this uidlist, e.g. a message moved back, gets a fresh one),
        // then all renames at once; UIDs follow the incoming order.
        const taken = new Set<string>();
        const plan = incoming.map((m) => {
          let base = m.base;
          if (this.byBase.has(base) || taken.has(base)) {
            const p = parseName(base);
            base = newBaseName(p.fileSize ?? m.size, m.size);
          }
          taken.add(base);
          const letters = this.lettersOf(m.flags);
          const inNew = letters === '';
          return { m, base, letters, rel: `${inNew ? 'new' : 'cur'}/${buildName(base, letters, inNew)}` };
        });
        const touched = new Set<Sub>();
        const done = await mapLimit(plan, IO_CONCURRENCY, async ({ m, rel }) => {
          const target = path.join(this.dir, rel);
          try {
            await fs.rename(m.path, target);
          } catch (err) {
            // A source file renamed under us (its flags changed): the caller looks it up again.
            if (m.rename && isErr(err, 'ENOENT')) return false;
            throw err;
          }
          placedPaths.push({ from: m.path, to: target, rename: m.rename });
          touched.add(rel.startsWith('new/') ? 'new' : 'cur');
          return true;
        });
        const savedate = Date.now();
        plan.forEach(({ m, base, letters, rel }, i) => {
          if (!done[i]) return;
          const uid = list.nextUid++;
          const guid = m.guid !== base ? m.guid.replace(/\s/g, '_') : base;
          added.push({ uid, base, ext: m.guid !== base ? [`G${guid}`] : [] });
          placed.push(m);
          rows.push(makeEntry(uid, base, rel, this.canonicalFlags(letters), 0n, m.size, m.mtime, savedate, guid));
        });
        // (The source folder of a move syncs its own directories when it forgets the messages.)
        await Promise.all([...touched].map((sub) => fsyncDir(path.join(this.dir, sub))));
        await this.writeUidlist(lock, list, added, null);
        for (const e of rows) this.noteFile(e.name, true);
      } catch (err) {
        // All or none: put back what we moved (sources of moves) or delete it (our tmp copies).
        for (const p of placedPaths.reverse()) {
          if (p.rename) await fs.rename(p.to, p.from).catch(() => undefined);
          else await fs.unlink(p.to).catch(() => undefined);
        }
        throw err;
      }
      return { rows, placed };
    });
    const delta = noDelta();
    this.cache.transaction(() => {
      if (this.cache.meta('uidvalidity') !== String(this.ul?.uidValidity)) {
        this.cache.reset(this.ul?.uidValidity ?? 0);
        this.entries.clear();
        // Only the new messages are known now: the next sync reads the folder again.
        this.forceNext = true;
      }
      this.mergeFromCache(delta);
      const ms = result.rows.length > 0 ? this.cache.nextModSeq() : 0n;
      for (const e of result.rows) {
        e.modseq = ms;
        this.entries.set(e.uid, e);
      }
      this.cache.putMany(result.rows.map(rowOf));
      result.rows.forEach((e, i) => {
        const structure = result.placed[i]?.structure;
        if (structure) this.cache.setAux(e.uid, e.base, structure);
      });
      this.changed();
      this.knownHms = this.cache.highestModSeq();
    });
    this.emit(delta);
    if (result.rows.length > 0) this.emit({ append: true, flags: false, expunge: false }, origin);
    return { uids: result.rows.map((e) => e.uid), placed: result.placed };
  }

  /** APPEND: write each message to tmp/ (fsynced, mtime = INTERNALDATE), then place them all. */
  append(messages: NewMessage[], origin: string | undefined): Promise<UidMapping> {
    return this.mutex.run(() =>
      this.own(async () => {
        this.check();
        // Everything checked before anything is written.
        const items = messages.map((m) => {
          if (!Buffer.isBuffer(m.data)) throw new StoreError('CANNOT', 'message data must be bytes');
          const date = m.internalDate ?? new Date();
          if (Number.isNaN(date.getTime())) throw new StoreError('CANNOT', 'invalid internal date');
          const size = servedSize(m.data);
          const base = newBaseName(m.data.length, size);
          const incoming: Incoming = { path: path.join(this.dir, 'tmp', base), rename: false, base, flags: this.cleanFlags(m.flags ?? []), size, mtime: date.getTime(), guid: base, structure: m.structure };
          return { data: m.data, date, incoming };
        });
        const written: Incoming[] = [];
        try {
          // Each file is complete and fsynced in tmp/ before any is renamed in (placeLocked), as one at a time would be.
          await mapLimit(items, IO_CONCURRENCY, async ({ data, date, incoming }) => {
            await (data.length <= SYNC_READ_MAX ? writeSmallNewFile : writeNewFile)(incoming.path, data, { owner: this.env.owner, mtime: date });
            written.push(incoming);
          });
          const { uids } = await this.placeLocked(
            items.map((i) => i.incoming),
            origin,
          );
          return { uidValidity: this.uidValidity, sourceUids: [], destUids: uids };
        } catch (err) {
          await Promise.all(written.map((m) => fs.unlink(m.path).catch(() => undefined)));
          throw err;
        }
      }),
    );
  }

  /** Flags we can store (the rules every backend shares): CANNOT for a keyword that is not an atom. */
  private cleanFlags(flags: string[]): string[] {
    return canonicalFlags(flags);
  }

  /** Give copies (or the files themselves, for a move) of some messages to another folder. */
  exportTo(target: Folder, uids: number[], move: boolean, origin: string | undefined): Promise<UidMapping> {
    // Both folders' mutexes, always taken in directory order so opposite copies cannot deadlock.
    const [first, second] = this.dir <= target.dir ? [this, target] : [target, this];
    const body = () => target.own(() => this.own(() => this.exportLocked(target, uids, move, origin)));
    return first === second ? first.mutex.run(body) : first.mutex.run(() => second.mutex.run(body));
  }

  /** Incoming item for one source message (a hard link or copy in target's tmp/, or the file itself for a move). */
  private async prepareOut(target: Folder, e: Entry, byRename: boolean): Promise<Incoming> {
    const src = path.join(this.dir, e.name);
    if (byRename) {
      await fs.access(src);
      return { path: src, rename: true, base: e.base, flags: [...e.flags], size: e.size, mtime: this.mtimeOf(e), guid: e.guid, sourceUid: e.uid, structure: this.auxOf(e.uid) ?? undefined };
    }
    const p = parseName(path.basename(e.name));
    const base = newBaseName(p.fileSize ?? e.size, e.size);
    const tmp = path.join(target.dir, 'tmp', base);
    try {
      // A hard link shares the bytes and the mtime (INTERNALDATE), as Dovecot's copy does.
      await fs.link(src, tmp);
    } catch (err) {
      if (isErr(err, 'ENOENT')) throw err;
      await fs.copyFile(src, tmp, fsc.COPYFILE_EXCL);
      const fh = await fs.open(tmp, 'r+');
      try {
        await fh.utimes(new Date(this.mtimeOf(e)), new Date(this.mtimeOf(e)));
        if (this.env.owner) await fh.chown(this.env.owner.uid, this.env.owner.gid);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    return { path: tmp, rename: false, base, flags: [...e.flags], size: e.size, mtime: this.mtimeOf(e), guid: e.guid, sourceUid: e.uid, structure: this.auxOf(e.uid) ?? undefined };
  }

  private async exportLocked(target: Folder, uids: number[], move: boolean, origin: string | undefined): Promise<UidMapping> {
    this.check();
    target.check();
    await this.syncLocked(false);
    if (target !== this) await target.syncLocked(false);
    const byRename = move && target !== this;
    let todo = [...new Set(uids)].sort((a, b) => a - b).filter((u) => this.entries.has(u));
    const sourceUids: number[] = [];
    const destUids: number[] = [];
    for (let round = 0; round < 4 && todo.length > 0; round++) {
      if (round > 0) await this.syncLocked(true);
      const incoming: Incoming[] = [];
      const retry: number[] = [];
      try {
        for (const uid of todo) {
          const e = this.entries.get(uid);
          if (!e) continue;
          try {
            incoming.push(await this.prepareOut(target, e, byRename));
          } catch (err) {
            if (!isErr(err, 'ENOENT')) throw err;
            retry.push(uid);
          }
        }
        const { uids: dest, placed } = await target.placeLocked(incoming, origin);
        placed.forEach((m, i) => {
          sourceUids.push(m.sourceUid as number);
          destUids.push(dest[i] as number);
        });
        const done = new Set(placed.map((m) => m.sourceUid));
        for (const m of incoming) if (!done.has(m.sourceUid)) retry.push(m.sourceUid as number);
      } catch (err) {
        for (const m of incoming) if (!m.rename) await fs.unlink(m.path).catch(() => undefined);
        throw err;
      }
      todo = retry.sort((a, b) => a - b);
    }
    if (move) {
      // Within one folder the copies exist and the originals are expunged; across folders the files left by rename.
      if (target === this) await this.removeLocked(sourceUids, origin, false);
      else await this.forgetLocked(sourceUids, origin);
    }
    return { uidValidity: target.uidValidity, sourceUids, destUids };
  }

  /** Record that messages are gone (their files were moved away by us). */
  private async forgetLocked(uids: number[], origin: string | undefined): Promise<void> {
    if (uids.length === 0) return;
    for (const uid of uids) {
      const e = this.entries.get(uid);
      if (e) this.noteFile(e.name, false);
    }
    await Promise.all([fsyncDir(path.join(this.dir, 'new')), fsyncDir(path.join(this.dir, 'cur'))]);
    const delta = noDelta();
    this.cache.transaction(() => {
      this.mergeFromCache(delta);
      let ms: bigint | null = null;
      for (const uid of uids) {
        if (!this.entries.has(uid)) continue;
        this.cache.remove(uid, (ms ??= this.cache.nextModSeq()));
        this.entries.delete(uid);
      }
      this.changed();
      this.knownHms = this.cache.highestModSeq();
    });
    this.emit(delta);
    this.emit({ append: false, flags: false, expunge: true }, origin);
  }

  /** STORE. */
  updateFlags(uids: number[], update: FlagUpdate, origin: string | undefined): Promise<FlagUpdateResult> {
    return this.mutex.run(() => this.own(() => this.updateFlagsLocked(uids, update, origin)));
  }

  private async updateFlagsLocked(uids: number[], update: FlagUpdate, origin: string | undefined): Promise<FlagUpdateResult> {
    {
      this.check();
      await this.syncLocked(false);
      const given = this.cleanFlags(update.flags);
      if (update.action !== 'remove') await this.ensureKeywords(given);
      const modified: number[] = [];
      const changed: Array<{ e: Entry; name: string; flags: string[] }> = [];
      let fromNew = false;
      /** The rename one uid needs now: null when there is nothing to do. */
      const planOf = (uid: number): { e: Entry; newName: string; letters: string } | null => {
        const e = this.entries.get(uid);
        if (!e) return null;
        if (update.unchangedSince !== undefined && e.modseq > update.unchangedSince) {
          modified.push(uid);
          return null;
        }
        const parsed = parseName(e.name.slice(4));
        // Compute from the letters on disk (Dovecot may have changed them) plus the request.
        const current = e.name.startsWith('new/') ? [] : this.canonicalFlags(parsed.letters);
        const keep = preservedLetters(parsed.letters);
        let next: string[];
        if (update.action === 'set') next = given;
        else if (update.action === 'add') next = [...current, ...given.filter((g) => !current.some((c) => c.toLowerCase() === g.toLowerCase()))];
        else next = current.filter((c) => !given.some((g) => g.toLowerCase() === c.toLowerCase()));
        const letters = this.lettersOf(next, keep);
        const newName = `cur/${buildName(parsed.base, letters, false)}`;
        return newName === e.name ? null : { e, newName, letters };
      };
      /** Rename one file; false when it was gone (renamed or expunged by someone else meanwhile). */
      const rename = async (p: { e: Entry; newName: string; letters: string }): Promise<boolean> => {
        try {
          await fs.rename(path.join(this.dir, p.e.name), path.join(this.dir, p.newName));
        } catch (err) {
          if (!isErr(err, 'ENOENT')) throw err;
          return false;
        }
        if (p.e.name.startsWith('new/')) fromNew = true;
        this.noteFile(p.e.name, false);
        this.noteFile(p.newName, true);
        changed.push({ e: p.e, name: p.newName, flags: this.canonicalFlags(p.letters) });
        return true;
      };
      // Every rename at once (distinct files, so order does not matter); the few that lost a race
      // with another process are retried one by one after a fresh look at the folder.
      const sorted = [...new Set(uids)].sort((a, b) => a - b);
      const first = sorted.map((uid) => ({ uid, p: planOf(uid) }));
      const ok = await mapLimit(first, IO_CONCURRENCY, ({ p }) => (p ? rename(p) : Promise.resolve(true)));
      const retry = first.filter((_, i) => !ok[i]).map((f) => f.uid);
      for (const uid of retry) {
        for (let attempt = 1; attempt < 5; attempt++) {
          await this.syncLocked(true);
          const p = planOf(uid);
          if (!p || (await rename(p))) break;
        }
      }
      if (changed.length > 0) await Promise.all([fsyncDir(path.join(this.dir, 'cur')), fromNew ? fsyncDir(path.join(this.dir, 'new')) : undefined]);
      changed.sort((a, b) => a.e.uid - b.e.uid);
      const updated: MessageMeta[] = [];
      const rows: CacheRow[] = [];
      const delta = noDelta();
      this.cache.transaction(() => {
        this.mergeFromCache(delta);
        let ms: bigint | null = null;
        for (const c of changed) {
          const e = this.entries.get(c.e.uid);
          if (!e) continue;
          const flagsDiffer = !sameFlags(e.flags, c.flags);
          e.name = c.name;
          if (flagsDiffer) {
            e.flags = c.flags;
            e.modseq = ms ??= this.cache.nextModSeq();
          }
          rows.push(rowOf(e));
          if (flagsDiffer) updated.push(toMeta(e, this.mtimeOf));
        }
        this.cache.putMany(rows);
        this.knownHms = this.cache.highestModSeq();
      });
      this.emit(delta);
      if (updated.length > 0) this.emit({ append: false, flags: true, expunge: false }, origin);
      return { updated, modified: modified.sort((a, b) => a - b) };
    }
  }

  /** EXPUNGE. */
  expunge(uids: number[] | undefined, origin: string | undefined): Promise<number[]> {
    return this.mutex.run(() =>
      this.own(async () => {
        this.check();
        await this.syncLocked(false);
        return this.removeLocked(uids, origin, true);
      }),
    );
  }

  private async removeLocked(uids: number[] | undefined, origin: string | undefined, onlyDeleted: boolean): Promise<number[]> {
    const pick = uids ? [...new Set(uids)].sort((a, b) => a - b) : this.sortedUids().slice();
    const removed: number[] = [];
    /** Unlink one message's file: true when done or nothing to do, false when it was not where we thought. */
    const remove = async (uid: number): Promise<boolean> => {
      const e = this.entries.get(uid);
      if (!e) return true;
      if (onlyDeleted && !e.flags.includes('\\Deleted')) return true;
      try {
        await fs.unlink(path.join(this.dir, e.name));
      } catch (err) {
        if (!isErr(err, 'ENOENT')) throw err;
        return false;
      }
      this.noteFile(e.name, false);
      removed.push(uid);
      return true;
    };
    // All at once; the few renamed by someone else meanwhile are retried after a fresh look.
    const ok = await mapLimit(pick, IO_CONCURRENCY, remove);
    for (const uid of pick.filter((_, i) => !ok[i])) {
      for (let attempt = 1; attempt < 5; attempt++) {
        await this.syncLocked(true);
        if (await remove(uid)) break;
      }
    }
    removed.sort((a, b) => a - b);
    if (removed.length > 0) await Promise.all([fsyncDir(path.join(this.dir, 'cur')), fsyncDir(path.join(this.dir, 'new'))]);
    const delta = noDelta();
    const done: number[] = [];
    this.cache.transaction(() => {
      this.mergeFromCache(delta);
      let ms: bigint | null = null;
      for (const uid of removed) {
        if (!this.entries.has(uid)) continue;
        this.cache.remove(uid, (ms ??= this.cache.nextModSeq()));
        this.entries.delete(uid);
        done.push(uid);
      }
      this.changed();
      this.knownHms = this.cache.highestModSeq();
    });
    this.emit(delta);
    if (done.length > 0) this.emit({ append: false, flags: false, expunge: true }, origin);
    return done;
  }

  // ---- housekeeping ----

  private async cleanTmp(): Promise<void> {
    try {
      const tmp = path.join(this.dir, 'tmp');
      const now = Date.now();
      for (const f of await fs.readdir(tmp)) {
        const p = path.join(tmp, f);
        const st = await fs.stat(p).catch(() => null);
        if (st?.isFile() && now - Math.max(st.mtimeMs, st.ctimeMs) > TMP_MAX_AGE_MS) await fs.unlink(p).catch(() => undefined);
      }
    } catch {
      // Best effort only.
    }
  }

  /** Watch new/, cur/ and the folder itself; `onChange` is called (debounced by the caller) on any event. */
  watch(onChange: () => void): void {
    if (this.watchers.length > 0) return;
    for (const p of [path.join(this.dir, 'new'), path.join(this.dir, 'cur'), this.dir]) {
      try {
        const w = fsWatch(p, onChange);
        if (w) this.watchers.push(w);
      } catch {
        // No inotify (or the directory vanished): the periodic rescan still covers it.
      }
    }
  }

  /** Stop watching. */
  unwatch(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  /** Release the cache database; the object is unusable afterwards. */
  close(): void {
    this.unwatch();
    if (this.mtimeFlush) clearImmediate(this.mtimeFlush);
    this.flushMtimes();
    this.cache.close();
  }

  /** Follow a rename of the folder's directory (the caller holds the mutex): reopen the cache at its new place. */
  async relocate(name: string, dir: string): Promise<void> {
    const oldDir = this.dir;
    const oldFile = this.env.cacheFile(oldDir);
    if (this.mtimeFlush) clearImmediate(this.mtimeFlush);
    this.flushMtimes();
    this.cache.close();
    this.unwatch();
    this.name = name;
    this.dir = dir;
    const newFile = this.env.cacheFile(dir);
    if (oldFile && newFile && oldFile !== newFile && !oldFile.startsWith(oldDir + path.sep)) {
      // A cache kept outside the Maildir is named after the folder: move it along.
      for (const suffix of ['', '-wal', '-shm']) await fs.rename(oldFile + suffix, newFile + suffix).catch(() => undefined);
    }
    this.cache = await FolderCache.open(newFile, this.env.warn, this.env.owner);
    this.forceNext = true;
  }

  /** Mark as gone (deleted or renamed away) and release resources. */
  retire(): void {
    this.gone = true;
    this.close();
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function fsWatch(p: string, onChange: () => void): { close(): void } | null {
  const w = nodeWatch(p, { persistent: false }, () => onChange());
  w.on('error', () => w.close());
  return w;
}
