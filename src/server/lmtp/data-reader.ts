/**
 * The message text after DATA (RFC 5321 4.5.2): lines up to a line holding only ".", with the
 * leading dot of every other dot-started line removed. Fed socket chunks as they come, so a line
 * may be split anywhere; the message is kept as slices of those chunks (no copy until the end).
 * Bare LF line ends become CRLF, as IMAP needs (RFC 9051 2.3.1: messages are CRLF); a bare CR is
 * kept as it is. Past the size limit nothing more is kept, but the text is still read to its
 * end, so the connection stays in step and the client gets its 552.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const CR_ONLY = Buffer.from('\r');

/** Reads one message of a DATA command. */
export class DotReader {
  private pieces: Buffer[] = [];
  private kept = 0;
  /** Next byte starts a line (so it is checked for a dot). */
  private atLineStart = true;
  /** At a line start: 0 nothing seen, 1 seen ".", 2 seen ".\r" (still possibly the end line). */
  private dot: 0 | 1 | 2 = 0;
  /** The last byte taken into the message was CR (for LF that arrives in the next chunk). */
  private prevCr = false;
  /** The end line has been read. */
  done = false;
  /** The message was larger than the limit: it is not kept. */
  tooBig = false;

  constructor(private readonly maxSize: number) {}

  /** Bytes of message text so far (after unstuffing; counted also past the limit). */
  get size(): number {
    return this.kept;
  }

  /** Take a chunk; returns how many of its bytes belong to the message (the rest follows the end line). */
  feed(buf: Buffer): number {
    let i = 0;
    while (i < buf.length) {
      if (this.atLineStart) {
        const b = buf[i]!;
        if (this.dot === 0) {
          if (b === DOT) {
            this.dot = 1;
            i++;
            continue;
          }
          this.atLineStart = false;
        } else if (this.dot === 1) {
          if (b === LF) return this.end(i + 1);
          if (b === CR) {
            this.dot = 2;
            i++;
            continue;
          }
          // A stuffed dot: dropped; the rest of the line is text.
          this.dot = 0;
          this.atLineStart = false;
        } else {
          if (b === LF) return this.end(i + 1);
          // ".\r" then something else: the CR is text.
          this.keep(CR_ONLY);
          this.prevCr = true;
          this.dot = 0;
          this.atLineStart = false;
        }
      }
      const nl = buf.indexOf(LF, i);
      if (nl < 0) {
        this.keep(buf.subarray(i));
        this.prevCr = buf[buf.length - 1] === CR;
        return buf.length;
      }
      const crBefore = nl > i ? buf[nl - 1] === CR : this.prevCr;
      if (crBefore) this.keep(buf.subarray(i, nl + 1));
      else {
        this.keep(buf.subarray(i, nl));
        this.keep(CRLF);
      }
      i = nl + 1;
      this.atLineStart = true;
      this.prevCr = false;
    }
    return buf.length;
  }

  /** The message (after the end line; empty when it was too big). */
  message(): Buffer {
    return this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.tooBig ? 0 : this.kept);
  }

  private keep(piece: Buffer): void {
    if (piece.length === 0) return;
    this.kept += piece.length;
    if (this.tooBig) return;
    if (this.kept > this.maxSize) {
      this.tooBig = true;
      this.pieces = [];
      return;
    }
    this.pieces.push(piece);
  }

  private end(at: number): number {
    this.done = true;
    return at;
  }
}
