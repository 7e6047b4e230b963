/**
 * Streaming IMAP command parser. Bytes go in with push(), events come out of next() one at a time.
 *
 * Two stages: a framer that cuts the byte stream into commands (lines, and the literals `{n}`,
 * `{n+}`, `~{n}` announced at their ends) under the limits, and the grammar (commands.ts) that
 * turns one framed command into the AST. The framer never buffers what it rejects: an over-long
 * line or an over-size non-synchronizing literal is skipped by scanning and counting.
 */
import type { ParserEvent, ParserLimits } from './ast.js';
import { parseCommand } from './commands.js';
import { resolveParserLimits, type ResolvedLimits } from './limits.js';
import { ProtocolSyntaxError } from './sequence.js';
import { IncompleteInput, Reader, type Part } from './tokenizer.js';

export { DEFAULT_LIMITS } from './limits.js';

const S_LINE = 0;
const S_LITERAL = 1;
const S_DISCARD_LINE = 2;
const S_DISCARD_LITERAL = 3;
const S_DEAD = 4;

/** Literals per command whose command prefix is grammar-checked before the literal is accepted. */
const PREFIX_CHECKS = 8;
/** Bytes of a discarded line kept to spot a literal header at its end. */
const TAIL = 48;
const EMPTY = Buffer.alloc(0);

interface LiteralHeader {
  /** Offset of `{` (or `~`) in the line. */
  start: number;
  /** Announced size; Infinity when beyond 2^53. */
  size: number;
  sync: boolean;
  binary: boolean;
}

// True when `end` lies inside a quoted string of a line segment (segments start outside quotes).
function insideQuotes(line: Buffer, end: number): boolean {
  let quoted = false;
  for (let i = 0; i < end; i++) {
    const c = line[i];
    if (quoted) {
      if (c === 0x5c) i++;
      else if (c === 0x22) quoted = false;
    } else if (c === 0x22) quoted = true;
  }
  return quoted;
}

/** The literal header `{n}`, `{n+}`, `~{n}` or `~{n+}` ending `line`, if any. */
function literalHeader(line: Buffer, checkQuotes: boolean): LiteralHeader | null {
  let i = line.length - 1;
  if (i < 2 || line[i] !== 0x7d) return null;
  i--;
  let sync = true;
  if (line[i] === 0x2b) {
    sync = false;
    i--;
  }
  const digitsEnd = i + 1;
  while (i >= 0 && line[i]! >= 0x30 && line[i]! <= 0x39) i--;
  const digitsStart = i + 1;
  if (digitsStart === digitsEnd || i < 0 || line[i] !== 0x7b) return null;
  let start = i;
  let binary = false;
  if (i > 0 && line[i - 1] === 0x7e) {
    binary = true;
    start = i - 1;
  }
  let size = 0;
  for (let k = digitsStart; k < digitsEnd; k++) {
    size = size * 10 + (line[k]! - 0x30);
    if (size > Number.MAX_SAFE_INTEGER) {
      size = Infinity;
      break;
    }
  }
  if (checkQuotes && insideQuotes(line, start)) return null;
  return { start, size, sync, binary };
}

/** Tag and command name from the first bytes of a command, as far as they can be read. */
function headInfo(head: Buffer | undefined): { tag: string; name: string | undefined } {
  if (!head || head.length === 0) return { tag: '*', name: undefined };
  const r = new Reader([head], 1, 8);
  try {
    r.readTag();
    // A tag cut off by the end of the head is not the tag.
    if (r.peek() !== 0x20) return { tag: '*', name: undefined };
    r.sp('command name');
    let name = r.keyword('command name');
    if (name === 'UID' && r.optSp()) name = r.keyword('command name');
    r.name = name;
  } catch {
    // Whatever could be read is in r.tag and r.name.
  }
  return { tag: r.tag, name: r.name };
}

/** Streaming parser of client commands: push() bytes, pull events with next(). Never throws on input. */
export class CommandParser {
  private readonly limits: ResolvedLimits;
  // Unconsumed input: chunks from inHead on; inPos is the position in input[inHead].
  private input: Buffer[] = [];
  private inHead = 0;
  private inPos = 0;
  private inBytes = 0;
  private readonly events: ParserEvent[] = [];
  private state = S_LINE;
  private lineMode = false;
  // Current line (a segment of the command between literals), as slices of the input.
  private pieces: Buffer[] = [];
  private lineLen = 0;
  // The command so far: text segments and literals, alternating.
  private parts: Part[] = [];
  private cmdBytes = 0;
  private literals = 0;
  // The literal being received.
  private litPieces: Buffer[] = [];
  private litHeld = 0;
  private litRemaining = 0;
  private litBinary = false;
  private discardRemaining = 0;
  private tail: Buffer = EMPTY;

  /** `limits` override DEFAULT_LIMITS field by field. */
  constructor(limits?: Partial<ParserLimits>) {
    this.limits = resolveParserLimits(limits);
  }

  /** Feed bytes as they arrive; the parser keeps the Buffer (do not modify it afterwards). */
  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.state === S_DEAD) return;
    this.input.push(chunk);
    this.inBytes += chunk.length;
  }

  /** The next event, or null when more bytes are needed. */
  next(): ParserEvent | null {
    while (this.events.length === 0) {
      if (!this.step()) return null;
    }
    return this.events.shift() ?? null;
  }

  /** While on, each CRLF-terminated line yields {kind:'line'} (AUTHENTICATE continuations, IDLE's DONE). */
  setLineMode(on: boolean): void {
    this.lineMode = on;
  }

  /** Bytes held: unconsumed input plus the command being assembled. */
  get buffered(): number {
    return this.inBytes + this.lineLen + this.cmdBytes + this.litHeld + this.tail.length;
  }

  // One bounded piece of work on the current input chunk; false when there is no input.
  private step(): boolean {
    if (this.inHead >= this.input.length) return false;
    const chunk = this.input[this.inHead]!;
    switch (this.state) {
      case S_LINE:
        this.stepLine(chunk);
        return true;
      case S_LITERAL:
        this.stepLiteral(chunk);
        return true;
      case S_DISCARD_LINE:
        this.stepDiscardLine(chunk);
        return true;
      case S_DISCARD_LITERAL:
        this.stepDiscardLiteral(chunk);
        return true;
      default:
        this.input = [];
        this.inHead = this.inPos = this.inBytes = 0;
        return false;
    }
  }

  private consume(chunk: Buffer, n: number): void {
    this.inPos += n;
    this.inBytes -= n;
    if (this.inPos >= chunk.length) {
      this.inHead++;
      this.inPos = 0;
      if (this.inHead >= this.input.length) {
        this.input = [];
        this.inHead = 0;
      } else if (this.inHead >= 64 && this.inHead * 2 >= this.input.length) {
        // A caller that pushes faster than it drains must not keep consumed chunks alive.
        this.input = this.input.slice(this.inHead);
        this.inHead = 0;
      }
    }
  }

  private emit(ev: ParserEvent): void {
    this.events.push(ev);
  }

  private emitError(tag: string, name: string | undefined, message: string, code: string | undefined, fatal = false): void {
    const ev: Extract<ParserEvent, { kind: 'error' }> = { kind: 'error', tag, message, fatal };
    if (code !== undefined) ev.code = code;
    if (name !== undefined) ev.name = name;
    this.emit(ev);
  }

  private resetCommand(): void {
    this.parts = [];
    this.cmdBytes = 0;
    this.literals = 0;
    this.litPieces = [];
    this.litHeld = 0;
  }

  // Longest the current line may grow: the line limit, and what is left of the command limit.
  private maxLine(): number {
    if (this.lineMode) return this.limits.maxLineLength;
    return Math.min(this.limits.maxLineLength, this.limits.maxCommandSize - this.cmdBytes);
  }

  private stepLine(chunk: Buffer): void {
    const start = this.inPos;
    const lf = chunk.indexOf(10, start);
    const max = this.maxLine();
    if (lf < 0) {
      const n = chunk.length - start;
      const rest = chunk.subarray(start);
      // +1: the line's CR may be the last byte of this chunk.
      if (this.lineLen + n > max + 1) this.lineTooLong(rest);
      else {
        this.pieces.push(rest);
        this.lineLen += n;
      }
      this.consume(chunk, n);
      return;
    }
    const n = lf - start;
    const piece = chunk.subarray(start, lf);
    this.consume(chunk, n + 1);
    let line: Buffer;
    if (this.pieces.length === 0) line = piece;
    else {
      this.pieces.push(piece);
      line = Buffer.concat(this.pieces, this.lineLen + n);
      this.pieces = [];
    }
    this.lineLen = 0;
    // The discarded-line path strips the CR itself: keep it here so "{6+}\r\r\n" is judged the same
    // whether the line arrived in one chunk or several (found by the fuzz test).
    const withCr = line;
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    if (line.length > max) {
      this.pieces = [withCr];
      this.lineLen = withCr.length;
      this.lineTooLong(EMPTY);
      this.endDiscardedLine();
      return;
    }
    if (this.lineMode) {
      this.emit({ kind: 'line', line: line.toString('utf8') });
      return;
    }
    this.endOfLine(line);
  }

  // Report an over-long line and skip the rest of it without buffering.
  private lineTooLong(rest: Buffer): void {
    if (this.lineMode) this.emitError('*', undefined, 'Line too long', 'TOOBIG');
    else {
      const first = this.parts[0];
      // The same number of head bytes however the line was chunked: at least max + 1 were seen.
      const { tag, name } = headInfo(Buffer.isBuffer(first) ? first.subarray(0, 1024) : this.lineHead(rest, Math.min(1024, this.maxLine() + 1)));
      // Named after the binding limit, so the text does not depend on where the chunks were cut.
      const overCommand = this.limits.maxCommandSize - this.cmdBytes < this.limits.maxLineLength;
      this.emitError(tag, name, overCommand ? 'Command too long' : 'Line too long', 'TOOBIG');
    }
    for (const p of this.pieces) this.keepTail(p);
    this.keepTail(rest);
    this.pieces = [];
    this.lineLen = 0;
    this.resetCommand();
    this.state = S_DISCARD_LINE;
  }

  // The first bytes of the current line (enough for tag and command name).
  private lineHead(rest: Buffer, size: number): Buffer {
    const acc: Buffer[] = [];
    let n = 0;
    for (const p of [...this.pieces, rest]) {
      if (n >= size) break;
      acc.push(p);
      n += p.length;
    }
    return Buffer.concat(acc).subarray(0, size);
  }

  private keepTail(b: Buffer): void {
    if (b.length === 0) return;
    if (b.length >= TAIL) this.tail = Buffer.from(b.subarray(b.length - TAIL));
    else {
      const t = Buffer.concat([this.tail, b]);
      this.tail = t.length > TAIL ? Buffer.from(t.subarray(t.length - TAIL)) : t;
    }
  }

  private stepDiscardLine(chunk: Buffer): void {
    const start = this.inPos;
    const lf = chunk.indexOf(10, start);
    const end = lf < 0 ? chunk.length : lf;
    this.keepTail(chunk.subarray(start, end));
    this.consume(chunk, end - start + (lf < 0 ? 0 : 1));
    if (lf >= 0) this.endDiscardedLine();
  }

  // A discarded line ended: a non-synchronizing literal announced at its end is skipped too.
  private endDiscardedLine(): void {
    let t = this.tail;
    this.tail = EMPTY;
    if (t.length > 0 && t[t.length - 1] === 0x0d) t = t.subarray(0, t.length - 1);
    const lit = this.lineMode ? null : literalHeader(t, false);
    if (lit && !lit.sync) this.skipLiteral(lit.size, '*', undefined);
    else this.state = S_LINE;
  }

  private skipLiteral(size: number, tag: string, name: string | undefined): void {
    if (!Number.isSafeInteger(size)) {
      // Bytes that cannot be counted cannot be skipped: the stream is lost.
      this.emitError(tag, name, 'Literal size out of range', 'TOOBIG', true);
      this.die();
      return;
    }
    this.discardRemaining = size;
    this.state = size > 0 ? S_DISCARD_LITERAL : S_DISCARD_LINE;
  }

  private die(): void {
    this.state = S_DEAD;
    this.input = [];
    this.inHead = this.inPos = this.inBytes = 0;
    this.pieces = [];
    this.lineLen = 0;
    this.tail = EMPTY;
    this.resetCommand();
  }

  private stepDiscardLiteral(chunk: Buffer): void {
    const take = Math.min(chunk.length - this.inPos, this.discardRemaining);
    this.consume(chunk, take);
    this.discardRemaining -= take;
    if (this.discardRemaining === 0) this.state = S_DISCARD_LINE;
  }

  private stepLiteral(chunk: Buffer): void {
    const take = Math.min(chunk.length - this.inPos, this.litRemaining);
    const piece = chunk.subarray(this.inPos, this.inPos + take);
    this.consume(chunk, take);
    this.litRemaining -= take;
    if (this.litRemaining === 0 && this.litPieces.length === 0) {
      // Copied so that the command does not pin the whole input chunk.
      const copy = Buffer.allocUnsafe(take);
      piece.copy(copy);
      this.parts.push({ literal: copy, binary: this.litBinary });
      this.cmdBytes += take;
      this.state = S_LINE;
      return;
    }
    this.litPieces.push(piece);
    this.litHeld += take;
    if (this.litRemaining === 0) {
      this.parts.push({ literal: Buffer.concat(this.litPieces, this.litHeld), binary: this.litBinary });
      this.cmdBytes += this.litHeld;
      this.litPieces = [];
      this.litHeld = 0;
      this.state = S_LINE;
    }
  }

  private endOfLine(line: Buffer): void {
    const lit = literalHeader(line, true);
    if (!lit) {
      // Stray empty lines between commands are ignored, as most servers do.
      if (this.parts.length === 0 && line.length === 0) return;
      this.parts.push(line);
      this.finishCommand();
      return;
    }
    const text = line.subarray(0, lit.start);
    this.parts.push(text);
    this.cmdBytes += text.length;
    this.literalAnnounced(lit);
  }

  private finishCommand(): void {
    const parts = this.parts;
    this.resetCommand();
    const r = new Reader(parts, this.limits.maxDepth, this.limits.maxItems);
    try {
      this.emit({ kind: 'command', command: parseCommand(r) });
    } catch (e) {
      if (e instanceof ProtocolSyntaxError) this.emitError(r.tag, r.name, e.message, e.code);
      else this.emitError(r.tag, r.name, 'Invalid command', undefined);
    }
  }

  private literalAnnounced(lit: LiteralHeader): void {
    const L = this.limits;
    let message: string | undefined;
    let code: string | undefined;
    let tag: string;
    let name: string | undefined;
    if (!(lit.size <= L.maxLiteralSize) || this.cmdBytes + lit.size > L.maxCommandSize) {
      message = lit.size <= L.maxLiteralSize ? 'Command too long' : 'Literal too big';
      code = 'TOOBIG';
    } else if (this.literals >= L.maxItems) {
      message = 'Too many literals in command';
      code = 'LIMIT';
    }
    if (message === undefined && this.literals < PREFIX_CHECKS) {
      // Check the command up to the literal, so a bad command gets BAD instead of "+".
      const r = new Reader([...this.parts, { pending: true, binary: lit.binary, size: lit.size }], L.maxDepth, L.maxItems);
      try {
        parseCommand(r);
        message = 'Unexpected literal';
      } catch (e) {
        if (!(e instanceof IncompleteInput)) {
          message = e instanceof ProtocolSyntaxError ? e.message : 'Invalid command';
          code = e instanceof ProtocolSyntaxError ? e.code : undefined;
        }
      }
      tag = r.tag;
      name = r.name;
    } else {
      ({ tag, name } = headInfo(this.parts[0] as Buffer));
    }
    if (message !== undefined) {
      this.resetCommand();
      if (lit.sync) {
        // The client waits for "+" and will not send the literal.
        this.emitError(tag, name, message, code);
        this.state = S_LINE;
      } else if (Number.isSafeInteger(lit.size)) {
        this.emitError(tag, name, message, code);
        this.skipLiteral(lit.size, tag, name);
      } else {
        this.skipLiteral(lit.size, tag, name);
      }
      return;
    }
    this.literals++;
    if (lit.sync) this.emit({ kind: 'continue', tag, name: name ?? '', size: lit.size });
    if (lit.size === 0) {
      this.parts.push({ literal: EMPTY, binary: lit.binary });
      this.state = S_LINE;
    } else {
      this.litRemaining = lit.size;
      this.litBinary = lit.binary;
      this.state = S_LITERAL;
    }
  }
}
