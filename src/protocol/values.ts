/**
 * Response values as plain data: the writer (writer.ts) turns them into bytes, choosing atom,
 * quoted string or literal. The MIME layer builds ENVELOPE and BODYSTRUCTURE out of these.
 */
import type { Readable } from 'node:stream';

/** A value in an IMAP response. */
export type ResponseValue =
  /** NIL */
  | null
  /** A number (written as digits). */
  | number
  | bigint
  /** A string: the writer picks quoted or literal (8-bit, CR, LF, NUL or long strings become literals). */
  | string
  /**
   * A raw atom written as is (flags, keywords, section names). Never user-controlled text.
   * `checked`: its maker verified it holds no CR or LF, so the writer need not scan it again
   * (the pre-encoded ENVELOPE/BODYSTRUCTURE answers of the structure cache, kilobytes each).
   */
  | { atom: string; checked?: true }
  /** Bytes to write as a literal; `binary` uses `~{n}` (RFC 3516). */
  | { literal: Buffer; binary?: boolean }
  /** A streamed literal of known size, written without buffering the whole thing. */
  | { stream: () => Readable; size: number; binary?: boolean }
  /** A parenthesised list. */
  | ResponseValue[]
  /** A parenthesised list written without separators: RFC 3501 address lists are `((...)(...))`. */
  | { adjacent: ResponseValue[] };

/** Helper: an atom value. */
export function atom(text: string): { atom: string } {
  return { atom: text };
}

/** Helper: an atom whose text the caller has verified holds no CR or LF. */
export function checkedAtom(text: string): { atom: string; checked: true } {
  return { atom: text, checked: true };
}
