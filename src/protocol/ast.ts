/**
 * The IMAP command grammar as plain data: what the parser yields and what the server consumes.
 * RFC 3501 / RFC 9051 plus the extensions listed in ARCHITECTURE.md. No I/O here.
 */

/** One end of a sequence range: a number, or `*` (the largest number in use). */
export type SeqNumber = number | '*';

/** A range `a:b` (a may be greater than b: ranges are unordered per RFC 3501 9). A single number has start === end. */
export interface SeqRange {
  start: SeqNumber;
  end: SeqNumber;
}

/** A sequence set: explicit ranges, or `$` (the SEARCHRES saved result, RFC 5182). */
export type SequenceSet = { kind: 'ranges'; ranges: SeqRange[] } | { kind: 'saved' };

/** Section specifier of BODY[...] (RFC 3501 6.4.5): part path plus optional text part. */
export interface Section {
  /** Part numbers, e.g. [1, 2] for "1.2"; empty for the whole message. */
  part: number[];
  /** HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME, or undefined for the part body. */
  text?: 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';
  /** Header field names for HEADER.FIELDS(.NOT), as sent (case kept). */
  fields?: string[];
}

/** `<offset.length>` partial; length undefined when only `<offset>` appears in a response. */
export interface Partial {
  offset: number;
  length: number;
}

/** One FETCH data item (macros ALL/FAST/FULL are expanded by the parser). */
export type FetchItem =
  | {
      type:
        | 'UID'
        | 'FLAGS'
        | 'INTERNALDATE'
        | 'RFC822.SIZE'
        | 'ENVELOPE'
        | 'BODYSTRUCTURE'
        /** non-extensible BODY (no section) */
        | 'BODY'
        | 'RFC822'
        | 'RFC822.HEADER'
        | 'RFC822.TEXT'
        | 'MODSEQ'
        | 'EMAILID'
        | 'THREADID'
        | 'SAVEDATE';
    }
  | { type: 'BODY[]'; peek: boolean; section: Section; partial?: Partial }
  | { type: 'BINARY[]'; peek: boolean; part: number[]; partial?: Partial }
  | { type: 'BINARY.SIZE'; part: number[] };

/** Date-only value from SEARCH (RFC 3501 date): ISO "YYYY-MM-DD". */
export type SearchDate = string;

/** A SEARCH key tree (RFC 3501 6.4.4, RFC 9051 6.4.4, RFC 7162 3.1.5, RFC 5032, RFC 8514, RFC 8474). */
export type SearchKey =
  | { type: 'all' }
  | { type: 'and'; keys: SearchKey[] }
  | { type: 'or'; left: SearchKey; right: SearchKey }
  | { type: 'not'; key: SearchKey }
  /** System flag or keyword; `set: false` for UNSEEN, UNKEYWORD, etc. NEW/OLD/RECENT use \Recent. */
  | { type: 'flag'; flag: string; set: boolean }
  | { type: 'seq'; set: SequenceSet }
  | { type: 'uid'; set: SequenceSet }
  | { type: 'date'; field: 'internal' | 'sent' | 'saved'; op: 'before' | 'on' | 'since'; date: SearchDate }
  | { type: 'size'; op: 'larger' | 'smaller'; value: number }
  /** HEADER name value, and FROM/TO/CC/BCC/SUBJECT as HEADER with the field name lower-cased. */
  | { type: 'header'; field: string; value: string }
  | { type: 'body'; value: string }
  | { type: 'text'; value: string }
  | { type: 'modseq'; modseq: bigint; entry?: { name: string; kind: 'priv' | 'shared' | 'all' } }
  | { type: 'older' | 'younger'; seconds: number }
  | { type: 'savedatesupported' }
  | { type: 'emailid' | 'threadid'; id: string };

/** SORT criteria (RFC 5256). */
export interface SortKey {
  key: 'ARRIVAL' | 'CC' | 'DATE' | 'FROM' | 'SIZE' | 'SUBJECT' | 'TO' | 'DISPLAYFROM' | 'DISPLAYTO';
  reverse: boolean;
}

/** ESEARCH/SORT RETURN options (RFC 4731, RFC 5182, RFC 5267). Empty list means "RETURN ()" i.e. ALL. */
export type SearchReturn = Array<'MIN' | 'MAX' | 'ALL' | 'COUNT' | 'SAVE'>;

/** STATUS attributes (RFC 3501, RFC 9051, RFC 7162, RFC 8438 STATUS=SIZE, RFC 8474 MAILBOXID). */
export type StatusItem =
  | 'MESSAGES'
  | 'RECENT'
  | 'UIDNEXT'
  | 'UIDVALIDITY'
  | 'UNSEEN'
  | 'DELETED'
  | 'SIZE'
  | 'HIGHESTMODSEQ'
  | 'APPENDLIMIT'
  | 'MAILBOXID';

/** One message of APPEND (MULTIAPPEND gives several). */
export interface AppendMessage {
  flags: string[];
  /** INTERNALDATE given by the client, if any. */
  date?: Date;
  /** The message bytes. */
  data: Buffer;
  /** True for a `~{n}` literal (RFC 3516): the data may hold NUL. */
  binary: boolean;
  /** True for UTF8 (...) (RFC 6855 / RFC 9051 UTF8=ACCEPT). */
  utf8: boolean;
}

/** QRESYNC parameters of SELECT/EXAMINE (RFC 7162 3.2.5). */
export interface QresyncParams {
  uidValidity: number;
  modSeq: bigint;
  knownUids?: SequenceSet;
  seqMatch?: { seqs: SequenceSet; uids: SequenceSet };
}

/** LIST (RFC 3501, RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE). */
export interface ListCommand {
  name: 'LIST';
  reference: string;
  patterns: string[];
  /** Selection options, upper-cased: SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE. */
  selection: string[];
  /** RETURN options. */
  returnSubscribed: boolean;
  returnChildren: boolean;
  returnSpecialUse: boolean;
  returnStatus?: StatusItem[];
  /** True when any LIST-EXTENDED syntax was used (answers then carry extended data). */
  extended: boolean;
}

/** Every command the parser yields. Mailbox names are the wire form (modified UTF-7 or UTF-8); the server decodes them. */
export type CommandBody =
  | { name: 'CAPABILITY' | 'NOOP' | 'LOGOUT' | 'STARTTLS' | 'IDLE' | 'CHECK' | 'CLOSE' | 'UNSELECT' | 'NAMESPACE' }
  | { name: 'LOGIN'; user: string; password: string }
  /** initialResponse: base64 text as sent (SASL-IR), '=' for empty, undefined when absent. */
  | { name: 'AUTHENTICATE'; mechanism: string; initialResponse?: string }
  | { name: 'ENABLE'; capabilities: string[] }
  /** ID parameters, or null for ID NIL (RFC 2971). */
  | { name: 'ID'; params: Array<[string, string | null]> | null }
  | { name: 'SELECT' | 'EXAMINE'; mailbox: string; condstore: boolean; qresync?: QresyncParams }
  | { name: 'CREATE'; mailbox: string; specialUse?: string[] }
  | { name: 'DELETE' | 'SUBSCRIBE' | 'UNSUBSCRIBE'; mailbox: string }
  | { name: 'RENAME'; from: string; to: string }
  | ListCommand
  | { name: 'LSUB'; reference: string; pattern: string }
  | { name: 'STATUS'; mailbox: string; items: StatusItem[] }
  | { name: 'APPEND'; mailbox: string; messages: AppendMessage[] }
  /** EXPUNGE, or UID EXPUNGE with a set (uid true). */
  | { name: 'EXPUNGE'; uid: boolean; sequence?: SequenceSet }
  | {
      name: 'SEARCH';
      uid: boolean;
      charset?: string;
      criteria: SearchKey;
      /** undefined: plain SEARCH response; otherwise ESEARCH with these options. */
      returnOptions?: SearchReturn;
    }
  | {
      name: 'FETCH';
      uid: boolean;
      sequence: SequenceSet;
      items: FetchItem[];
      /** True when the item list was a macro or a list (affects nothing but kept for tracing). */
      changedSince?: bigint;
      vanished: boolean;
    }
  | {
      name: 'STORE';
      uid: boolean;
      sequence: SequenceSet;
      action: 'set' | 'add' | 'remove';
      silent: boolean;
      flags: string[];
      unchangedSince?: bigint;
    }
  | { name: 'COPY' | 'MOVE'; uid: boolean; sequence: SequenceSet; mailbox: string }
  | {
      name: 'SORT';
      uid: boolean;
      criteria: SortKey[];
      charset: string;
      search: SearchKey;
      returnOptions?: SearchReturn;
    }
  | { name: 'THREAD'; uid: boolean; algorithm: 'REFERENCES' | 'ORDEREDSUBJECT' | string; charset: string; search: SearchKey }
  | { name: 'GETQUOTA'; root: string }
  | { name: 'GETQUOTAROOT'; mailbox: string }
  | { name: 'SETQUOTA'; root: string; limits: Array<{ resource: string; limit: number }> }
  | { name: 'COMPRESS'; mechanism: string };

/** A parsed command with its tag. */
export type Command = CommandBody & { tag: string };

/** Parser limits; a violation yields a ParseError, never a throw. */
export interface ParserLimits {
  /** Longest line outside literals, bytes (default 65536). */
  maxLineLength: number;
  /** Largest single literal, bytes (default 64 MiB). */
  maxLiteralSize: number;
  /** Deepest list/parenthesis nesting (default 64). */
  maxDepth: number;
  /** Most tokens/items in one command (default 100000). */
  maxItems: number;
  /** Most bytes one command may hold, text and literals together (default 4 × maxLiteralSize). */
  maxCommandSize?: number;
}

/** What the streaming parser hands back, one at a time. */
export type ParserEvent =
  | { kind: 'command'; command: Command }
  /**
   * A synchronizing literal `{n}` was announced and accepted: the caller must now send
   * a `+` continuation. `tag` and `name` are what is known of the command so far.
   */
  | { kind: 'continue'; tag: string; name: string; size: number }
  /**
   * A malformed command or a limit violation. `tag` is the command tag when it could be read (else '*').
   * `code` is a response code to send (e.g. TOOBIG, PARSE, CLIENTBUG). When `fatal` the stream cannot
   * be resynchronised: send `* BYE` and close.
   */
  | { kind: 'error'; tag: string; message: string; code?: string; fatal: boolean; name?: string }
  /** In line mode (AUTHENTICATE continuations, IDLE's DONE): one raw line without CRLF. */
  | { kind: 'line'; line: string };
