/**
 * The Repository contract: one side of a sync (or of a forward). The engine talks to an IMAP
 * account (ImapRepository) and to any MailStore such as a Maildir (StoreRepository) only through
 * this interface, so the planner and the applier never know which one they are driving.
 *
 * Folder names are Unicode strings with '/' as the hierarchy separator, "INBOX" in upper case,
 * whatever the server's own delimiter and encoding (modified UTF-7) are. Flags are canonical:
 * system flags spelled \Seen \Answered \Flagged \Deleted \Draft, keywords as the side stores them,
 * \Recent never appears.
 */

/** A folder as listed by a side. */
export interface FolderInfo {
  /** '/'-separated Unicode name. */
  name: string;
  /** RFC 6154 special use (\Trash, \All, ...) when the side reports one. */
  specialUse?: string;
  /** True when the folder cannot hold messages (\Noselect, \NonExistent). */
  noSelect?: boolean;
}

/** Counters of a folder (RFC 3501 STATUS, RFC 7162 HIGHESTMODSEQ). */
export interface FolderStatus {
  uidValidity: number;
  uidNext: number;
  /** Undefined when the side has no mod-sequences (no CONDSTORE). */
  highestModSeq?: bigint;
  messages: number;
}

/** One message as a snapshot sees it: cheap metadata, never the bytes. */
export interface MessageEntry {
  uid: number;
  /** Canonical flags. */
  flags: string[];
  /** RFC822.SIZE. */
  size: number;
  /** Message-ID header value (angle brackets kept), only when asked for or cheaply at hand; null when the message has none. */
  messageId?: string | null;
  /** SHA-256 of the message bytes (hex), only when the engine computed it (re-matching). */
  hash?: string;
  internalDate?: Date;
  modSeq?: bigint;
}

/** Every message of a folder with the status it was taken under. */
export interface FolderSnapshot {
  status: FolderStatus;
  /** Ascending by UID. */
  messages: MessageEntry[];
}

/** Options of Repository.snapshot(). */
export interface SnapshotOptions {
  minUid?: number;
  withDates?: boolean;
}

/** What changed in a folder since a mod-sequence (RFC 7162 CHANGEDSINCE / QRESYNC VANISHED). */
export interface FolderChanges {
  status: FolderStatus;
  /** Messages new or changed since the mod-sequence, ascending by UID. */
  changed: MessageEntry[];
  /** UIDs expunged since, or null when the side cannot say (the caller must compare UID lists). */
  vanished: number[] | null;
}

/** A message with its bytes, as fetched. */
export interface FetchedMessage {
  uid: number;
  data: Buffer;
  flags: string[];
  internalDate?: Date;
}

/** A message to append. */
export interface AppendItem {
  data: Buffer;
  flags: string[];
  internalDate?: Date;
}

/** Result of an append: the new UIDs in order, or null where the side could not tell (no UIDPLUS). */
export interface AppendResult {
  uidValidity?: number;
  uids: Array<number | null>;
}

/** What a side can do; the engine picks its strategy from this. */
export interface RepositoryCapabilities {
  /** changesSince() is meaningful (CONDSTORE). */
  condstore: boolean;
  /** changesSince() also reports expunged UIDs (QRESYNC). */
  qresync: boolean;
  /** Arbitrary keywords can be stored (PERMANENTFLAGS \*). */
  keywords: boolean;
  /** Several messages go in one APPEND (MULTIAPPEND) or without round trips (LITERAL+). */
  batchAppend: boolean;
  /** IDLE for watch mode. */
  idle: boolean;
}

/** How to remove messages: expunge them, or move them to a trash folder. */
export type RemoveMode = { kind: 'expunge' } | { kind: 'trash'; folder: string };

/** Where a repository error came from, so the CLI can say what to do. */
export type RepositoryErrorKind = 'connect' | 'auth' | 'tls' | 'config' | 'nonexistent' | 'full' | 'toobig' | 'protocol' | 'io';

/** An error of a side, with a kind the user interface turns into advice. */
export class RepositoryError extends Error {
  constructor(
    readonly kind: RepositoryErrorKind,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'RepositoryError';
  }
}

/**
 * One side of a sync. Methods that take a folder open it as needed; implementations may keep it
 * open between calls. Every method may raise RepositoryError.
 */
export interface Repository {
  /** Human-readable identity for messages, e.g. "imap://alice@mail.example.org:993" or "maildir:/home/a/Mail". */
  readonly label: string;
  /** Connect and authenticate (idempotent). */
  open(): Promise<void>;
  /** Known after open(). */
  capabilities(): RepositoryCapabilities;
  /** All folders, INBOX included. */
  listFolders(): Promise<FolderInfo[]>;
  /** Create a folder (and missing parents); succeeds when it already exists. */
  createFolder(name: string): Promise<void>;
  /** Counters of a folder without listing its messages. */
  status(folder: string): Promise<FolderStatus>;
  /**
   * Every message's UID, flags and size (and INTERNALDATE with `withDates`); with `minUid`, only
   * UIDs >= minUid (the status still covers the whole folder).
   */
  snapshot(folder: string, opts?: SnapshotOptions): Promise<FolderSnapshot>;
  /**
   * Changes since a mod-sequence; null when the side has no CONDSTORE or the mod-sequence is too old.
   * `current`: the folder's counters as this run just read them (LIST-STATUS, STATUS); a server
   * connection that already has the folder selected may then answer without selecting it again.
   */
  changesSince(folder: string, modSeq: bigint, current?: FolderStatus): Promise<FolderChanges | null>;
  /** All UIDs now in the folder (to find expunges without QRESYNC). */
  uids(folder: string): Promise<number[]>;
  /** Message-IDs (and sizes) of some messages: a header fetch, not the bytes. Missing UIDs are omitted. */
  messageIds(folder: string, uids: number[]): Promise<Map<number, { messageId: string | null; size: number }>>;
  /** Stream the bytes of some messages, in UID order; missing UIDs are skipped. */
  fetch(folder: string, uids: number[], onMessage: (m: FetchedMessage) => Promise<void> | void): Promise<void>;
  /** Append messages (all in one go where the side can); returns their UIDs in order. */
  append(folder: string, items: AppendItem[]): Promise<AppendResult>;
  /** Change flags of some UIDs (missing ones are skipped). */
  updateFlags(folder: string, uids: number[], action: 'add' | 'remove' | 'set', flags: string[]): Promise<void>;
  /** Remove messages: expunge them, or move them to the trash folder (created if missing). */
  remove(folder: string, uids: number[], mode: RemoveMode): Promise<void>;
  /** UIDs of messages whose Message-ID header is exactly this value (RFC 3501 SEARCH HEADER). */
  searchMessageId(folder: string, messageId: string): Promise<number[]>;
  /**
   * A cheap token that changes whenever the folder's messages or flags may have changed (a local
   * Maildir: its directories' modification times), or null when the side cannot tell or the
   * token is not reliable right now. Equal tokens mean "unchanged": the engine skips the folder
   * without reading it.
   */
  changeToken?(folder: string): Promise<string | null>;
  /**
   * Wait until something may have changed in one of the folders (IDLE), or the signal aborts.
   * Resolves early, never rejects on abort. Sides without push resolve after `fallbackMs`.
   */
  waitForChange?(folders: string[], signal: AbortSignal, fallbackMs: number): Promise<void>;
  /** Disconnect and release everything. */
  close(): Promise<void>;
}

/** Canonical spelling of system flags; null for flags that never sync (\Recent, unknown backslash flags). */
export function canonicalSyncFlag(flag: string): string | null {
  if (!flag.startsWith('\\')) return flag.length > 0 ? flag : null;
  switch (flag.toLowerCase()) {
    case '\\seen':
      return '\\Seen';
    case '\\answered':
      return '\\Answered';
    case '\\flagged':
      return '\\Flagged';
    case '\\deleted':
      return '\\Deleted';
    case '\\draft':
      return '\\Draft';
    default:
      return null;
  }
}

/** Canonical, duplicate-free (case-insensitively), sorted flag list. */
export function normalizeFlags(flags: Iterable<string>): string[] {
  const out = new Map<string, string>();
  for (const f of flags) {
    const c = canonicalSyncFlag(f);
    if (c !== null && !out.has(c.toLowerCase())) out.set(c.toLowerCase(), c);
  }
  return [...out.values()].sort();
}
