/**
 * The MIME index: plain data describing where every part of a message lies in its raw bytes.
 * Strings taken from header fields are "byte strings" (latin1: one char per byte) so that raw
 * 8-bit header bytes survive unchanged; decoded text comes from headerValues()/bodyText().
 */

/** One parameter of Content-Type or Content-Disposition, after RFC 2231 continuations are merged. */
export interface MimeParam {
  /** Name as written, e.g. "charset", "filename*" (a trailing * marks an RFC 2231 charset'lang'value). */
  name: string;
  /** Value as written (quotes and escapes removed), byte string. */
  value: string;
}

/** One header field: byte offsets into the raw message. */
export interface HeaderField {
  /** Field name as written, trailing whitespace before the colon removed (byte string); "" for a line without a colon. */
  name: string;
  /** Offset of the first byte of the field (its name). */
  start: number;
  /** Offset just after the colon (`start` for a line without a colon). */
  valueStart: number;
  /** Offset just after the field's last line break (or the end of data when it has none). */
  end: number;
}

/** One MIME part (the root part is the message itself). */
export interface MimePart {
  /** Content-Type type as written, or null when absent (or not MIME: no MIME-Version/Content-Type). */
  contentType: string | null;
  /** Content-Type subtype as written; null when there is no "/subtype". */
  contentSubtype: string | null;
  /** Effective type and subtype, lower-cased: "text"/"plain" by default, "message"/"rfc822" in a digest. */
  type: string;
  subtype: string;
  /** Content-Type parameters (RFC 2231 continuations merged the way Dovecot does). */
  params: MimeParam[];
  /** Content-ID, Content-Description, Content-MD5, Content-Location: unfolded raw values or null. */
  id: string | null;
  description: string | null;
  md5: string | null;
  location: string | null;
  /** Content-Transfer-Encoding token as written, or null (meaning 7bit). */
  encoding: string | null;
  /** Content-Disposition value and parameters, or null. */
  disposition: string | null;
  dispositionParams: MimeParam[];
  /** Content-Language tags, or null. */
  language: string[] | null;
  /** Header fields of this part, in order. */
  headers: HeaderField[];
  /** Offset of the header's first byte. */
  headerStart: number;
  /** End of the last header field (start of the blank line, if any). */
  headerEnd: number;
  /** First byte of the body (after the blank line). */
  bodyStart: number;
  /** End of the body (exclusive); the line break before a boundary belongs to the boundary. */
  bodyEnd: number;
  /** Number of LF bytes in the body (IMAP body "lines"). */
  lines: number;
  /** Body size with bare LFs counted as CRLF: the size IMAP reports and BODY[] serves. */
  size: number;
  /** Same, for the header (blank line included). */
  headerSize: number;
  /** True for a multipart whose children were parsed (even when none were found). */
  multipart: boolean;
  /** True for text/* (and the default text/plain): BODYSTRUCTURE then carries a line count. */
  text: boolean;
  /** Child parts of a multipart. */
  children: MimePart[];
  /** For message/rfc822 and message/global: the embedded message's root part. */
  message: MimePart | null;
  /** Nesting depth: 0 for the root. */
  depth: number;
}

/** The index of one message. */
export interface MessageIndex {
  /** Size of the message as served (bare LFs counted as CRLF): RFC822.SIZE and the length of BODY[]. */
  size: number;
  /** Length of the raw bytes. */
  rawSize: number;
  /** True when the raw bytes hold a LF not preceded by CR (output is then normalised to CRLF). */
  bareLf: boolean;
  /** The root part; its `headers` are the message's top-level header fields. */
  root: MimePart;
  /** Number of parts, root included. */
  partCount: number;
  /**
   * True for an index of the top-level header alone (indexHeader): good for ENVELOPE and the
   * root's HEADER / HEADER.FIELDS sections only; `size` and `bareLf` then describe the header.
   */
  headerOnly?: boolean;
}
