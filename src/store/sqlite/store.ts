/**
 * SqliteStore: the MailStore contract on one SQLite database file (better-sqlite3, WAL mode).
 *
 * - Durability: synchronous=FULL, and every write is one transaction that has committed before the
 *   returned promise resolves ("an APPEND answered OK is on disk").
 * - Several processes may open the same file: writes use BEGIN IMMEDIATE and wait on a busy timeout,
 *   so UIDs and MODSEQs stay unique; multi-statement reads run in one read transaction (a snapshot).
 * - Change notifications (watch) reach only listeners registered on the same SqliteStore instance;
 *   sessions of another process or another instance are not told (they see changes when they look).
 * - MODSEQ values are kept as SQLite integers and read back as JS numbers: exact up to 2^53.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  StoreError,
  type ChangeEvent,
  type Changes,
  type FlagUpdate,
  type FlagUpdateResult,
  type MailboxHandle,
  type MailboxInfo,
  type MailboxStatus,
  type MailStore,
  type MessageMeta,
  type NewMessage,
  type QuotaInfo,
  type SpecialUse,
  type UidMapping,
  type UserMailStore,
} from '../contract.js';
import {
  applyFlagUpdate,
  canonicalFlags,
  canonicalMailboxName,
  checkQuota,
  emitTo,
  isInbox,
  isSelfOrDescendant,
  newObjectId,
  nextUidValidity,
  parentsOf,
  toKiB,
  type QuotaLimits,
} from '../common.js';
import { DELETED_BIT, FLAG_BITS, SCHEMA, SCHEMA_VERSION, SEEN_BIT } from './schema.js';
import { SqliteUserDb } from './users.js';

/** Options of SqliteStore. */
export interface SqliteStoreOptions {
  /** scrypt cost (log2 N) of the user database; default 15. Lower only in tests. */
  scryptLn?: number;
  /** Per-user quota limits enforced on append and copy. */
  quota?: QuotaLimits;
  /** How long a write waits for another process's write lock, ms; default 10000. */
  busyTimeoutMs?: number;
}

interface MailboxRow {
  id: number;
  user_id: number;
  name: string;
  object_id: string;
  special_use: string | null;
  uidvalidity: number;
  uidnext: number;
  highestmodseq: number;
}

/** Column order of every message metadata query (raw rows). */
type MetaRow = [uid: number, modseq: number, sysflags: number, keywords: string, size: number, internal: number, save: number, emailId: string, threadId: string];
const META_COLUMNS = 'uid, modseq, sysflags, keywords, size, internal_date, save_date, email_id, thread_id';

const UIDS_IN = 'uid IN (SELECT value FROM json_each(?))';
// SQLite integers are signed 64-bit; clamp a client-supplied MODSEQ before binding it.
const MAX_INT64 = 2n ** 63n - 1n;

function flagsOf(bits: number, keywords: string): string[] {
  const out: string[] = [];
  for (const [flag, bit] of FLAG_BITS) if (bits & bit) out.push(flag);
  if (keywords) for (const k of keywords.split(' ')) out.push(k);
  return out;
}

function encodeFlags(flags: readonly string[]): { bits: number; keywords: string } {
  let bits = 0;
  const kws: string[] = [];
  for (const f of flags) {
    const entry = FLAG_BITS.find(([name]) => name === f);
    if (entry) bits |= entry[1];
    else kws.push(f);
  }
  return { bits, keywords: kws.join(' ') };
}

function metaOf(r: MetaRow): MessageMeta {
  return {
    uid: r[0],
    flags: flagsOf(r[2], r[3]),
    modSeq: BigInt(r[1]),
    size: r[4],
    internalDate: new Date(r[5]),
    saveDate: new Date(r[6]),
    emailId: r[7],
    threadId: r[8],
  };
}

function clampModSeq(v: bigint): bigint {
  return v > MAX_INT64 ? MAX_INT64 : v < -MAX_INT64 ? -MAX_INT64 : v;
}

function sortedUnique(uids: number[]): number[] {
  return [...new Set(uids)].filter((u) => Number.isInteger(u) && u > 0).sort((a, b) => a - b);
}

/** Every statement SqliteStore runs, prepared once per connection. */
function prepareStatements(db: Database.Database) {
  const meta = (sql: string): Database.Statement => db.prepare(sql).raw(true);
  return {
    userByName: db.prepare('SELECT id, last_uidvalidity FROM users WHERE name = ?'),
    userInsert: db.prepare('INSERT INTO users (name) VALUES (?) ON CONFLICT (name) DO NOTHING'),
    userSetUidValidity: db.prepare('UPDATE users SET last_uidvalidity = ? WHERE id = ?'),
    userLastUidValidity: db.prepare('SELECT last_uidvalidity FROM users WHERE id = ?').pluck(),
    mbByName: db.prepare('SELECT * FROM mailboxes WHERE user_id = ? AND name = ?'),
    mbById: db.prepare('SELECT * FROM mailboxes WHERE id = ?'),
    mbList: db.prepare('SELECT * FROM mailboxes WHERE user_id = ?'),
    mbInsert: db.prepare(
      'INSERT INTO mailboxes (user_id, name, object_id, special_use, uidvalidity, uidnext, highestmodseq) VALUES (?, ?, ?, ?, ?, 1, 1)',
    ),
    mbDelete: db.prepare('DELETE FROM mailboxes WHERE id = ?'),
    mbRename: db.prepare('UPDATE mailboxes SET name = ? WHERE id = ?'),
    mbCounters: db.prepare('UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?'),
    mbModSeq: db.prepare('UPDATE mailboxes SET highestmodseq = ? WHERE id = ?'),
    subList: db.prepare('SELECT name FROM subscriptions WHERE user_id = ?').pluck(),
    subAdd: db.prepare('INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?, ?)'),
    subDel: db.prepare('DELETE FROM subscriptions WHERE user_id = ? AND name = ?'),
    bodyBySha: db.prepare('SELECT id FROM bodies WHERE sha256 = ?').pluck(),
    bodyInsert: db.prepare('INSERT INTO bodies (sha256, refs) VALUES (?, 0)'),
    bodyDataInsert: db.prepare('INSERT INTO body_data (id, data) VALUES (?, ?)'),
    msgInsert: db.prepare(
      `INSERT INTO messages (mailbox, uid, modseq, sysflags, keywords, size, internal_date, save_date, email_id, thread_id, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    msgList: meta(`SELECT ${META_COLUMNS} FROM messages WHERE mailbox = ? ORDER BY uid`),
    msgGet: meta(`SELECT ${META_COLUMNS} FROM messages WHERE mailbox = ? AND ${UIDS_IN} ORDER BY uid`),
    msgSince: meta(`SELECT ${META_COLUMNS} FROM messages WHERE mailbox = ? AND modseq > ? ORDER BY uid`),
    msgReadIn: db
      .prepare(`SELECT m.uid, d.data FROM messages m JOIN body_data d ON d.id = m.body WHERE m.mailbox = ? AND m.${UIDS_IN}`)
      .raw(true),
    msgRead: db.prepare('SELECT d.data FROM messages m JOIN body_data d ON d.id = m.body WHERE m.mailbox = ? AND m.uid = ?').pluck(),
    structIn: db
      .prepare(`SELECT m.uid, s.data FROM messages m JOIN body_structure s ON s.id = m.body WHERE m.mailbox = ? AND m.${UIDS_IN}`)
      .raw(true),
    structPut: db.prepare('INSERT OR REPLACE INTO body_structure (id, data) VALUES (?, ?)'),
    structPutUid: db.prepare('INSERT OR REPLACE INTO body_structure (id, data) SELECT body, ? FROM messages WHERE mailbox = ? AND uid = ?'),
    msgSetFlags: db.prepare('UPDATE messages SET sysflags = ?, keywords = ?, modseq = ? WHERE mailbox = ? AND uid = ?'),
    msgUids: db.prepare(`SELECT uid FROM messages WHERE mailbox = ? AND ${UIDS_IN} ORDER BY uid`).pluck(),
    msgAllUids: db.prepare('SELECT uid FROM messages WHERE mailbox = ? ORDER BY uid').pluck(),
    msgDeletedUids: db.prepare(`SELECT uid FROM messages WHERE mailbox = ? AND (sysflags & ${DELETED_BIT}) != 0 ORDER BY uid`).pluck(),
    msgDeletedUidsIn: db
      .prepare(`SELECT uid FROM messages WHERE mailbox = ? AND (sysflags & ${DELETED_BIT}) != 0 AND ${UIDS_IN} ORDER BY uid`)
      .pluck(),
    msgDeleteUids: db.prepare(`DELETE FROM messages WHERE mailbox = ? AND ${UIDS_IN}`),
    msgDeleteMailbox: db.prepare('DELETE FROM messages WHERE mailbox = ?'),
    // New UIDs follow the ascending order of the source UIDs: base + rank - 1.
    msgCopy: db.prepare(
      `INSERT INTO messages (mailbox, uid, modseq, sysflags, keywords, size, internal_date, save_date, email_id, thread_id, body)
       SELECT ?, ? + row_number() OVER (ORDER BY uid) - 1, ?, sysflags, keywords, size, internal_date, ?, email_id, thread_id, body
       FROM messages WHERE mailbox = ? AND ${UIDS_IN}`,
    ),
    msgSizeIn: db.prepare(`SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM messages WHERE mailbox = ? AND ${UIDS_IN}`),
    tombInsert: db.prepare('INSERT OR REPLACE INTO expunged (mailbox, uid, modseq) SELECT ?, value, ? FROM json_each(?)'),
    tombSince: db.prepare('SELECT uid FROM expunged WHERE mailbox = ? AND modseq > ? ORDER BY uid').pluck(),
    tombDeleteMailbox: db.prepare('DELETE FROM expunged WHERE mailbox = ?'),
    status: db.prepare(
      `SELECT count(*) AS n, coalesce(sum(size), 0) AS size,
              coalesce(sum((sysflags & ${SEEN_BIT}) = 0), 0) AS unseen, coalesce(sum((sysflags & ${DELETED_BIT}) != 0), 0) AS deleted
       FROM messages WHERE mailbox = ?`,
    ),
    usage: db.prepare(
      'SELECT count(*) AS n, coalesce(sum(m.size), 0) AS bytes FROM messages m JOIN mailboxes b ON b.id = m.mailbox WHERE b.user_id = ?',
    ),
  };
}
type Statements = ReturnType<typeof prepareStatements>;

/** The connection, its prepared statements and the listeners: shared by every object of one SqliteStore. */
class Engine {
  readonly db: Database.Database;
  readonly listeners = new Map<string, Set<(e: ChangeEvent) => void>>();
  private readonly tx: Database.Transaction<(f: () => unknown) => unknown>;
  readonly s: Statements;

  constructor(
    path: string,
    readonly quota: QuotaLimits | undefined,
    busyTimeoutMs: number,
  ) {
    if (path !== ':memory:' && !path.startsWith('file:')) mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { timeout: busyTimeoutMs });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    this.tx = this.db.transaction((f: () => unknown) => f());
    try {
      // Two processes opening a new file at once: the immediate transaction serialises the DDL.
      this.tx.immediate(() => {
        this.db.exec(SCHEMA);
        const v = this.db.prepare('SELECT value FROM meta WHERE key = ?').get('schema_version') as { value: string } | undefined;
        if (!v) this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema_version', String(SCHEMA_VERSION));
        else if (Number(v.value) > SCHEMA_VERSION) {
          throw new StoreError('SERVERBUG', `database ${path} has schema version ${v.value}, newer than this imapkit supports (${SCHEMA_VERSION})`);
        } else if (Number(v.value) < SCHEMA_VERSION) {
          // 1 -> 2: SCHEMA above has just added body_structure and its trigger; nothing else to convert.
          this.db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(String(SCHEMA_VERSION), 'schema_version');
        }
      });
      this.s = prepareStatements(this.db);
    } catch (e) {
      this.db.close();
      throw e;
    }
  }

  /** Run fn in a BEGIN IMMEDIATE transaction (the write lock is taken up front, waiting on busy). */
  write<T>(fn: () => T): T {
    return this.tx.immediate(fn) as T;
  }

  /** Run fn in a read transaction so that its statements see one snapshot. */
  read<T>(fn: () => T): T {
    return this.tx.deferred(fn) as T;
  }

  emit(user: string, event: ChangeEvent): void {
    if (event.origin === undefined) delete event.origin;
    const set = this.listeners.get(user);
    if (set) emitTo(set, event);
  }

  /** The user's row id, creating the user and their INBOX on first use. */
  ensureUser(user: string): number {
    // Fast path without the write lock: every login opens its user.
    const known = this.s.userByName.get(user) as { id: number } | undefined;
    if (known && this.s.mbByName.get(known.id, 'INBOX')) return known.id;
    return this.write(() => {
      this.s.userInsert.run(user);
      const row = this.s.userByName.get(user) as { id: number };
      if (!this.s.mbByName.get(row.id, 'INBOX')) this.createMailboxRow(row.id, 'INBOX');
      return row.id;
    });
  }

  /** Insert a mailbox row with the user's next UIDVALIDITY (inside a write transaction). */
  createMailboxRow(userId: number, name: string, specialUse?: SpecialUse): MailboxRow {
    const last = this.s.userLastUidValidity.get(userId) as number;
    const uidValidity = nextUidValidity(last);
    this.s.userSetUidValidity.run(uidValidity, userId);
    this.s.mbInsert.run(userId, name, newObjectId('F'), specialUse ?? null, uidValidity);
    return this.s.mbByName.get(userId, name) as MailboxRow;
  }

  mailboxByName(userId: number, name: string): MailboxRow {
    const row = this.s.mbByName.get(userId, canonicalMailboxName(name)) as MailboxRow | undefined;
    if (!row) throw new StoreError('NONEXISTENT', `no mailbox ${name}`);
    return row;
  }

  mailboxById(id: number, name: string): MailboxRow {
    const row = this.s.mbById.get(id) as MailboxRow | undefined;
    if (!row) throw new StoreError('NONEXISTENT', `mailbox ${name} was deleted`);
    return row;
  }

  usage(userId: number): { n: number; bytes: number } {
    return this.s.usage.get(userId) as { n: number; bytes: number };
  }

  statusOf(row: MailboxRow): MailboxStatus {
    const c = this.s.status.get(row.id) as { n: number; size: number; unseen: number; deleted: number };
    return {
      name: row.name,
      uidValidity: row.uidvalidity,
      uidNext: row.uidnext,
      highestModSeq: BigInt(row.highestmodseq),
      messages: c.n,
      unseen: c.unseen,
      deleted: c.deleted,
      size: c.size,
      recent: 0,
      mailboxId: row.object_id,
    };
  }

  /**
   * Copy the given messages of `src` into `dest` (inside a write transaction) under one new MODSEQ of
   * `dest`; with `move`, also remove them from `src` leaving tombstones. Returns the mapping.
   */
  transfer(userId: number, src: MailboxRow, dest: MailboxRow, uids: number[] | 'all', move: boolean): UidMapping {
    const sourceUids = (uids === 'all' ? this.s.msgAllUids.all(src.id) : this.s.msgUids.all(src.id, JSON.stringify(uids))) as number[];
    if (sourceUids.length === 0) return { uidValidity: dest.uidvalidity, sourceUids: [], destUids: [] };
    const json = JSON.stringify(sourceUids);
    if (!move) {
      const add = this.s.msgSizeIn.get(src.id, json) as { n: number; bytes: number };
      const used = this.usage(userId);
      checkQuota(this.quota, used.bytes, used.n, add.bytes, add.n);
    }
    // When dest is src (copy into the same mailbox) the rows read above are still current: nothing
    // else writes inside this transaction.
    const base = dest.uidnext;
    const destModSeq = dest.highestmodseq + 1;
    this.s.msgCopy.run(dest.id, base, destModSeq, Date.now(), src.id, json);
    this.s.mbCounters.run(base + sourceUids.length, destModSeq, dest.id);
    if (move) {
      const srcModSeq = (src.id === dest.id ? destModSeq : src.highestmodseq) + 1;
      this.s.tombInsert.run(src.id, srcModSeq, json);
      this.s.msgDeleteUids.run(src.id, json);
      this.s.mbModSeq.run(srcModSeq, src.id);
    }
    return { uidValidity: dest.uidvalidity, sourceUids, destUids: sourceUids.map((_, i) => base + i) };
  }
}

/** A session's handle on one mailbox of a SqliteStore (follows renames; NONEXISTENT once deleted). */
class SqliteMailboxHandle implements MailboxHandle {
  readonly uidValidity: number;
  readonly mailboxId: string;
  /** Row id of the mailbox; AUTOINCREMENT, so never reused by a re-created mailbox. */
  private readonly id: number;
  private lastName: string;

  constructor(
    private readonly e: Engine,
    private readonly user: string,
    private readonly userId: number,
    row: MailboxRow,
  ) {
    this.id = row.id;
    this.uidValidity = row.uidvalidity;
    this.mailboxId = row.object_id;
    this.lastName = row.name;
  }

  /** Current name of the mailbox (it follows renames). */
  get name(): string {
    const row = this.e.s.mbById.get(this.id) as MailboxRow | undefined;
    if (row) this.lastName = row.name;
    return this.lastName;
  }

  private row(): MailboxRow {
    const row = this.e.mailboxById(this.id, this.lastName);
    if (row.uidvalidity !== this.uidValidity) throw new StoreError('NONEXISTENT', `mailbox ${this.lastName} was deleted`);
    this.lastName = row.name;
    return row;
  }

  async status(): Promise<MailboxStatus> {
    return this.e.read(() => this.e.statusOf(this.row()));
  }

  async list(): Promise<MessageMeta[]> {
    const rows = this.e.read(() => {
      this.row();
      return this.e.s.msgList.all(this.id) as MetaRow[];
    });
    return rows.map(metaOf);
  }

  async get(uids: number[]): Promise<MessageMeta[]> {
    const rows = this.e.read(() => {
      this.row();
      return this.e.s.msgGet.all(this.id, JSON.stringify(sortedUnique(uids))) as MetaRow[];
    });
    return rows.map(metaOf);
  }

  async read(uid: number): Promise<Buffer | null> {
    return this.e.read(() => {
      this.row();
      return (this.e.s.msgRead.get(this.id, uid) as Buffer | undefined) ?? null;
    });
  }

  /** One statement for the whole batch, in one read transaction. */
  async readBatch(uids: number[]): Promise<Map<number, Buffer>> {
    const rows = this.e.read(() => {
      this.row();
      return this.e.s.msgReadIn.all(this.id, JSON.stringify(uids)) as Array<[number, Buffer]>;
    });
    const out = new Map<number, Buffer>();
    for (const [uid, data] of rows) out.set(uid, data);
    return out;
  }

  /** Entries live per body (body_structure), so COPY and MOVE, which share the body, keep them. */
  async structures(uids: number[]): Promise<Map<number, Buffer>> {
    const out = new Map<number, Buffer>();
    if (uids.length === 0) return out;
    const rows = this.e.read(() => {
      this.row();
      return this.e.s.structIn.all(this.id, JSON.stringify(uids)) as Array<[number, Buffer]>;
    });
    for (const [uid, data] of rows) out.set(uid, data);
    return out;
  }

  /** One write transaction for the batch; no MODSEQ, no event (a cache, not a mailbox change). */
  async saveStructures(entries: Map<number, Buffer>): Promise<void> {
    if (entries.size === 0) return;
    this.e.write(() => {
      this.row();
      for (const [uid, data] of entries) this.e.s.structPutUid.run(data, this.id, uid);
    });
  }

  async updateFlags(uids: number[], update: FlagUpdate, origin?: string): Promise<FlagUpdateResult> {
    const flags = canonicalFlags(update.flags);
    const json = JSON.stringify(sortedUnique(uids));
    const result = this.e.write(() => {
      const mb = this.row();
      const rows = this.e.s.msgGet.all(this.id, json) as MetaRow[];
      const modified: number[] = [];
      const updated: MessageMeta[] = [];
      const modSeq = mb.highestmodseq + 1;
      for (const r of rows) {
        if (update.unchangedSince !== undefined && BigInt(r[1]) > update.unchangedSince) {
          modified.push(r[0]);
          continue;
        }
        const next = applyFlagUpdate(flagsOf(r[2], r[3]), update.action, flags);
        if (!next) continue;
        const enc = encodeFlags(next);
        this.e.s.msgSetFlags.run(enc.bits, enc.keywords, modSeq, this.id, r[0]);
        const m = metaOf(r);
        m.flags = next;
        m.modSeq = BigInt(modSeq);
        updated.push(m);
      }
      if (updated.length) this.e.s.mbModSeq.run(modSeq, this.id);
      return { updated, modified, name: mb.name, modSeq };
    });
    if (result.updated.length) this.e.emit(this.user, { mailbox: result.name, kind: 'flags', modSeq: BigInt(result.modSeq), origin });
    return { updated: result.updated, modified: result.modified };
  }

  async expunge(uids: number[] | undefined, origin?: string): Promise<number[]> {
    const result = this.e.write(() => {
      const mb = this.row();
      const gone = (uids === undefined
        ? this.e.s.msgDeletedUids.all(this.id)
        : this.e.s.msgDeletedUidsIn.all(this.id, JSON.stringify(sortedUnique(uids)))) as number[];
      if (gone.length === 0) return { gone, name: mb.name, modSeq: mb.highestmodseq };
      const json = JSON.stringify(gone);
      const modSeq = mb.highestmodseq + 1;
      this.e.s.tombInsert.run(this.id, modSeq, json);
      this.e.s.msgDeleteUids.run(this.id, json);
      this.e.s.mbModSeq.run(modSeq, this.id);
      return { gone, name: mb.name, modSeq };
    });
    if (result.gone.length) this.e.emit(this.user, { mailbox: result.name, kind: 'expunge', modSeq: BigInt(result.modSeq), origin });
    return result.gone;
  }

  async copy(uids: number[], target: string, origin?: string): Promise<UidMapping> {
    return this.transfer(uids, target, false, origin);
  }

  async move(uids: number[], target: string, origin?: string): Promise<UidMapping> {
    return this.transfer(uids, target, true, origin);
  }

  private transfer(uids: number[], target: string, move: boolean, origin?: string): UidMapping {
    const wanted = sortedUnique(uids);
    const r = this.e.write(() => {
      const src = this.row();
      const dest = this.e.mailboxByName(this.userId, target);
      const mapping = this.e.transfer(this.userId, src, dest, wanted, move);
      const after = (id: number): MailboxRow => this.e.s.mbById.get(id) as MailboxRow;
      return { mapping, src: after(src.id), dest: after(dest.id) };
    });
    if (r.mapping.destUids.length) {
      this.e.emit(this.user, { mailbox: r.dest.name, kind: 'append', modSeq: BigInt(r.dest.highestmodseq), origin });
      if (move) this.e.emit(this.user, { mailbox: r.src.name, kind: 'expunge', modSeq: BigInt(r.src.highestmodseq), origin });
    }
    return r.mapping;
  }

  async changesSince(since: bigint): Promise<Changes> {
    const bound = clampModSeq(since);
    return this.e.read(() => {
      const mb = this.row();
      const changed = (this.e.s.msgSince.all(this.id, bound) as MetaRow[]).map(metaOf);
      const expunged = this.e.s.tombSince.all(this.id, bound) as number[];
      return { changed, expunged, highestModSeq: BigInt(mb.highestmodseq) };
    });
  }

  async close(): Promise<void> {
    // statements belong to the store; nothing per handle
  }
}

/** One user's mail in a SqliteStore. */
class SqliteUserMailStore implements UserMailStore {
  readonly keepsStructures = true;
  private readonly own = new Set<(e: ChangeEvent) => void>();

  constructor(
    private readonly e: Engine,
    readonly user: string,
    private readonly userId: number,
  ) {}

  async listMailboxes(): Promise<MailboxInfo[]> {
    return this.e.read(() => {
      const subs = new Set(this.e.s.subList.all(this.userId) as string[]);
      return (this.e.s.mbList.all(this.userId) as MailboxRow[]).map((row) => {
        const info: MailboxInfo = { name: row.name, subscribed: subs.has(row.name), mailboxId: row.object_id };
        if (row.special_use) info.specialUse = row.special_use as SpecialUse;
        return info;
      });
    });
  }

  async createMailbox(name: string, specialUse?: SpecialUse): Promise<void> {
    const canon = canonicalMailboxName(name);
    this.e.write(() => {
      if (this.e.s.mbByName.get(this.userId, canon)) throw new StoreError('ALREADYEXISTS', `mailbox ${canon} already exists`);
      for (const parent of parentsOf(canon)) {
        if (!this.e.s.mbByName.get(this.userId, parent)) this.e.createMailboxRow(this.userId, parent);
      }
      this.e.createMailboxRow(this.userId, canon, specialUse);
    });
    this.e.emit(this.user, { mailbox: canon, kind: 'mailboxes', modSeq: 1n });
  }

  async deleteMailbox(name: string): Promise<void> {
    const canon = canonicalMailboxName(name);
    if (isInbox(canon)) throw new StoreError('CANNOT', 'INBOX cannot be deleted');
    const modSeq = this.e.write(() => {
      const row = this.e.mailboxByName(this.userId, canon);
      this.e.s.msgDeleteMailbox.run(row.id);
      this.e.s.tombDeleteMailbox.run(row.id);
      this.e.s.mbDelete.run(row.id);
      return row.highestmodseq;
    });
    this.e.emit(this.user, { mailbox: canon, kind: 'mailboxes', modSeq: BigInt(modSeq) });
  }

  async renameMailbox(from: string, to: string): Promise<void> {
    const src = canonicalMailboxName(from);
    const dst = canonicalMailboxName(to);
    const events = this.e.write((): ChangeEvent[] => {
      const row = this.e.mailboxByName(this.userId, src);
      if (this.e.s.mbByName.get(this.userId, dst)) throw new StoreError('ALREADYEXISTS', `mailbox ${dst} already exists`);
      const createParents = (): void => {
        for (const parent of parentsOf(dst)) {
          if (!this.e.s.mbByName.get(this.userId, parent)) this.e.createMailboxRow(this.userId, parent);
        }
      };
      if (isInbox(src)) {
        // RFC 3501 6.3.5: INBOX's messages move to a new mailbox; INBOX stays, empty; its children stay.
        createParents();
        const dest = this.e.createMailboxRow(this.userId, dst);
        this.e.transfer(this.userId, row, dest, 'all', true);
        const inbox = this.e.s.mbById.get(row.id) as MailboxRow;
        const moved = this.e.s.mbById.get(dest.id) as MailboxRow;
        return [
          { mailbox: 'INBOX', kind: 'expunge', modSeq: BigInt(inbox.highestmodseq) },
          { mailbox: dst, kind: 'mailboxes', modSeq: BigInt(moved.highestmodseq) },
        ];
      }
      if (isSelfOrDescendant(dst, src)) throw new StoreError('CANNOT', `cannot rename ${src} into itself`);
      const moving = (this.e.s.mbList.all(this.userId) as MailboxRow[]).filter((m) => isSelfOrDescendant(m.name, src));
      for (const m of moving) {
        const newName = dst + m.name.slice(src.length);
        if (this.e.s.mbByName.get(this.userId, newName)) throw new StoreError('ALREADYEXISTS', `mailbox ${newName} already exists`);
      }
      const subs = new Set(this.e.s.subList.all(this.userId) as string[]);
      for (const m of moving) {
        const newName = dst + m.name.slice(src.length);
        this.e.s.mbRename.run(newName, m.id);
        if (subs.has(m.name)) {
          this.e.s.subDel.run(this.userId, m.name);
          this.e.s.subAdd.run(this.userId, newName);
        }
      }
      createParents();
      return [{ mailbox: dst, kind: 'mailboxes', modSeq: BigInt(row.highestmodseq) }];
    });
    for (const ev of events) this.e.emit(this.user, ev);
  }

  async setSubscribed(name: string, subscribed: boolean): Promise<void> {
    const canon = canonicalMailboxName(name);
    this.e.write(() => (subscribed ? this.e.s.subAdd.run(this.userId, canon) : this.e.s.subDel.run(this.userId, canon)));
    this.e.emit(this.user, { mailbox: canon, kind: 'mailboxes', modSeq: 0n });
  }

  async status(name: string): Promise<MailboxStatus> {
    return this.e.read(() => this.e.statusOf(this.e.mailboxByName(this.userId, name)));
  }

  async open(name: string): Promise<MailboxHandle> {
    return new SqliteMailboxHandle(this.e, this.user, this.userId, this.e.mailboxByName(this.userId, name));
  }

  async append(mailbox: string, messages: NewMessage[], origin?: string): Promise<UidMapping> {
    // Everything that can fail or takes CPU happens before the write lock is taken.
    const now = Date.now();
    const items = messages.map((m) => {
      const enc = encodeFlags(canonicalFlags(m.flags));
      const id = newObjectId('');
      return {
        data: m.data,
        structure: m.structure,
        sha: createHash('sha256').update(m.data).digest(),
        bits: enc.bits,
        keywords: enc.keywords,
        internal: m.internalDate ? m.internalDate.getTime() : now,
        emailId: 'M' + id,
        threadId: 'T' + id,
      };
    });
    for (const it of items) if (!Number.isFinite(it.internal)) throw new StoreError('CANNOT', 'invalid internal date');
    const r = this.e.write(() => {
      const mb = this.e.mailboxByName(this.userId, mailbox);
      if (items.length === 0) return { mb, destUids: [] as number[], modSeq: mb.highestmodseq };
      const used = this.e.usage(this.userId);
      checkQuota(
        this.e.quota,
        used.bytes,
        used.n,
        items.reduce((n, it) => n + it.data.length, 0),
        items.length,
      );
      const modSeq = mb.highestmodseq + 1;
      let uid = mb.uidnext;
      const destUids: number[] = [];
      for (const it of items) {
        let body = this.e.s.bodyBySha.get(it.sha) as number | undefined;
        if (body === undefined) {
          body = Number(this.e.s.bodyInsert.run(it.sha).lastInsertRowid);
          this.e.s.bodyDataInsert.run(body, it.data);
        }
        if (it.structure) this.e.s.structPut.run(body, it.structure);
        this.e.s.msgInsert.run(mb.id, uid, modSeq, it.bits, it.keywords, it.data.length, it.internal, now, it.emailId, it.threadId, body);
        destUids.push(uid++);
      }
      this.e.s.mbCounters.run(uid, modSeq, mb.id);
      return { mb, destUids, modSeq };
    });
    if (r.destUids.length) this.e.emit(this.user, { mailbox: r.mb.name, kind: 'append', modSeq: BigInt(r.modSeq), origin });
    return { uidValidity: r.mb.uidvalidity, sourceUids: [], destUids: r.destUids };
  }

  async quota(): Promise<QuotaInfo> {
    const used = this.e.usage(this.userId);
    const q: QuotaInfo = { root: '', storageUsedKiB: toKiB(used.bytes), messagesUsed: used.n };
    if (this.e.quota?.storageLimitKiB !== undefined) q.storageLimitKiB = this.e.quota.storageLimitKiB;
    if (this.e.quota?.messagesLimit !== undefined) q.messagesLimit = this.e.quota.messagesLimit;
    return q;
  }

  watch(listener: (event: ChangeEvent) => void): () => void {
    let set = this.e.listeners.get(this.user);
    if (!set) this.e.listeners.set(this.user, (set = new Set()));
    const wrapped = (ev: ChangeEvent): void => listener(ev);
    set.add(wrapped);
    this.own.add(wrapped);
    return () => {
      this.own.delete(wrapped);
      this.unlisten(wrapped);
    };
  }

  private unlisten(l: (e: ChangeEvent) => void): void {
    const set = this.e.listeners.get(this.user);
    if (!set) return;
    set.delete(l);
    if (set.size === 0) this.e.listeners.delete(this.user);
  }

  async close(): Promise<void> {
    for (const l of this.own) this.unlisten(l);
    this.own.clear();
  }
}

/** The SQLite MailStore: one file for all users, WAL mode, durable appends. */
export class SqliteStore implements MailStore {
  readonly kind = 'sqlite';
  /** The users table as a UserDb (scrypt hashes and SCRAM-SHA-256 credentials). */
  readonly users: SqliteUserDb;
  private readonly e: Engine;

  constructor(
    /** Path of the database file (created with its directory if missing). */
    readonly path: string,
    opts: SqliteStoreOptions = {},
  ) {
    this.e = new Engine(path, opts.quota, opts.busyTimeoutMs ?? 10_000);
    this.users = new SqliteUserDb(this.e.db, opts.scryptLn);
  }

  /** Open one user's mail, creating the user row and INBOX on first use. */
  async openUser(user: string): Promise<UserMailStore> {
    if (user.length === 0) throw new StoreError('CANNOT', 'user name must not be empty');
    return new SqliteUserMailStore(this.e, user, this.e.ensureUser(user));
  }

  /** Close the database (checkpointing the WAL); listeners are dropped. */
  async close(): Promise<void> {
    this.e.listeners.clear();
    if (this.e.db.open) this.e.db.close();
  }
}
