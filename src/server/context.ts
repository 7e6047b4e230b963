/**
 * What a command handler sees of its session. The session machine (session.ts) implements
 * SessionContext; each handler in commands/ is `(ctx, cmd) => Promise<CommandResult>`.
 */
import type { Command, SequenceSet } from '../protocol/ast.js';
import type { ResponseValue } from '../protocol/values.js';
import type { MailboxHandle, MessageMeta, UserMailStore } from '../store/contract.js';
import type { MessageIndex } from '../mime/index.js';
import type { Logger } from '../log/logger.js';

/** How a command ends: the tagged response. */
export interface CommandResult {
  status: 'OK' | 'NO' | 'BAD';
  /** Response code without brackets, e.g. "APPENDUID 1 5", "TRYCREATE", "READ-WRITE". */
  code?: string;
  text: string;
}

/** The state of the selected mailbox as this session has told the client (RFC 3501 2.3.1, 7.4.1). */
export interface SelectedMailbox {
  handle: MailboxHandle;
  /** Mailbox name (Unicode). */
  name: string;
  readOnly: boolean;
  /** uids[i] is the UID of message sequence number i + 1: the view the client knows. */
  uids: number[];
  /** Metadata as last reported to the client, by UID. Handlers that report FETCH FLAGS update it. */
  meta: Map<number, MessageMeta>;
  /** HIGHESTMODSEQ the view was last synchronised to (only the session machine advances it). */
  syncedModSeq: bigint;
  /** SEARCHRES saved result `$` as UIDs (RFC 5182). */
  savedResult: number[];
  /** UIDs with \Recent in this session (recent.ts); empty for an IMAP4rev2 client. */
  recent: Set<number>;
  /** The mailbox's key in the \Recent tracker. */
  recentKey: string;
}

/** Server-wide settings a handler may need. */
export interface ServerLimits {
  /** Largest message APPEND accepts (APPENDLIMIT), bytes. */
  appendLimit: number;
}

/** The session as a command handler sees it. */
export interface SessionContext {
  /** Unique id of the session: the `origin` passed to store calls, so its own changes are not echoed back. */
  readonly id: string;
  readonly user: string;
  readonly store: UserMailStore;
  /** Selected mailbox, if any. */
  selected: SelectedMailbox | undefined;
  /** Extensions turned on with ENABLE (upper case): CONDSTORE, QRESYNC, UTF8=ACCEPT, IMAP4REV2. */
  readonly enabled: Set<string>;
  /** True once CONDSTORE is active (ENABLE CONDSTORE/QRESYNC, SELECT (CONDSTORE), or a MODSEQ-using command). */
  condstoreActive: boolean;
  readonly limits: ServerLimits;
  readonly log: Logger;
  /** Send `* <values...>\r\n`; values are written by the protocol writer. Respects backpressure internally. */
  untagged(values: ResponseValue[]): void;
  /** Wait until buffered output has drained (call inside long loops, e.g. FETCH 1:*). */
  drain(): Promise<void>;
  /** Wire mailbox name -> Unicode (modified UTF-7 unless UTF8=ACCEPT). Throws MailboxNameError. */
  decodeMailbox(wire: string): string;
  /** Unicode mailbox name -> wire form. */
  encodeMailbox(name: string): string;
  /** Resolve a sequence set against the selected view: returns UIDs in ascending order (only existing ones). */
  resolve(set: SequenceSet, uid: boolean): number[];
  /** Sequence number (1-based) of a UID in the view, or 0. */
  seqOf(uid: number): number;
  /**
   * Parsed MIME index of a message in the selected mailbox (cached), plus its bytes. Null if gone.
   * `raw`, when the caller already read the bytes (e.g. in a batch), spares the store read.
   */
  message(uid: number, raw?: Buffer): Promise<{ raw: Buffer; index: MessageIndex } | null>;
}

/** A command handler: one exported function per command, in commands/<name>.ts. */
export type CommandHandler<C extends Command = Command> = (ctx: SessionContext, cmd: C) => Promise<CommandResult>;

/** Thrown for a mailbox name that cannot be decoded (invalid modified UTF-7) or that is not allowed. */
export class MailboxNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MailboxNameError';
  }
}
