/**
 * The SQLite schema of SqliteStore. One database file holds every user. Message bytes are
 * content-addressed (sha256) and reference-counted by triggers, so COPY and MOVE never duplicate them;
 * the bytes live in a table of their own so that changing a reference count does not rewrite a blob.
 */

/**
 * Schema version written to the meta table; bump with a migration when the tables change.
 * 1: the first schema. 2: body_structure (server cache entries, MailboxHandle.structures). The DDL
 * below is idempotent and only adds, so running it upgrades a version-1 file in place (its messages
 * simply have no entries yet); the version is bumped so that an older imapkit, which would not
 * delete entries with their bodies, refuses the file instead of leaving stale ones behind.
 */
export const SCHEMA_VERSION = 2;

/** Bits of messages.sysflags, one per storable system flag. */
export const FLAG_BITS: ReadonlyArray<readonly [string, number]> = [
  ['\\Seen', 1],
  ['\\Answered', 2],
  ['\\Flagged', 4],
  ['\\Deleted', 8],
  ['\\Draft', 16],
];
/** Bit of \Seen in messages.sysflags. */
export const SEEN_BIT = 1;
/** Bit of \Deleted in messages.sysflags. */
export const DELETED_BIT = 8;

/** DDL, idempotent. */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- One row per user with mail and/or credentials. password NULL: no login (mail only).
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  password TEXT,
  scram_salt BLOB,
  scram_iterations INTEGER,
  scram_stored_key BLOB,
  scram_server_key BLOB,
  -- Highest UIDVALIDITY handed out to this user, so a re-created name never repeats one.
  last_uidvalidity INTEGER NOT NULL DEFAULT 0
);

-- AUTOINCREMENT: a re-created mailbox must never get the id of a deleted one (open handles hold ids).
CREATE TABLE IF NOT EXISTS mailboxes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  object_id TEXT NOT NULL,
  special_use TEXT,
  uidvalidity INTEGER NOT NULL,
  uidnext INTEGER NOT NULL,
  highestmodseq INTEGER NOT NULL,
  UNIQUE (user_id, name)
);

CREATE TABLE IF NOT EXISTS bodies (
  id INTEGER PRIMARY KEY,
  sha256 BLOB NOT NULL UNIQUE,
  refs INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS body_data (
  id INTEGER PRIMARY KEY,
  data BLOB NOT NULL
);

-- Opaque server cache entry per body (NewMessage.structure), a function of the bytes, so copies share it.
-- A table of its own so that refcount updates never rewrite it and reading it never walks a body's overflow pages.
CREATE TABLE IF NOT EXISTS body_structure (
  id INTEGER PRIMARY KEY,
  data BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS messages (
  mailbox INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  modseq INTEGER NOT NULL,
  sysflags INTEGER NOT NULL,
  keywords TEXT NOT NULL,
  size INTEGER NOT NULL,
  internal_date INTEGER NOT NULL,
  save_date INTEGER NOT NULL,
  email_id TEXT NOT NULL,
  thread_id TEXT NOT NULL,
  body INTEGER NOT NULL,
  PRIMARY KEY (mailbox, uid)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS messages_modseq ON messages (mailbox, modseq);

-- Expunge tombstones for QRESYNC VANISHED (RFC 7162 3.2.10).
CREATE TABLE IF NOT EXISTS expunged (
  mailbox INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  modseq INTEGER NOT NULL,
  PRIMARY KEY (mailbox, uid)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS subscriptions (
  user_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY (user_id, name)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS messages_ref AFTER INSERT ON messages BEGIN
  UPDATE bodies SET refs = refs + 1 WHERE id = NEW.body;
END;

CREATE TRIGGER IF NOT EXISTS messages_unref AFTER DELETE ON messages BEGIN
  UPDATE bodies SET refs = refs - 1 WHERE id = OLD.body;
  DELETE FROM body_data WHERE id = OLD.body AND (SELECT refs FROM bodies WHERE id = OLD.body) <= 0;
  DELETE FROM bodies WHERE id = OLD.body AND refs <= 0;
END;

-- Body ids can be reused once freed: an entry goes with its body (schema 2).
CREATE TRIGGER IF NOT EXISTS bodies_gc_structure AFTER DELETE ON bodies BEGIN
  DELETE FROM body_structure WHERE id = OLD.id;
END;
`;
