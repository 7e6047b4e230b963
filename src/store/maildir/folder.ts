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
import { StoreError, type ChangeEvent, type MessageMeta, type NewMessage, type UidMapping, type FlagUpdate, type FlagUpdateResult } from '../contract.js';
import { FolderCache, type CacheRow } from './cache.js';
import { Dotlock } from './dotlock.js';
import { buildName, lettersToFlags, newBaseName, parseName, preservedLetters, servedBytes, servedSize, sortLetters, systemLetter } from './filename.js';
import { fsyncDir, isErr, mkdirOwned, writeNewFile, type Owner } from './fsutil.js';
import { addKeywords, keywordIndex, keywordsStampSync, readKeywords, type KeywordTable } from './keywords.js';
import { Mutex } from './mutex.js';
import { canonicalFlags } from '../common.js';
import { formatRecord, newMailboxGuid, parseUidlist, recordExt, serializeUidlist, type Uidlist, type UidlistRecord } from './uidlist.js';
import { nextUidValidity } from './uidvalidity.js';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, watch as nodeWatch } from 'node:fs';

/** Changes within this long before a scan may share the directory's mtime tick: rescan until it passes. */
const DIRTY_MS = 1000;
/** Messages up to this size are read with one synchronous call. */
const SYNC_READ_MAX = 256 * 1024;
/** Files left in tmp/ longer than this are leftovers of a crash (Dovecot uses 36 hours too). */
const TMP_MAX_AGE_MS = 36 * 3600 * 1000;

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
  id?: string;
  /** The MessageMeta last built for this entry, valid while its modseq is the entry's (flags never change without a new MODSEQ). */
  meta?: MessageMeta;
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

/** EMAILID (RFC 8474 objectid) from a message GUID: same GUID, same id. */
export function emailIdOf(guid: string): string {
  // The GUID itself in the objectid alphabet (cheap, and unique as GUIDs are); a hash only for long ones.
  const enc = Buffer.from(guid).toString('base64url');
  return enc.length <= 200 ? 'M' + enc : 'H' + createHash('sha256').update(guid).digest('base64url').slice(0, 32);
}

/**
 * The metadata of an entry, built once per change and shared by every caller (SELECT of every
 * session, FETCH, STORE replies): callers treat MessageMeta as read-only, and the flag list is frozen
 * to keep it so.
 */
function toMeta(e: Entry, mtimeOf: (e: Entry) => number): MessageMeta {
  const cached = e.meta;
  if (cached !== undefined && cached.modSeq === e.modseq) return cached;
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

function entryOf(r: CacheRow): Entry {
  return { ...r, flags: r.flags === '' ? [] : r.flags.split(' ') };
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
  private newSig = '';
  private curSig = '';
  private lastScanStart = 0;
  private lastChange = 0;
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
    for (const row of cache.all()) f.entries.set(row.uid, entryOf(row));
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
    if (!this.sortedCache) this.sortedCache = [...this.entries.keys()].sort((a, b) => a - b);
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

  private async readUidlist(): Promise<void> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.uidlistPath, fsc.O_RDONLY);
    } catch (err) {
      if (!isErr(err, 'ENOENT')) throw err;
      this.ul = null;
      this.ulSig = '';
      this.byBase.clear();
      return;
    }
    try {
      const st = await fh.stat({ bigint: true });
      const sig = sigOf(st);
      if (sig === this.ulSig && this.ul) return;
      const text = (await fh.readFile()).toString('utf8');
      const parsed = parseUidlist(text);
      if (!parsed.ok) {
        this.env.warn(`${this.uidlistPath}: ${parsed.reason}; it will be recreated`);
        this.ul = null;
        this.ulSig = '';
        this.byBase.clear();
        return;
      }
      // A half-appended last line: read again next time.
      this.ulSig = parsed.bytes === Number(st.size) ? sig : '';
      this.ul = parsed.list;
      this.byBase = new Map(parsed.list.records.map((r) => [r.base, r]));
    } finally {
      await fh.close();
    }
  }

  /** base -> "cur/<file>" | "new/<file>"; new/ is read first so a concurrent new->cur move is never missed. */
  private async scan(): Promise<Map<string, string>> {
    this.lastScanStart = Date.now();
    const [newSt, curSt] = await Promise.all([statOrNull(path.join(this.dir, 'new')), statOrNull(path.join(this.dir, 'cur'))]);
    if (!newSt || !curSt) {
      if (!(await statOrNull(this.dir))) {
        this.gone = true;
        throw new StoreError('NONEXISTENT', `mailbox ${this.name} no longer exists`);
      }
      for (const sub of ['cur', 'new', 'tmp']) await mkdirOwned(path.join(this.dir, sub), this.env.owner);
    }
    this.newSig = sigOf(newSt);
    this.curSig = sigOf(curSt);
    this.lastChange = Math.max(Number((newSt?.mtimeNs ?? 0n) / 1_000_000n), Number((curSt?.mtimeNs ?? 0n) / 1_000_000n));
    const map = new Map<string, string>();
    for (const sub of ['new', 'cur']) {
      let names: string[];
      try {
        names = await fs.readdir(path.join(this.dir, sub));
      } catch (err) {
        if (isErr(err, 'ENOENT')) continue;
        throw err;
      }
      for (const f of names) {
        if (f.startsWith('.') || f.includes('\n') || f.includes('\r')) continue;
        const colon = f.indexOf(':');
        map.set(colon < 0 ? f : f.slice(0, colon), `${sub}/${f}`);
      }
    }
    return map;
  }

  /** Flag lists by letters, for the keyword table they were resolved with (most files share a handful of combinations). */
  private flagMemo: { table: KeywordTable; byLetters: Map<string, string[]> } | null = null;

  /** The flags of a file name; entries of equal letters share one list (never changed in place, only replaced). */
  private flagsOfName(name: string): string[] {
    if (name.startsWith('new/')) return [];
    const letters = parseName(name.slice(4)).letters;
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
    if (recreate) {
      await lock.replace(serializeUidlist(next));
    } else if (added.length > 0) {
      const fh = await fs.open(this.uidlistPath, fsc.O_WRONLY | fsc.O_APPEND);
      try {
        await fh.write(added.map(formatRecord).join(''));
        await fh.datasync();
      } finally {
        await fh.close();
      }
    }
    this.ul = next;
    this.byBase = new Map(all.map((r) => [r.base, r]));
    // Our own write needs no re-read.
    const st = await statOrNull(this.uidlistPath);
    const expected = Buffer.byteLength(serializeUidlist(next));
    this.ulSig = st && Number(st.size) === expected ? sigOf(st) : '';
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
  private sizesOfNew(scan: Map<string, string>): Map<number, number> {
    const out = new Map<number, number>();
    for (const rec of this.ul?.records ?? []) {
      const name = scan.get(rec.base);
      if (!name) continue;
      const e = this.entries.get(rec.uid);
      if (e && e.base === rec.base) continue;
      const size = parseName(name.slice(4)).vsize;
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
    const ulSt = statSyncOrNull(this.uidlistPath);
    const newSt = statSyncOrNull(path.join(this.dir, 'new'));
    const curSt = statSyncOrNull(path.join(this.dir, 'cur'));
    const kwSig = keywordsStampSync(this.keywordsPath);
    const quiet =
      !force &&
      !this.forceNext &&
      this.ul !== null &&
      sigOf(ulSt) === this.ulSig &&
      sigOf(newSt) === this.newSig &&
      sigOf(curSt) === this.curSig &&
      kwSig === this.kw.stamp &&
      this.lastScanStart - this.lastChange > DIRTY_MS;
    if (quiet) return;
    this.forceNext = false;
    if (!newSt && !curSt && !(await statOrNull(this.dir))) {
      this.gone = true;
      throw new StoreError('NONEXISTENT', `mailbox ${this.name} no longer exists`);
    }
    await this.readUidlist();
    if (kwSig !== this.kw.stamp) this.kw = await readKeywords(this.keywordsPath);
    let scan = await this.scan();
    if (ulSt) this.lastChange = Math.max(this.lastChange, Number(ulSt.mtimeNs / 1_000_000n));
    let unknown = !this.ul || this.ul.version !== 3 || !this.ul.guid;
    if (!unknown) for (const b of scan.keys()) if (!this.byBase.has(b)) (unknown = true);
    if (unknown) scan = await this.assignUnknown();
    const list = this.ul;
    if (!list) throw new StoreError('SERVERBUG', `${this.uidlistPath} could not be created`);

    // A file we know but did not see may just be mid-rename (flag change): look once more.
    let missing = false;
    for (const e of this.entries.values()) {
      if (!scan.has(e.base) || this.byBase.get(e.base)?.uid !== e.uid) {
        missing = true;
        break;
      }
    }
    if (missing) {
      const again = await this.scan();
      for (const [b, n] of again) scan.set(b, n);
    }

    if (this.cache.meta('uidvalidity') !== String(list.uidValidity) && this.entries.size > 0) {
      // Another UIDVALIDITY: everything we cached belongs to the old one.
      this.entries.clear();
      this.changed();
    }
    const sizes = this.sizesOfNew(scan);
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
      for (const rec of list.records) {
        if (merged.has(rec.uid)) continue;
        const name = scan.get(rec.base);
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
        const ne: Entry = {
          uid: rec.uid,
          base: rec.base,
          name,
          flags: this.flagsOfName(name),
          modseq: mod(),
          size,
          mtime: NaN,
          savedate: now,
          guid: recordExt(rec, 'G') ?? rec.base,
        };
        if (e) this.cache.remove(e.uid, ne.modseq);
        this.entries.set(rec.uid, ne);
        this.changed();
        fresh.push(rowOf(ne));
        delta.append = true;
      }
      this.cache.putMany(fresh);
      for (const e of [...this.entries.values()]) {
        if (merged.has(e.uid)) continue;
        if (scan.has(e.base) && this.byBase.get(e.base)?.uid === e.uid) continue;
        this.cache.remove(e.uid, mod());
        this.entries.delete(e.uid);
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
      await this.readUidlist();
      const list = this.ul ? { ...this.ul } : await this.freshUidlist();
      if (!this.ul) this.byBase.clear();
      const added: UidlistRecord[] = [];
      const placed: Incoming[] = [];
      const rows: Entry[] = [];
      try {
        for (const m of incoming) {
          let base = m.base;
          // A base already in this uidlist (e.g. a message moved back) gets a fresh name.
          if (this.byBase.has(base) || added.some((r) => r.base === base)) {
            const p = parseName(base);
            base = newBaseName(p.fileSize ?? m.size, m.size);
          }
          const letters = this.lettersOf(m.flags);
          const inNew = letters === '';
          const rel = `${inNew ? 'new' : 'cur'}/${buildName(base, letters, inNew)}`;
          const target = path.join(this.dir, rel);
          try {
            await fs.rename(m.path, target);
          } catch (err) {
            // A source file renamed under us (its flags changed): the caller looks it up again.
            if (m.rename && isErr(err, 'ENOENT')) continue;
            throw err;
          }
          placedPaths.push({ from: m.path, to: target, rename: m.rename });
          const uid = list.nextUid++;
          const ext = m.guid !== base ? [`G${m.guid.replace(/\s/g, '_')}`] : [];
          added.push({ uid, base, ext });
          placed.push(m);
          rows.push({ uid, base, name: rel, flags: this.canonicalFlags(letters), modseq: 0n, size: m.size, mtime: m.mtime, savedate: Date.now(), guid: m.guid !== base ? m.guid.replace(/\s/g, '_') : base });
        }
        await Promise.all([fsyncDir(path.join(this.dir, 'new')), fsyncDir(path.join(this.dir, 'cur'))]);
        await this.writeUidlist(lock, list, added, null);
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
      }
      this.mergeFromCache(delta);
      const ms = result.rows.length > 0 ? this.cache.nextModSeq() : 0n;
      result.rows.forEach((e, i) => {
        e.modseq = ms;
        this.entries.set(e.uid, e);
        this.cache.put(rowOf(e));
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
    return this.mutex.run(async () => {
      this.check();
      const incoming: Incoming[] = [];
      try {
        for (const m of messages) {
          if (!Buffer.isBuffer(m.data)) throw new StoreError('CANNOT', 'message data must be bytes');
          const size = servedSize(m.data);
          const base = newBaseName(m.data.length, size);
          const tmp = path.join(this.dir, 'tmp', base);
          const date = m.internalDate ?? new Date();
          if (Number.isNaN(date.getTime())) throw new StoreError('CANNOT', 'invalid internal date');
          await writeNewFile(tmp, m.data, { owner: this.env.owner, mtime: date });
          incoming.push({ path: tmp, rename: false, base, flags: this.cleanFlags(m.flags ?? []), size, mtime: date.getTime(), guid: base, structure: m.structure });
        }
        const { uids } = await this.placeLocked(incoming, origin);
        return { uidValidity: this.uidValidity, sourceUids: [], destUids: uids };
      } catch (err) {
        for (const m of incoming) await fs.unlink(m.path).catch(() => undefined);
        throw err;
      }
    });
  }

  /** Flags we can store (the rules every backend shares): CANNOT for a keyword that is not an atom. */
  private cleanFlags(flags: string[]): string[] {
    return canonicalFlags(flags);
  }

  /** Give copies (or the files themselves, for a move) of some messages to another folder. */
  exportTo(target: Folder, uids: number[], move: boolean, origin: string | undefined): Promise<UidMapping> {
    // Both folders' mutexes, always taken in directory order so opposite copies cannot deadlock.
    const [first, second] = this.dir <= target.dir ? [this, target] : [target, this];
    const body = () => this.exportLocked(target, uids, move, origin);
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
    return this.mutex.run(async () => {
      this.check();
      await this.syncLocked(false);
      const given = this.cleanFlags(update.flags);
      if (update.action !== 'remove') await this.ensureKeywords(given);
      const modified: number[] = [];
      const changed: Array<{ e: Entry; name: string; flags: string[] }> = [];
      for (const uid of [...new Set(uids)].sort((a, b) => a - b)) {
        for (let attempt = 0; attempt < 5; attempt++) {
          const e = this.entries.get(uid);
          if (!e) break;
          if (update.unchangedSince !== undefined && e.modseq > update.unchangedSince) {
            modified.push(uid);
            break;
          }
          const file = e.name.slice(4);
          const parsed = parseName(file);
          // Compute from the letters on disk (Dovecot may have changed them) plus the request.
          const current = e.name.startsWith('new/') ? [] : this.canonicalFlags(parsed.letters);
          const keep = preservedLetters(parsed.letters);
          let next: string[];
          if (update.action === 'set') next = given;
          else if (update.action === 'add') next = [...current, ...given.filter((g) => !current.some((c) => c.toLowerCase() === g.toLowerCase()))];
          else next = current.filter((c) => !given.some((g) => g.toLowerCase() === c.toLowerCase()));
          const letters = this.lettersOf(next, keep);
          const newName = `cur/${buildName(parsed.base, letters, false)}`;
          if (newName === e.name) break;
          try {
            await fs.rename(path.join(this.dir, e.name), path.join(this.dir, newName));
            changed.push({ e, name: newName, flags: this.canonicalFlags(letters) });
            break;
          } catch (err) {
            if (!isErr(err, 'ENOENT')) throw err;
            await this.syncLocked(true);
          }
        }
      }
      if (changed.length > 0) await fsyncDir(path.join(this.dir, 'cur'));
      const updated: MessageMeta[] = [];
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
          this.cache.put(rowOf(e));
          if (flagsDiffer) updated.push(toMeta(e, this.mtimeOf));
        }
        this.knownHms = this.cache.highestModSeq();
      });
      this.emit(delta);
      if (updated.length > 0) this.emit({ append: false, flags: true, expunge: false }, origin);
      return { updated, modified };
    });
  }

  /** EXPUNGE. */
  expunge(uids: number[] | undefined, origin: string | undefined): Promise<number[]> {
    return this.mutex.run(async () => {
      this.check();
      await this.syncLocked(false);
      return this.removeLocked(uids, origin, true);
    });
  }

  private async removeLocked(uids: number[] | undefined, origin: string | undefined, onlyDeleted: boolean): Promise<number[]> {
    const pick = uids ? [...new Set(uids)].sort((a, b) => a - b) : this.sortedUids().slice();
    const removed: number[] = [];
    for (const uid of pick) {
      for (let attempt = 0; attempt < 5; attempt++) {
        const e = this.entries.get(uid);
        if (!e) break;
        if (onlyDeleted && !e.flags.includes('\\Deleted')) break;
        try {
          await fs.unlink(path.join(this.dir, e.name));
          removed.push(uid);
          break;
        } catch (err) {
          if (!isErr(err, 'ENOENT')) throw err;
          await this.syncLocked(true);
        }
      }
    }
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
