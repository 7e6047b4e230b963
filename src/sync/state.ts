/**
 * The state database of one account: a SQLite file (WAL, synchronous FULL) that remembers, per
 * folder pair and side, UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT and the message count last seen;
 * per synced message the UIDs on both sides, the last synced flags, Message-ID, size and hash;
 * the copies intended but not yet confirmed; and a generic `seen` table (message identities with
 * a timestamp, pruned by age) that `forward` uses for its de-duplication window.
 *
 * Every write that goes with a side effect is its own transaction, taken right before (intent)
 * or right after (record) the side effect, so a crash at any point leaves a state the planner
 * can resume from. One process at a time: open() takes a lock row and refuses a second live owner.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Intent, PairRecord, Side } from './plan.js';

const SCHEMA_VERSION = '1';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folder (
  id INTEGER PRIMARY KEY,
  a_name TEXT NOT NULL,
  b_name TEXT NOT NULL,
  a_uidvalidity INTEGER, b_uidvalidity INTEGER,
  a_modseq TEXT, b_modseq TEXT,
  a_uidnext INTEGER, b_uidnext INTEGER,
  a_count INTEGER, b_count INTEGER,
  a_maxuid INTEGER NOT NULL DEFAULT 0, b_maxuid INTEGER NOT NULL DEFAULT 0,
  a_token TEXT, b_token TEXT,
  clean INTEGER NOT NULL DEFAULT 0,
  synced_at INTEGER,
  UNIQUE (a_name, b_name)
);
CREATE TABLE IF NOT EXISTS pair (
  id INTEGER PRIMARY KEY,
  folder INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
  a_uid INTEGER, b_uid INTEGER,
  flags TEXT NOT NULL,
  message_id TEXT,
  size INTEGER NOT NULL,
  hash TEXT,
  a_stale INTEGER NOT NULL DEFAULT 0, b_stale INTEGER NOT NULL DEFAULT 0,
  synced_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pair_a ON pair (folder, a_uid);
CREATE INDEX IF NOT EXISTS pair_b ON pair (folder, b_uid);
CREATE TABLE IF NOT EXISTS intent (
  id INTEGER PRIMARY KEY,
  folder INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
  from_side TEXT NOT NULL,
  src_uid INTEGER NOT NULL,
  message_id TEXT,
  size INTEGER NOT NULL,
  hash TEXT NOT NULL,
  flags TEXT NOT NULL,
  target_min_uid INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  at INTEGER NOT NULL,
  info TEXT,
  PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_at ON seen (scope, at);
`;

/** What the state remembers of one side of a folder pair. */
export interface SideState {
  uidValidity: number | null;
  highestModSeq: bigint | null;
  uidNext: number | null;
  count: number | null;
  /** Highest UID handled (forward: every UID up to it is done). */
  maxUid: number;
  /** Repository.changeToken() recorded with these counters (null: none). */
  token: string | null;
}

/** One folder pair. */
export interface FolderState {
  id: number;
  aName: string;
  bName: string;
  a: SideState;
  b: SideState;
  /**
   * The last sync of this pair completed without errors, so every message of both sides is in a
   * pair: an incremental sync may then trust the records for messages that did not change.
   */
  clean: boolean;
  syncedAt: Date | null;
}

interface FolderRow {
  id: number;
  a_name: string;
  b_name: string;
  a_uidvalidity: number | null;
  b_uidvalidity: number | null;
  a_modseq: string | null;
  b_modseq: string | null;
  a_uidnext: number | null;
  b_uidnext: number | null;
  a_count: number | null;
  b_count: number | null;
  a_maxuid: number;
  b_maxuid: number;
  a_token: string | null;
  b_token: string | null;
  clean: number;
  synced_at: number | null;
}

interface PairRow {
  id: number;
  a_uid: number | null;
  b_uid: number | null;
  flags: string;
  message_id: string | null;
  size: number;
  hash: string | null;
  a_stale: number;
  b_stale: number;
}

interface IntentRow {
  id: number;
  from_side: string;
  src_uid: number;
  message_id: string | null;
  size: number;
  hash: string;
  flags: string;
  target_min_uid: number;
}

/** Raised when another live process holds the state database. */
export class StateLockedError extends Error {
  constructor(
    readonly file: string,
    readonly owner: string,
  ) {
    super(`${file} is in use by another imapkit process (${owner}); wait for it to finish or stop it`);
    this.name = 'StateLockedError';
  }
}

function sideOf(r: FolderRow, s: Side): SideState {
  const ms = s === 'a' ? r.a_modseq : r.b_modseq;
  return {
    uidValidity: s === 'a' ? r.a_uidvalidity : r.b_uidvalidity,
    highestModSeq: ms === null ? null : BigInt(ms),
    uidNext: s === 'a' ? r.a_uidnext : r.b_uidnext,
    count: s === 'a' ? r.a_count : r.b_count,
    maxUid: s === 'a' ? r.a_maxuid : r.b_maxuid,
    token: (s === 'a' ? r.a_token : r.b_token) ?? null,
  };
}

function folderOf(r: FolderRow): FolderState {
  return { id: r.id, aName: r.a_name, bName: r.b_name, a: sideOf(r, 'a'), b: sideOf(r, 'b'), clean: r.clean === 1, syncedAt: r.synced_at === null ? null : new Date(r.synced_at) };
}

function pairOf(r: PairRow): PairRecord {
  const p: PairRecord = { id: r.id, aUid: r.a_uid, bUid: r.b_uid, flags: r.flags === '' ? [] : r.flags.split(' '), messageId: r.message_id, size: r.size, hash: r.hash };
  if (r.a_stale) p.aStale = true;
  if (r.b_stale) p.bStale = true;
  return p;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The state database of one account. */
export class SyncState {
  private readonly db: Database.Database;
  private readonly lockOwner = `${hostname()}:${process.pid}`;
  private closed = false;

  private constructor(
    /** File name, or ':memory:'. */
    readonly file: string,
  ) {
    if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file, { timeout: 10_000 });
    this.db.pragma('journal_mode = WAL');
    // FULL: a transaction is on disk when commit returns, so an intent exists before its APPEND starts.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    // Databases made before the token columns existed get them.
    const cols = new Set((this.db.prepare('PRAGMA table_info(folder)').all() as Array<{ name: string }>).map((c) => c.name));
    for (const c of ['a_token', 'b_token']) if (!cols.has(c)) this.db.exec(`ALTER TABLE folder ADD COLUMN ${c} TEXT`);
    const v = this.db.prepare('SELECT value FROM meta WHERE key = ?').get('schema') as { value: string } | undefined;
    if (!v) this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema', SCHEMA_VERSION);
    else if (v.value !== SCHEMA_VERSION) throw new Error(`${file}: state database schema ${v.value} is not supported (expected ${SCHEMA_VERSION})`);
  }

  /** Open (creating) the state database at `file` and take its lock; StateLockedError if another live process has it. */
  static open(file: string, opts: { lock?: boolean } = {}): SyncState {
    const s = new SyncState(file);
    if (opts.lock !== false) {
      try {
        s.lock();
      } catch (err) {
        s.db.close();
        throw err;
      }
    }
    return s;
  }

  /** A state database in memory (tests, dry runs without a file). */
  static memory(): SyncState {
    return new SyncState(':memory:');
  }

  private lock(): void {
    this.db
      .transaction(() => {
        const row = this.db.prepare("SELECT value FROM meta WHERE key = 'lock'").get() as { value: string } | undefined;
        if (row && row.value !== this.lockOwner) {
          const [host, pid] = row.value.split(':');
          if (host === hostname() && pid !== undefined && alive(Number(pid))) throw new StateLockedError(this.file, `pid ${pid}`);
          if (host !== hostname()) throw new StateLockedError(this.file, row.value);
        }
        this.db.prepare("INSERT INTO meta (key, value) VALUES ('lock', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(this.lockOwner);
      })
      .immediate();
  }

  /** Run fn in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** The folder pair (a name, b name), created on first use. */
  folder(aName: string, bName: string): FolderState {
    const get = this.db.prepare('SELECT * FROM folder WHERE a_name = ? AND b_name = ?');
    let row = get.get(aName, bName) as FolderRow | undefined;
    if (!row) {
      this.db.prepare('INSERT INTO folder (a_name, b_name) VALUES (?, ?)').run(aName, bName);
      row = get.get(aName, bName) as FolderRow;
    }
    return folderOf(row);
  }

  /** Every folder pair known. */
  folders(): FolderState[] {
    return (this.db.prepare('SELECT * FROM folder ORDER BY id').all() as FolderRow[]).map(folderOf);
  }

  /** The folder pair with this id, or undefined. */
  folderById(id: number): FolderState | undefined {
    const row = this.db.prepare('SELECT * FROM folder WHERE id = ?').get(id) as FolderRow | undefined;
    return row ? folderOf(row) : undefined;
  }

  /** Update what is remembered of one side of a folder pair. */
  setSide(folderId: number, side: Side, st: Partial<SideState>): void {
    const sets: string[] = [];
    const vals: Array<number | string | null> = [];
    const col = (c: string, v: number | string | null) => {
      sets.push(`${side}_${c} = ?`);
      vals.push(v);
    };
    if (st.uidValidity !== undefined) col('uidvalidity', st.uidValidity);
    if (st.highestModSeq !== undefined) col('modseq', st.highestModSeq === null ? null : st.highestModSeq.toString());
    if (st.uidNext !== undefined) col('uidnext', st.uidNext);
    if (st.count !== undefined) col('count', st.count);
    if (st.maxUid !== undefined) col('maxuid', st.maxUid);
    if (st.token !== undefined) col('token', st.token);
    if (sets.length === 0) return;
    this.db.prepare(`UPDATE folder SET ${sets.join(', ')} WHERE id = ?`).run(...vals, folderId);
  }

  /** Mark whether the last sync of a pair completed (see FolderState.clean); a completed one also stamps synced_at. */
  setClean(folderId: number, clean: boolean): void {
    this.db.prepare('UPDATE folder SET clean = ?, synced_at = CASE WHEN ? THEN ? ELSE synced_at END WHERE id = ?').run(clean ? 1 : 0, clean ? 1 : 0, Date.now(), folderId);
  }

  /**
   * A side's UIDVALIDITY changed: in one transaction mark that side's UIDs stale (the planner finds
   * the messages again by identity), drop the pair's intents (they name old UIDs), forget the
   * side's mod-sequence and record the new UIDVALIDITY.
   */
  uidValidityChanged(folderId: number, side: Side, uidValidity: number): void {
    this.transaction(() => {
      this.db.prepare(`UPDATE pair SET ${side}_stale = 1 WHERE folder = ? AND ${side}_uid IS NOT NULL`).run(folderId);
      this.db.prepare('DELETE FROM intent WHERE folder = ?').run(folderId);
      this.db.prepare(`UPDATE folder SET ${side}_uidvalidity = ?, ${side}_modseq = NULL, ${side}_uidnext = NULL, ${side}_count = NULL, ${side}_maxuid = 0, ${side}_token = NULL, clean = 0 WHERE id = ?`).run(uidValidity, folderId);
    });
  }

  /** All pair records of a folder pair (in no particular order). */
  pairs(folderId: number): PairRecord[] {
    // Raw rows: this runs over every message of a folder on each sync, so it avoids row objects.
    const rows = this.stmt('SELECT id, a_uid, b_uid, flags, message_id, size, hash, a_stale, b_stale FROM pair WHERE folder = ?').raw(true).all(folderId) as Array<
      [number, number | null, number | null, string, string | null, number, string | null, number, number]
    >;
    const out: PairRecord[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const p: PairRecord = { id: r[0], aUid: r[1], bUid: r[2], flags: r[3] === '' ? [] : r[3].split(' '), messageId: r[4], size: r[5], hash: r[6] };
      if (r[7]) p.aStale = true;
      if (r[8]) p.bStale = true;
      out[i] = p;
    }
    return out;
  }

  private readonly stmts = new Map<string, Database.Statement>();

  /** A prepared statement, cached. */
  private stmt(sql: string): Database.Statement {
    let st = this.stmts.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.stmts.set(sql, st);
    }
    return st;
  }

  /** Pair records whose a-side UID is above minUid (forward keeps only those). */
  pairsAbove(folderId: number, side: Side, minUid: number): PairRecord[] {
    return (this.db.prepare(`SELECT * FROM pair WHERE folder = ? AND ${side}_uid > ? ORDER BY id`).all(folderId, minUid) as PairRow[]).map(pairOf);
  }

  /** Number of pair records of a folder pair. */
  pairCount(folderId: number): number {
    return (this.db.prepare('SELECT count(*) AS n FROM pair WHERE folder = ?').get(folderId) as { n: number }).n;
  }

  /**
   * Insert or update pair records, forget intents and record `seen` keys, all in one transaction;
   * returns the record ids.
   */
  writePairs(folderId: number, records: PairRecord[], intentIds: number[] = [], seen?: { scope: string; keys: string[] }): number[] {
    const seenIns = this.db.prepare('INSERT INTO seen (scope, key, at, info) VALUES (?, ?, ?, NULL) ON CONFLICT (scope, key) DO UPDATE SET at = excluded.at');
    const ins = this.db.prepare('INSERT INTO pair (folder, a_uid, b_uid, flags, message_id, size, hash, a_stale, b_stale, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const upd = this.db.prepare('UPDATE pair SET a_uid = ?, b_uid = ?, flags = ?, message_id = ?, size = ?, hash = ?, a_stale = ?, b_stale = ?, synced_at = ? WHERE id = ? AND folder = ?');
    const delIntent = this.db.prepare('DELETE FROM intent WHERE id = ? AND folder = ?');
    return this.transaction(() => {
      const now = Date.now();
      const ids: number[] = [];
      for (const r of records) {
        const vals = [r.aUid, r.bUid, [...r.flags].sort().join(' '), r.messageId ?? null, r.size, r.hash ?? null, r.aStale ? 1 : 0, r.bStale ? 1 : 0, now] as const;
        if (r.id !== undefined) {
          upd.run(...vals, r.id, folderId);
          ids.push(r.id);
        } else {
          ids.push(Number(ins.run(folderId, ...vals).lastInsertRowid));
        }
      }
      for (const id of intentIds) delIntent.run(id, folderId);
      if (seen) for (const k of seen.keys) seenIns.run(seen.scope, k, now);
      return ids;
    });
  }

  /** Forget pair records and intents in one transaction. */
  forget(folderId: number, pairIds: number[], intentIds: number[] = []): void {
    const delPair = this.db.prepare('DELETE FROM pair WHERE id = ? AND folder = ?');
    const delIntent = this.db.prepare('DELETE FROM intent WHERE id = ? AND folder = ?');
    this.transaction(() => {
      for (const id of pairIds) delPair.run(id, folderId);
      for (const id of intentIds) delIntent.run(id, folderId);
    });
  }

  /** Forget pair records whose side UID is at most maxUid (forward: everything up to its high-water mark is done). */
  forgetUpTo(folderId: number, side: Side, maxUid: number): number {
    return this.db.prepare(`DELETE FROM pair WHERE folder = ? AND ${side}_uid IS NOT NULL AND ${side}_uid <= ?`).run(folderId, maxUid).changes;
  }

  /** Pending intents of a folder pair. */
  intents(folderId: number): Intent[] {
    return (this.db.prepare('SELECT * FROM intent WHERE folder = ? ORDER BY id').all(folderId) as IntentRow[]).map((r) => ({
      id: r.id,
      from: r.from_side as Side,
      srcUid: r.src_uid,
      messageId: r.message_id,
      size: r.size,
      hash: r.hash,
      flags: r.flags === '' ? [] : r.flags.split(' '),
      targetMinUid: r.target_min_uid,
    }));
  }

  /** Record copies as intended (one transaction, durable on return); returns their ids in order. */
  addIntents(folderId: number, items: Array<Omit<Intent, 'id'>>): number[] {
    const ins = this.db.prepare('INSERT INTO intent (folder, from_side, src_uid, message_id, size, hash, flags, target_min_uid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    return this.transaction(() => {
      const now = Date.now();
      return items.map((it) => Number(ins.run(folderId, it.from, it.srcUid, it.messageId, it.size, it.hash, it.flags.join(' '), it.targetMinUid, now).lastInsertRowid));
    });
  }

  /** Forget a folder pair and everything under it. */
  dropFolder(folderId: number): void {
    this.db.prepare('DELETE FROM folder WHERE id = ?').run(folderId);
  }

  /** True when `key` was recorded in `scope` (forward: a Message-ID already forwarded). */
  seenHas(scope: string, key: string): boolean {
    return this.db.prepare('SELECT 1 FROM seen WHERE scope = ? AND key = ?').get(scope, key) !== undefined;
  }

  /** Record keys in a scope with a timestamp (default now) and optional info; a key seen again gets the new time. */
  seenAdd(scope: string, keys: Array<{ key: string; info?: string; at?: Date }>): void {
    const ins = this.db.prepare('INSERT INTO seen (scope, key, at, info) VALUES (?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET at = excluded.at, info = excluded.info');
    this.transaction(() => {
      const now = Date.now();
      for (const k of keys) ins.run(scope, k.key, k.at?.getTime() ?? now, k.info ?? null);
    });
  }

  /** Forget keys of a scope (all scopes when undefined) recorded before `olderThan`; returns how many went. */
  seenPrune(olderThan: Date, scope?: string): number {
    if (scope === undefined) return this.db.prepare('DELETE FROM seen WHERE at < ?').run(olderThan.getTime()).changes;
    return this.db.prepare('DELETE FROM seen WHERE scope = ? AND at < ?').run(scope, olderThan.getTime()).changes;
  }

  /** Keys of a scope, newest first (status displays, tests). */
  seenList(scope: string, limit = 100): Array<{ key: string; at: Date; info: string | null }> {
    return (this.db.prepare('SELECT key, at, info FROM seen WHERE scope = ? ORDER BY at DESC LIMIT ?').all(scope, limit) as Array<{ key: string; at: number; info: string | null }>).map((r) => ({
      key: r.key,
      at: new Date(r.at),
      info: r.info,
    }));
  }

  /** A value of the meta table (small per-account facts, e.g. forward's last error). */
  getMeta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(`x:${key}`) as { value: string } | undefined)?.value;
  }

  /** Set (or with undefined, delete) a meta value. */
  setMeta(key: string, value: string | undefined): void {
    if (value === undefined) this.db.prepare('DELETE FROM meta WHERE key = ?').run(`x:${key}`);
    else this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(`x:${key}`, value);
  }

  /** SQLite's own consistency check: 'ok' when the file is intact. */
  integrityCheck(): string {
    return (this.db.pragma('integrity_check', { simple: true }) as string) ?? 'unknown';
  }

  /** Release the lock and close. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.prepare("DELETE FROM meta WHERE key = 'lock' AND value = ?").run(this.lockOwner);
    } catch {
      // A full disk or read-only file: the stale lock is taken over next time (its pid is gone).
    }
    this.db.close();
  }
}
