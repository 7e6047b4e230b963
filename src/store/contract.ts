/**
 * The MailStore contract: everything the IMAP server (and the sync engine) asks of storage.
 * Every backend (memory, sqlite, maildir, postgres, remote) implements it and passes
 * test/store/contract.test.ts. Mailbox names here are Unicode strings with '/' as the
 * hierarchy separator; "INBOX" is case-insensitive and always exists (a first level spelled
 * "inbox" in any case is INBOX, so "inbox/x" is "INBOX/x"). Names that are empty, hold control
 * characters, start or end with '/', hold '//' or a '.' or '..' level raise StoreError CANNOT.
 */

/** Errors a store raises; the server maps `code` to an IMAP response code (RFC 5530). */
export class StoreError extends Error {
  constructor(
    /** NONEXISTENT, ALREADYEXISTS, CANNOT, LIMIT, OVERQUOTA, TOOBIG, INUSE, SERVERBUG, MODIFIED. */
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export type StoreErrorCode =
  | 'NONEXISTENT'
  | 'ALREADYEXISTS'
  | 'CANNOT'
  | 'LIMIT'
  | 'OVERQUOTA'
  | 'TOOBIG'
  | 'INUSE'
  | 'SERVERBUG';

/** Special-use attributes (RFC 6154). */
export type SpecialUse = '\\All' | '\\Archive' | '\\Drafts' | '\\Flagged' | '\\Junk' | '\\Sent' | '\\Trash' | '\\Important';

/** One mailbox as LIST sees it (RFC 3501 6.3.8, RFC 5258). */
export interface MailboxInfo {
  /** Full Unicode name, '/' separated; "INBOX" spelled in upper case. */
  name: string;
  specialUse?: SpecialUse;
  subscribed: boolean;
  /** RFC 8474 MAILBOXID. */
  mailboxId: string;
}

/** Counters of one mailbox (STATUS, SELECT; RFC 3501 6.3.10, RFC 7162, RFC 8438). */
export interface MailboxStatus {
  name: string;
  uidValidity: number;
  uidNext: number;
  highestModSeq: bigint;
  messages: number;
  unseen: number;
  deleted: number;
  /** Sum of RFC822.SIZE of all messages. */
  size: number;
  /** Messages with \Recent for this session, where the store tracks it (else 0). */
  recent: number;
  mailboxId: string;
}

/**
 * Per-message metadata (everything but the bytes). A store may hand the same object to several
 * callers (the memory store shares a frozen one until the message changes): never mutate it.
 */
export interface MessageMeta {
  uid: number;
  /** System flags (\Seen, \Answered, \Flagged, \Deleted, \Draft) and keywords, as stored (case kept); order unspecified. */
  flags: string[];
  modSeq: bigint;
  /** RFC822.SIZE in bytes. */
  size: number;
  internalDate: Date;
  /** RFC 8514 SAVEDATE. */
  saveDate: Date;
  /** RFC 8474 EMAILID: same bytes copied keep it. */
  emailId: string;
  /** RFC 8474 THREADID (may equal emailId when the store does not thread). */
  threadId: string;
}

/** A message to store. */
export interface NewMessage {
  data: Buffer;
  flags?: string[];
  internalDate?: Date;
  /**
   * Optional server cache entry (see MailboxHandle.structures): opaque bytes the server derived
   * from `data` alone (its encoded ENVELOPE / BODYSTRUCTURE / BODY answers, versioned by the server,
   * so an entry of an older format reads as missing there). A store that keeps structures
   * (UserMailStore.keepsStructures) stores them with the message and hands them back unchanged;
   * other stores ignore them. The store never interprets them. Since they depend on `data` only, a
   * store may keep one entry per distinct content (the last one stored wins).
   */
  structure?: Buffer;
}

/** Result of APPEND / COPY / MOVE for UIDPLUS (RFC 4315). */
export interface UidMapping {
  uidValidity: number;
  /** Source UIDs (for COPY/MOVE) in the order of `destUids`. Empty for APPEND. */
  sourceUids: number[];
  destUids: number[];
}

/**
 * Flag operation of STORE (RFC 3501 6.4.6, RFC 7162 3.1.3). System flags match case-insensitively and
 * are stored canonically (\SEEN is \Seen); keywords keep the spelling first stored and match
 * case-insensitively; \Recent and unknown backslash flags are ignored; a keyword that is not an
 * IMAP atom raises StoreError CANNOT (the same rules apply to NewMessage.flags).
 */
export interface FlagUpdate {
  action: 'set' | 'add' | 'remove';
  flags: string[];
  /** Only change messages whose MODSEQ is <= this (CONDSTORE UNCHANGEDSINCE). */
  unchangedSince?: bigint;
}

/** Result of a flag update. */
export interface FlagUpdateResult {
  /** Messages whose flags (or MODSEQ) changed, with their new state. */
  updated: MessageMeta[];
  /** UIDs refused because of UNCHANGEDSINCE (the MODIFIED response code). */
  modified: number[];
}

/** Changes since a MODSEQ (RFC 7162 CONDSTORE/QRESYNC). */
export interface Changes {
  /** Messages added or changed with modSeq > since, by UID. */
  changed: MessageMeta[];
  /** UIDs expunged with modSeq > since (QRESYNC VANISHED). May be a superset if the store forgets old tombstones. */
  expunged: number[];
  highestModSeq: bigint;
}

/** What a change notification carries: enough for a session to know it must look (it then calls changesSince). */
export interface ChangeEvent {
  /** Mailbox the change happened in. */
  mailbox: string;
  kind: 'append' | 'flags' | 'expunge' | 'mailboxes';
  /** HIGHESTMODSEQ after the change. */
  modSeq: bigint;
  /** An opaque id of the session that caused it (see MailboxView.origin), so it can ignore its own changes. */
  origin?: string;
}

/** Quota usage and limits (RFC 9208): STORAGE in KiB, MESSAGE count. */
export interface QuotaInfo {
  root: string;
  storageUsedKiB: number;
  storageLimitKiB?: number;
  messagesUsed: number;
  messagesLimit?: number;
}

/** What MailboxHandle.readPrefix returns. */
export interface PrefixRead {
  /** A prefix of the message as read() returns it. */
  data: Buffer;
  /** True when `data` is the whole message. */
  whole: boolean;
}

/**
 * An open mailbox: the server's view into one folder for one session.
 * All UIDs are ascending; `origin` identifies the session in ChangeEvents.
 */
export interface MailboxHandle {
  readonly name: string;
  readonly uidValidity: number;
  readonly mailboxId: string;
  /** Counters now (RFC 3501 6.3.1 SELECT responses). */
  status(): Promise<MailboxStatus>;
  /** Every message's metadata, ascending by UID. */
  list(): Promise<MessageMeta[]>;
  /** Metadata of the given UIDs (missing ones omitted), ascending. */
  get(uids: number[]): Promise<MessageMeta[]>;
  /** The full RFC 5322 bytes of one message, or null if it was expunged. */
  read(uid: number): Promise<Buffer | null>;
  /**
   * Optional: the start of one message, for FETCH items that need only the top-level header
   * (ENVELOPE, RFC822.HEADER, BODY[HEADER], BODY[HEADER.FIELDS]; RFC 3501 6.4.5), so a store need
   * not read whole files. `data` is a prefix of the bytes read() returns (byte for byte, line-end
   * conversion included), at least `bytes` long unless the message is shorter (it may be longer);
   * `whole` is true when `data` is the entire message. Null when the message is expunged. A
   * backend without it is read whole (read/readBatch).
   */
  readPrefix?(uid: number, bytes: number): Promise<PrefixRead | null>;
  /**
   * Optional batched read (FETCH BODY[] and SEARCH of many messages): the bytes of the given UIDs
   * in one call, by UID; expunged UIDs are absent. Same bytes as read(). A backend without it is
   * read one message at a time; callers bound the batch (a few hundred UIDs) to bound memory.
   */
  readBatch?(uids: number[]): Promise<Map<number, Buffer>>;
  /**
   * Optional, with saveStructures (and UserMailStore.keepsStructures true): the server cache entries
   * (NewMessage.structure) of the given UIDs in one call, by UID, byte for byte as stored. UIDs that
   * are expunged or have no entry are absent. COPY and MOVE carry a message's entry to the new UID;
   * EXPUNGE drops it; flag changes leave it alone. The server asks for a few hundred UIDs at a time
   * (FETCH ENVELOPE/BODYSTRUCTURE) before it falls back to reading and parsing the message.
   * A backend without it works unchanged: the server then parses (RFC 3501 6.4.5 FETCH).
   */
  structures?(uids: number[]): Promise<Map<number, Buffer>>;
  /**
   * Optional, present with structures(): store entries the server computed lazily (for messages
   * stored without one, or with an entry of an older format), replacing any entry the message has.
   * UIDs that are gone are skipped. Not a mailbox change: no MODSEQ, no ChangeEvent. A failure
   * costs only speed; the server ignores it.
   */
  saveStructures?(entries: Map<number, Buffer>): Promise<void>;
  /** Change flags (RFC 3501 6.4.6); never fails on expunged UIDs, it skips them. */
  updateFlags(uids: number[], update: FlagUpdate, origin?: string): Promise<FlagUpdateResult>;
  /** Remove the given UIDs if they carry \Deleted (all \Deleted ones when uids is undefined). Returns removed UIDs. */
  expunge(uids: number[] | undefined, origin?: string): Promise<number[]>;
  /** Copy messages to another mailbox (RFC 3501 6.4.7, RFC 4315 COPYUID). Raises NONEXISTENT for the target. */
  copy(uids: number[], target: string, origin?: string): Promise<UidMapping>;
  /** Move messages atomically (RFC 6851): copy then expunge in one step. */
  move(uids: number[], target: string, origin?: string): Promise<UidMapping>;
  /** Changes with modSeq > since (RFC 7162). */
  changesSince(since: bigint): Promise<Changes>;
  /** Release resources; the handle is not used after this. */
  close(): Promise<void>;
}

/** One user's mail. */
export interface UserMailStore {
  readonly user: string;
  /**
   * True when the store keeps NewMessage.structure and its handles have structures() and
   * saveStructures(): the server then computes the entry at APPEND. Absent or false: it does not.
   */
  readonly keepsStructures?: boolean;
  /** All mailboxes, INBOX included, in no particular order (RFC 3501 6.3.8). */
  listMailboxes(): Promise<MailboxInfo[]>;
  /** Create a mailbox and missing parents (RFC 3501 6.3.3, RFC 6154 CREATE-SPECIAL-USE). ALREADYEXISTS if it exists. */
  createMailbox(name: string, specialUse?: SpecialUse): Promise<void>;
  /** Delete a mailbox (RFC 3501 6.3.4). NONEXISTENT; CANNOT for INBOX. Children stay. */
  deleteMailbox(name: string): Promise<void>;
  /** Rename a mailbox and its children (RFC 3501 6.3.5); renaming INBOX moves its messages to the new name. */
  renameMailbox(from: string, to: string): Promise<void>;
  /** Subscribe or unsubscribe (RFC 3501 6.3.6-7); the name need not exist. */
  setSubscribed(name: string, subscribed: boolean): Promise<void>;
  /** Counters of a mailbox without opening it (RFC 3501 6.3.10). NONEXISTENT. */
  status(name: string): Promise<MailboxStatus>;
  /** Open a mailbox for a session (SELECT/EXAMINE). NONEXISTENT. */
  open(name: string): Promise<MailboxHandle>;
  /** Store messages atomically, all or none (RFC 3501 6.3.11, RFC 3502 MULTIAPPEND, RFC 4315 APPENDUID). Durable on return. */
  append(mailbox: string, messages: NewMessage[], origin?: string): Promise<UidMapping>;
  /** Quota usage for the user's single root "" (RFC 9208). */
  quota(): Promise<QuotaInfo>;
  /**
   * Be told about changes made by any session to any of this user's mailboxes. Returns an unsubscribe function.
   * Listeners run synchronously once the change is committed; sqlite delivers only within one SqliteStore instance.
   */
  watch(listener: (event: ChangeEvent) => void): () => void;
  /** Release this user's resources. */
  close(): Promise<void>;
}

/** A user database (imapkit user add|passwd|del|list, LOGIN, AUTHENTICATE). */
export interface UserDb {
  /** True when the password matches (scrypt; constant time). Unknown users take as long as known ones. */
  verify(user: string, password: string): Promise<boolean>;
  /** SCRAM-SHA-256 stored credentials (RFC 5802/7677), or null if the user is unknown or has none. */
  scramCredentials(user: string): Promise<ScramCredentials | null>;
  addUser(user: string, password: string): Promise<void>;
  setPassword(user: string, password: string): Promise<void>;
  deleteUser(user: string): Promise<void>;
  listUsers(): Promise<string[]>;
}

/** What SCRAM needs stored (RFC 5802 section 3): never the password itself. */
export interface ScramCredentials {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** A storage backend for all users. */
export interface MailStore {
  /** Backend name, e.g. "memory", "sqlite". */
  readonly kind: string;
  /** Open (creating on first use) one user's mail. */
  openUser(user: string): Promise<UserMailStore>;
  /** The user database that lives with this store, if it has one (sqlite: a table; memory: a map). */
  readonly users?: UserDb;
  /** Flush and close everything. */
  close(): Promise<void>;
}
