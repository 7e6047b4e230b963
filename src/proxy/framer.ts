/**
 * Pre-authentication framing: cuts the client's byte stream into whole commands (command line
 * plus literal bodies) under hard limits, before any parsing. Memory stays bounded by the limits
 * whatever arrives; bytes after the command that authenticates are handed back untouched.
 */

/** Hard limits for unauthenticated input. */
export interface FramerLimits {
  /** Longest line outside literals, bytes including CRLF. */
  maxLine: number;
  /** Largest single literal, bytes. */
  maxLiteral: number;
  /** Largest whole command (lines + literals), bytes. */
  maxCommand: number;
  /** Most literals in one command. */
  maxLiterals: number;
}

/** Defaults fit for LOGIN/AUTHENTICATE: passwords and SASL responses are small. */
export const DEFAULT_FRAMER_LIMITS: FramerLimits = { maxLine: 8192, maxLiteral: 8192, maxCommand: 24_576, maxLiterals: 4 };

/** What the framer yields. */
export type FrameEvent =
  /** A complete command: every byte of it, CRLF included. */
  | { kind: 'command'; data: Buffer }
  /** A synchronizing literal of `size` bytes was announced and is acceptable: send a `+` continuation. */
  | { kind: 'continue'; size: number }
  /** Limit violation or framing error. When fatal the stream cannot be resynchronised. */
  | { kind: 'error'; tag: string; message: string; code?: string; fatal: boolean }
  /** A raw line (line mode: SASL continuation responses), without CRLF. */
  | { kind: 'line'; line: Buffer };

const LF = 0x0a;
// A literal announcement at the end of a line: {n}, {n+}, ~{n} (binary).
const LITERAL_AT_END = /(~?)\{(\d{1,10})(\+?)\}\r?\n$/;

/** True when position `end` of a line segment lies inside a quoted string (segments start outside quotes). */
export function insideQuotes(segment: string, end: number): boolean {
  let quoted = false;
  for (let i = 0; i < end; i++) {
    const c = segment.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c) i++;
      else if (c === 0x22) quoted = false;
    } else if (c === 0x22) quoted = true;
  }
  return quoted;
}

/**
 * The literal announced at the end of a line segment (CRLF included), or null. `{5}` inside an
 * unterminated quoted string is not a literal, as servers see it. Pass `checkQuotes: false` when
 * only the segment's tail is known.
 */
export function literalAtEnd(segment: string, checkQuotes = true): { size: number; sync: boolean } | null {
  const m = LITERAL_AT_END.exec(segment.length > 24 ? segment.slice(-24) : segment);
  if (!m) return null;
  if (checkQuotes && segment.indexOf('"') !== -1 && insideQuotes(segment, segment.length - m[0].length)) return null;
  return { size: Number(m[2]), sync: m[3] === '' };
}

/** Splits unauthenticated input into commands, enforcing FramerLimits. */
export class CommandFramer {
  private buf: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private cmdSize = 0;
  private literals = 0;
  private literalRemaining = 0;
  private lineMode = false;
  private failed = false;
  /** Where the LF search resumes in buf (bytes before it hold no LF). */
  private scanFrom = 0;

  constructor(private readonly limits: FramerLimits = DEFAULT_FRAMER_LIMITS) {}

  /** Add received bytes. */
  push(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Line mode delivers raw lines (AUTHENTICATE continuation responses) instead of commands. */
  setLineMode(on: boolean): void {
    this.lineMode = on;
  }

  /** Bytes received but not yet consumed (after the authenticating command: the pipelined rest). */
  takeRest(): Buffer {
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    this.scanFrom = 0;
    return rest;
  }

  /** Drop everything buffered (STARTTLS: plaintext sent after it must never be acted on). */
  reset(): void {
    this.buf = Buffer.alloc(0);
    this.parts = [];
    this.cmdSize = 0;
    this.literals = 0;
    this.literalRemaining = 0;
    this.scanFrom = 0;
    this.lineMode = false;
  }

  /** Bytes held in memory (tests assert the bound). */
  get buffered(): number {
    return this.buf.length + this.cmdSize;
  }

  /** The next event, or null when more input is needed. */
  next(): FrameEvent | null {
    if (this.failed) return null;
    for (;;) {
      if (this.literalRemaining > 0) {
        if (this.buf.length < this.literalRemaining) return null;
        this.parts.push(this.buf.subarray(0, this.literalRemaining));
        this.consume(this.literalRemaining);
        this.literalRemaining = 0;
        continue;
      }
      const lf = this.buf.indexOf(LF, this.scanFrom);
      if (lf === -1) {
        this.scanFrom = this.buf.length;
        if (this.buf.length > this.limits.maxLine || this.cmdSize + this.buf.length > this.limits.maxCommand) {
          return this.fatal('Line too long', 'TOOBIG');
        }
        return null;
      }
      const line = this.buf.subarray(0, lf + 1);
      if (line.length > this.limits.maxLine) return this.fatal('Line too long', 'TOOBIG');
      this.consume(lf + 1);
      if (this.lineMode) {
        const end = line.length >= 2 && line[line.length - 2] === 0x0d ? line.length - 2 : line.length - 1;
        return { kind: 'line', line: line.subarray(0, end) };
      }
      this.cmdSize += line.length;
      if (this.cmdSize > this.limits.maxCommand) return this.fatal('Command too long', 'TOOBIG');
      const m = literalAtEnd(line.toString('latin1'));
      if (!m) {
        this.parts.push(line);
        const data = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
        this.clearCommand();
        return { kind: 'command', data };
      }
      const { size, sync } = m;
      if (++this.literals > this.limits.maxLiterals) return this.fatal('Too many literals', 'TOOBIG');
      if (size > this.limits.maxLiteral || this.cmdSize + size > this.limits.maxCommand) {
        if (!sync) return this.fatal('Literal too large', 'TOOBIG');
        // The client waits for "+" before sending a synchronizing literal: refusing it keeps the stream in step.
        const tag = this.tagOf(this.parts.length > 0 ? this.parts[0] : line);
        this.clearCommand();
        return { kind: 'error', tag, message: 'Literal too large', code: 'TOOBIG', fatal: false };
      }
      this.parts.push(line);
      this.cmdSize += size;
      this.literalRemaining = size;
      if (sync) return { kind: 'continue', size };
    }
  }

  private consume(n: number): void {
    this.buf = this.buf.subarray(n);
    this.scanFrom = 0;
  }

  private clearCommand(): void {
    this.parts = [];
    this.cmdSize = 0;
    this.literals = 0;
  }

  private fatal(message: string, code: string): FrameEvent {
    const tag = this.tagOf(this.parts.length > 0 ? this.parts[0] : this.buf);
    this.failed = true;
    this.buf = Buffer.alloc(0);
    this.parts = [];
    this.cmdSize = 0;
    return { kind: 'error', tag, message, code, fatal: true };
  }

  /** The tag of a command line if it looks like one (else `*`). */
  private tagOf(line: Buffer): string {
    const sp = line.indexOf(0x20);
    const tag = line.subarray(0, sp === -1 ? Math.min(line.length, 64) : Math.min(sp, 64)).toString('latin1');
    return /^[\x21-\x7e]+$/.test(tag) && !/[(){%*"\\\]+]/.test(tag) ? tag : '*';
  }
}
