/**
 * imapkit's own per-folder state next to the Maildir files (never Dovecot's index files): an SQLite
 * database `imapkit-cache.sqlite` holding, per UID, what the last sync saw (file name, flags, sizes,
 * INTERNALDATE), the MODSEQ of its last change, tombstones of expunged UIDs for QRESYNC, and an
 * optional blob per message (the MIME index). It is a cache: every sync compares it with the files
 * and the files win; a missing or unreadable database is simply rebuilt (MODSEQs then restart).
 * Several processes may share it; changes happen inside IMMEDIATE transactions.
 */
import Database from 'better-sqlite3';
import { promises as fs } from 'node:fs';
import { chownTo, isErr, type Owner } from './fsutil.js';

/** One message as last synced. */
export interface CacheRow {
  uid: number;
  base: string;
  /** Current file name relative to the folder: "cur/<name>" or "new/<name>". */
  name: string;
  /** Flags, space separated, as they were resolved from the name. */
  flags: string;
  modseq: bigint;
  /** RFC822.SIZE (CRLF size). */
  size: number;
  /** INTERNALDATE (file mtime), ms; NaN while not looked up yet. */
  mtime: number;
  /** SAVEDATE, ms. */
  savedate: number;
  /** Message GUID: the uidlist G field when present, else the base name. */
  guid: string;
}

const SCHEMA_VERSION = '1';

/** Rows per statement in putMany (9 parameters each, far below SQLite's limit of 32,766). */
const PUT_BATCH = 200;

const UPSERT_TAIL =
  ' ON CONFLICT(uid) DO UPDATE SET aux = CASE WHEN msg.base = excluded.base THEN msg.aux ELSE NULL END, base = excluded.base, name = excluded.name, flags = excluded.flags, ' +
  'modseq = excluded.modseq, size = excluded.size, mtime = excluded.mtime, savedate = excluded.savedate, guid = excluded.guid';

function upsertSql(rows: number): string {
  return 'INSERT INTO msg (uid, base, name, flags, modseq, size, mtime, savedate, guid, aux) VALUES ' + Array(rows).fill('(?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)').join(', ') + UPSERT_TAIL;
}

/** The cache database of one folder. */
export class FolderCache {
  private readonly db: Database.Database;
  private readonly stmts: {
    all: Database.Statement;
    since: Database.Statement;
    get: Database.Statement;
    upsert: Database.Statement;
    del: Database.Statement;
    gone: Database.Statement;
    goneSince: Database.Statement;
    getMeta: Database.Statement;
    setMeta: Database.Statement;
    getAux: Database.Statement;
    setAux: Database.Statement;
    setMtime: Database.Statement;
    upsertMany: Database.Statement;
  };
  /** True when the database lives only in memory (the file could not be used). */
  readonly inMemory: boolean;

  private constructor(db: Database.Database, inMemory: boolean) {
    this.db = db;
    this.inMemory = inMemory;
    this.stmts = {
      // Raw rows (arrays): loading 50,000 of them is much cheaper without an object per row.
      all: db.prepare('SELECT uid, base, name, flags, modseq, size, mtime, savedate, guid FROM msg ORDER BY uid').raw(true),
      since: db.prepare('SELECT uid, base, name, flags, modseq, size, mtime, savedate, guid FROM msg WHERE modseq > ? ORDER BY uid').raw(true),
      get: db.prepare('SELECT uid, base, name, flags, modseq, size, mtime, savedate, guid FROM msg WHERE uid = ?'),
      upsert: db.prepare(upsertSql(1)),
      // A cold sync of a large folder writes every row: one statement per PUT_BATCH rows.
      upsertMany: db.prepare(upsertSql(PUT_BATCH)),
      del: db.prepare('DELETE FROM msg WHERE uid = ?'),
      gone: db.prepare('INSERT OR REPLACE INTO gone (uid, modseq) VALUES (?, ?)'),
      goneSince: db.prepare('SELECT uid FROM gone WHERE modseq > ? ORDER BY uid'),
      getMeta: db.prepare('SELECT v FROM meta WHERE k = ?'),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)'),
      getAux: db.prepare('SELECT aux FROM msg WHERE uid = ? AND base = ?'),
      setAux: db.prepare('UPDATE msg SET aux = ? WHERE uid = ? AND base = ?'),
      setMtime: db.prepare('UPDATE msg SET mtime = ? WHERE uid = ? AND base = ?'),
    };
  }

  /** Open (or create) the database at `file`; falls back to memory when the file is unusable. */
  static async open(file: string | null, onProblem?: (msg: string) => void, owner?: Owner): Promise<FolderCache> {
    if (file !== null) {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const db = new Database(file, { timeout: 15_000 });
          try {
            FolderCache.init(db);
            // Running as root in someone's Maildir: the cache must stay usable by the mail owner.
            if (owner) for (const suffix of ['', '-wal', '-shm']) await chownTo(file + suffix, owner).catch(() => undefined);
            return new FolderCache(db, false);
          } catch (err) {
            db.close();
            throw err;
          }
        } catch (err) {
          if (isErr(err, 'SQLITE_BUSY', 'SQLITE_LOCKED')) throw err;
          onProblem?.(`cache ${file} unusable (${(err as Error).message}); ${attempt === 0 ? 'rebuilding it' : 'keeping it in memory'}`);
          if (attempt === 0) {
            // A corrupt cache is just rebuilt from the files.
            for (const suffix of ['', '-wal', '-shm']) await fs.unlink(file + suffix).catch(() => undefined);
          }
        }
      }
    }
    const db = new Database(':memory:');
    FolderCache.init(db);
    return new FolderCache(db, true);
  }

  private static init(db: Database.Database): void {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(`
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS msg (
        uid INTEGER PRIMARY KEY, base TEXT NOT NULL, name TEXT NOT NULL, flags TEXT NOT NULL,
        modseq INTEGER NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL, savedate INTEGER NOT NULL,
        guid TEXT NOT NULL, aux BLOB);
      CREATE TABLE IF NOT EXISTS gone (uid INTEGER PRIMARY KEY, modseq INTEGER NOT NULL);
    `);
    const v = db.prepare("SELECT v FROM meta WHERE k = 'schema'").get() as { v: string } | undefined;
    if (!v) db.prepare("INSERT INTO meta (k, v) VALUES ('schema', ?)").run(SCHEMA_VERSION);
    else if (v.v !== SCHEMA_VERSION) throw new Error(`cache schema ${v.v}, expected ${SCHEMA_VERSION}`);
  }

  /** Run fn in an IMMEDIATE transaction (one writer across processes). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** A meta value. */
  meta(key: string): string | undefined {
    const row = this.stmts.getMeta.get(key) as { v: string } | undefined;
    return row?.v;
  }

  /** Set a meta value. */
  setMeta(key: string, value: string): void {
    this.stmts.setMeta.run(key, value);
  }

  /** HIGHESTMODSEQ recorded. */
  highestModSeq(): bigint {
    return BigInt(this.meta('hms') ?? '1');
  }

  /** Take the next MODSEQ (inside a transaction). */
  nextModSeq(): bigint {
    const next = this.highestModSeq() + 1n;
    this.setMeta('hms', next.toString());
    return next;
  }

  /** Forget everything about messages (UIDVALIDITY changed); MODSEQs keep growing. */
  reset(uidValidity: number): void {
    this.db.exec('DELETE FROM msg; DELETE FROM gone;');
    this.setMeta('uidvalidity', String(uidValidity));
  }

  /** Every row, ascending by UID. */
  all(): CacheRow[] {
    // Rows of one sync share their MODSEQ: one BigInt per value, not one per row.
    const modseqs = new Map<number, bigint>();
    return (this.stmts.all.all() as RawTuple[]).map((t) => {
      let ms = modseqs.get(t[4]);
      if (ms === undefined) modseqs.set(t[4], (ms = BigInt(t[4])));
      return { uid: t[0], base: t[1], name: t[2], flags: t[3], modseq: ms, size: t[5], mtime: t[6] < 0 ? NaN : t[6], savedate: t[7], guid: t[8] };
    });
  }

  /** Rows whose MODSEQ is above `since`. */
  changedSince(since: bigint): CacheRow[] {
    return (this.stmts.since.all(since) as RawTuple[]).map(fromTuple);
  }

  /** One row. */
  get(uid: number): CacheRow | undefined {
    const r = this.stmts.get.get(uid) as RawRow | undefined;
    return r ? toRow(r) : undefined;
  }

  /** Insert or replace a row (the blob stays only while the base name is unchanged). */
  put(row: CacheRow): void {
    this.stmts.upsert.run(rowParams(row));
  }

  /** put() for many rows (inside a transaction), in batches; rows must have distinct UIDs. */
  putMany(rows: readonly CacheRow[]): void {
    let i = 0;
    // One parameter array for every batch, filled in place (no array per row).
    const params = new Array<unknown>(PUT_BATCH * 9);
    for (; i + PUT_BATCH <= rows.length; i += PUT_BATCH) {
      for (let j = 0; j < PUT_BATCH; j++) {
        const r = rows[i + j] as CacheRow;
        const k = j * 9;
        params[k] = r.uid;
        params[k + 1] = r.base;
        params[k + 2] = r.name;
        params[k + 3] = r.flags;
        params[k + 4] = r.modseq;
        params[k + 5] = r.size;
        params[k + 6] = Number.isNaN(r.mtime) ? -1 : Math.round(r.mtime);
        params[k + 7] = Math.round(r.savedate);
        params[k + 8] = r.guid;
      }
      this.stmts.upsertMany.run(params);
    }
    for (; i < rows.length; i++) this.put(rows[i] as CacheRow);
  }

  /** Record INTERNALDATEs looked up after the row was written. */
  setMtimes(items: Array<{ uid: number; base: string; mtime: number }>): void {
    for (const i of items) this.stmts.setMtime.run(Math.round(i.mtime), i.uid, i.base);
  }

  /** Remove a row and remember the expunge at `modseq`. */
  remove(uid: number, modseq: bigint): void {
    this.stmts.del.run(uid);
    this.stmts.gone.run(uid, modseq);
  }

  /** UIDs expunged with MODSEQ > since. */
  goneSince(since: bigint): number[] {
    return (this.stmts.goneSince.all(since) as Array<{ uid: number }>).map((r) => r.uid);
  }

  /** The per-message blob, if one was stored for this UID and base. */
  aux(uid: number, base: string): Buffer | null {
    const r = this.stmts.getAux.get(uid, base) as { aux: Buffer | null } | undefined;
    return r?.aux ?? null;
  }

  /** Store the per-message blob. */
  setAux(uid: number, base: string, data: Buffer): void {
    this.stmts.setAux.run(data, uid, base);
  }

  /** Close the database. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** The upsert parameters of a row, in column order. */
function rowParams(row: CacheRow): unknown[] {
  return [row.uid, row.base, row.name, row.flags, row.modseq, row.size, Number.isNaN(row.mtime) ? -1 : Math.round(row.mtime), Math.round(row.savedate), row.guid];
}

// MODSEQs stay far below 2^53, so SQLite integers come back as plain numbers.
interface RawRow {
  uid: number;
  base: string;
  name: string;
  flags: string;
  modseq: number;
  size: number;
  mtime: number;
  savedate: number;
  guid: string;
}

type RawTuple = [number, string, string, string, number, number, number, number, string];

function toRow(r: RawRow): CacheRow {
  return { ...r, modseq: BigInt(r.modseq), mtime: r.mtime < 0 ? NaN : r.mtime };
}

function fromTuple(t: RawTuple): CacheRow {
  return { uid: t[0], base: t[1], name: t[2], flags: t[3], modseq: BigInt(t[4]), size: t[5], mtime: t[6] < 0 ? NaN : t[6], savedate: t[7], guid: t[8] };
}
