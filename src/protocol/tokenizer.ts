/**
 * Token reader over one framed command: text segments alternating with literals. The framer
 * (parser.ts) has already split lines and read literal bytes; this reads atoms, strings, numbers
 * and lists out of them, byte by byte on Buffers, and throws ProtocolSyntaxError on bad input.
 */
import { ProtocolSyntaxError, parseSequenceBytes } from './sequence.js';
import type { SequenceSet } from './ast.js';

/** A literal's bytes; `binary` for `~{n}` (RFC 3516 literal8). */
export interface LiteralPart {
  literal: Buffer;
  binary: boolean;
}

/** A literal announced but not yet received: the reader stops here when checking a command prefix. */
export interface PendingLiteral {
  pending: true;
  binary: boolean;
  size: number;
}

/** A framed command: text, literal, text, literal, ..., text (or a PendingLiteral last). */
export type Part = Buffer | LiteralPart | PendingLiteral;

/** Thrown when the reader reaches a pending literal where a string may stand: the prefix is valid so far. */
export class IncompleteInput extends Error {}

// One shared instance: it is thrown on every literal header, and building an Error costs a stack trace.
const INCOMPLETE = new IncompleteInput('incomplete command');

/** peek() result at the end of the command. */
export const EOL = -1;
/** peek() result where a literal stands. */
export const LIT = -2;

const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LPAREN = 0x28;
const RPAREN = 0x29;

// Character classes of RFC 3501 9 / RFC 9051 9, one table per class.
const ATOM = new Uint8Array(256);
const ASTRING = new Uint8Array(256);
const TAG = new Uint8Array(256);
const LISTCHAR = new Uint8Array(256);
const SEQCHAR = new Uint8Array(256);
/** Bytes of a FETCH attribute name: stops at '[' and '<'. */
export const FETCHNAME = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) {
  // atom-specials: ( ) { SP CTL % * " \ ]
  const special = c === 0x28 || c === 0x29 || c === 0x7b || c === 0x25 || c === 0x2a || c === 0x22 || c === 0x5c || c === 0x5d;
  if (!special) ATOM[c] = 1;
  if (!special || c === 0x5d) {
    ASTRING[c] = 1;
    if (c !== 0x2b) TAG[c] = 1;
  }
  if (!special || c === 0x25 || c === 0x2a || c === 0x5d) LISTCHAR[c] = 1;
  if (!special && c !== 0x5b && c !== 0x3c) FETCHNAME[c] = 1;
}
// 8-bit bytes are not CHAR, but clients send unquoted UTF-8 mailbox names and passwords: accept them there.
for (let c = 0x80; c < 0x100; c++) {
  ASTRING[c] = 1;
  LISTCHAR[c] = 1;
}
for (const ch of '0123456789:,*$') SEQCHAR[ch.charCodeAt(0)] = 1;

// Short tokens: a plain loop beats Buffer#toString, whose per-call overhead dominates for a few bytes.
const SHORT = 32;

/** Bytes [s, e) as a string, read as UTF-8. */
function text(buf: Buffer, s: number, e: number): string {
  if (e - s > SHORT) return buf.toString('utf8', s, e);
  let out = '';
  for (let i = s; i < e; i++) {
    const c = buf[i]!;
    if (c >= 0x80) return buf.toString('utf8', s, e);
    out += String.fromCharCode(c);
  }
  return out;
}

/** ASCII bytes [s, e) as a string, upper-cased. */
function upper(buf: Buffer, s: number, e: number): string {
  if (e - s > SHORT) return buf.toString('latin1', s, e).toUpperCase();
  let out = '';
  for (let i = s; i < e; i++) {
    const c = buf[i]!;
    out += String.fromCharCode(c >= 0x61 && c <= 0x7a ? c - 0x20 : c);
  }
  return out;
}

/** Reads tokens from a framed command; records tag and command name as soon as they are known. */
export class Reader {
  /** Current text segment. */
  buf: Buffer;
  /** Position in `buf`. */
  pos = 0;
  /** Command tag, '*' until read. */
  tag = '*';
  /** Command name (AST name, upper case) once read. */
  name: string | undefined;
  private idx = 0;
  private items = 0;
  private depth = 0;
  /** Escapes in the quoted string scanned last. */
  private escapes = 0;

  constructor(
    private readonly parts: readonly Part[],
    private readonly maxDepth: number,
    private readonly maxItems: number,
  ) {
    this.buf = parts[0] as Buffer;
  }

  /** Throw a syntax error. */
  fail(message: string, code?: string): never {
    throw new ProtocolSyntaxError(message, code);
  }

  /** Next byte, EOL at the end of the command, LIT where a literal stands. */
  peek(): number {
    if (this.pos < this.buf.length) return this.buf[this.pos]!;
    return this.idx + 1 < this.parts.length ? LIT : EOL;
  }

  /** True at the end of the command. */
  atEnd(): boolean {
    return this.pos >= this.buf.length && this.idx + 1 >= this.parts.length;
  }

  /** Count one item against maxItems. */
  count(): void {
    if (++this.items > this.maxItems) this.fail('Too many items in command', 'LIMIT');
  }

  /** Enter one nesting level (list or NOT/OR operand) against maxDepth. */
  enter(): void {
    if (++this.depth > this.maxDepth) this.fail('Nesting too deep', 'LIMIT');
  }

  /** Leave one nesting level. */
  leave(): void {
    this.depth--;
  }

  /** Error text for "something else stands where `what` was expected". */
  private unexpected(what: string): never {
    const c = this.peek();
    if (c === EOL) this.fail(`Missing argument: ${what}`);
    if (c === LIT) this.fail(`Unexpected literal, expected ${what}`);
    this.fail(`Expected ${what}`);
  }

  /** Consume one space before `what`. */
  sp(what: string): void {
    if (this.pos < this.buf.length && this.buf[this.pos] === SP) {
      this.pos++;
      return;
    }
    if (this.peek() === EOL) this.fail(`Missing argument: ${what}`);
    this.fail(`Expected space before ${what}`);
  }

  /** Consume a space if one follows; true when it did. */
  optSp(): boolean {
    if (this.pos < this.buf.length && this.buf[this.pos] === SP) {
      this.pos++;
      return true;
    }
    return false;
  }

  /** Require the end of the command; `command` names it for the error text. */
  end(command: string): void {
    if (!this.atEnd()) {
      if (this.peek() === SP && this.pos + 1 >= this.buf.length && this.idx + 1 >= this.parts.length) {
        this.fail(`Unexpected trailing space in ${command}`);
      }
      this.fail(`Unexpected extra arguments to ${command}`);
    }
  }

  /** Consume the byte `c` or fail naming `what`. */
  expect(c: number, what: string): void {
    if (this.pos < this.buf.length && this.buf[this.pos] === c) {
      this.pos++;
      return;
    }
    this.unexpected(what);
  }

  /** Open a parenthesised list. */
  open(what: string): void {
    this.expect(LPAREN, what);
    this.enter();
  }

  /** Close a parenthesised list. */
  close(what: string): void {
    this.expect(RPAREN, what);
    this.leave();
  }

  /** Consume '(' if it follows (entering a level); true when it did. */
  tryOpen(): boolean {
    if (this.pos < this.buf.length && this.buf[this.pos] === LPAREN) {
      this.pos++;
      this.enter();
      return true;
    }
    return false;
  }

  /** Consume ')' if it follows (leaving a level); true when it did. */
  tryClose(): boolean {
    if (this.pos < this.buf.length && this.buf[this.pos] === RPAREN) {
      this.pos++;
      this.leave();
      return true;
    }
    return false;
  }

  /** Scan bytes of a class; returns the end position (pos is not moved). */
  private scan(table: Uint8Array): number {
    const buf = this.buf;
    let i = this.pos;
    while (i < buf.length && table[buf[i]!] === 1) i++;
    return i;
  }

  /** An atom (ASCII, as sent). */
  atom(what: string): string {
    const end = this.scan(ATOM);
    if (end === this.pos) this.unexpected(what);
    this.count();
    const s = text(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  /** An atom, upper-cased: command names and keywords. */
  keyword(what: string): string {
    const end = this.scan(ATOM);
    if (end === this.pos) this.unexpected(what);
    this.count();
    const s = upper(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  /** Consume `word` (upper case) if the next atom is exactly it, case-insensitively. */
  tryKeyword(word: string): boolean {
    const end = this.scan(ATOM);
    if (end - this.pos !== word.length) return false;
    for (let i = 0; i < word.length; i++) {
      let c = this.buf[this.pos + i]!;
      if (c >= 0x61 && c <= 0x7a) c -= 0x20;
      if (c !== word.charCodeAt(i)) return false;
    }
    this.count();
    this.pos = end;
    return true;
  }

  /** ASCII bytes of the given class at the current position (possibly empty), consumed, upper-cased. */
  takeUpper(table: Uint8Array): string {
    const end = this.scan(table);
    const s = upper(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  /** The command tag: 1*<ASTRING-CHAR except "+">. */
  readTag(): string {
    const end = this.scan(TAG);
    if (end === this.pos) this.fail(this.atEnd() ? 'Empty command' : 'Invalid tag');
    const next = end < this.buf.length ? this.buf[end]! : -1;
    if (next !== SP && next !== -1) this.fail('Invalid tag');
    this.tag = text(this.buf, this.pos, end);
    this.pos = end;
    this.count();
    return this.tag;
  }

  // Scan the quoted string at pos; returns the index of its closing quote, counting escapes.
  private scanQuoted(): number {
    const buf = this.buf;
    let i = this.pos + 1;
    let escapes = 0;
    for (; i < buf.length; i++) {
      const c = buf[i]!;
      if (c === DQUOTE) break;
      if (c === BACKSLASH) {
        const d = buf[++i];
        if (d !== DQUOTE && d !== BACKSLASH) this.fail(d === undefined ? 'Unterminated quoted string' : 'Invalid escape in quoted string');
        escapes++;
      } else if (c === 0 || c === 0x0d || c === 0x0a) {
        this.fail('Invalid character in quoted string');
      }
    }
    if (i >= buf.length) this.fail('Unterminated quoted string');
    this.escapes = escapes;
    this.count();
    return i;
  }

  // The content of a scanned quoted string with its escapes removed.
  private unescape(start: number, end: number): Buffer {
    const buf = this.buf;
    const out = Buffer.allocUnsafe(end - start - this.escapes);
    let o = 0;
    for (let k = start; k < end; k++) {
      if (buf[k] === BACKSLASH) k++;
      out[o++] = buf[k]!;
    }
    return out;
  }

  /** A quoted string's bytes, unescaped; pos is at the opening quote. */
  private quoted(): Buffer {
    const start = this.pos + 1;
    const end = this.scanQuoted();
    this.pos = end + 1;
    return this.escapes === 0 ? this.buf.subarray(start, end) : this.unescape(start, end);
  }

  /** The literal standing here; stops with IncompleteInput at a pending literal. */
  private literal(what: string, allowBinary: boolean): Buffer {
    const part = this.parts[this.idx + 1]!;
    if (Buffer.isBuffer(part)) this.fail(`Expected ${what}`);
    if (part.binary && !allowBinary) this.fail(`Binary literal not allowed for ${what}`);
    if ('pending' in part) throw INCOMPLETE;
    this.count();
    this.idx += 2;
    this.buf = this.parts[this.idx] as Buffer;
    this.pos = 0;
    return part.literal;
  }

  /** True when the literal standing here is binary (`~{n}`); false elsewhere. */
  literalIsBinary(): boolean {
    if (this.peek() !== LIT) return false;
    const part = this.parts[this.idx + 1]!;
    return !Buffer.isBuffer(part) && part.binary;
  }

  /** A string (quoted or literal) as bytes. */
  stringBytes(what: string, allowBinary = false): Buffer {
    const c = this.peek();
    if (c === DQUOTE) return this.quoted();
    if (c === LIT) return this.literal(what, allowBinary);
    if (c === 0x7b /* { */ || c === 0x7e /* ~ */) this.fail(`Literal must end the line (${what})`);
    this.unexpected(what);
  }

  /** astring (atom, quoted or literal) as bytes. */
  astringBytes(what: string, allowBinary = false): Buffer {
    const c = this.peek();
    if (c === DQUOTE || c === LIT || c === 0x7b) return this.stringBytes(what, allowBinary);
    const end = this.scan(ASTRING);
    if (end === this.pos) this.unexpected(what);
    if (allowBinary && c === 0x7e && this.buf[this.pos + 1] === 0x7b) this.fail(`Literal must end the line (${what})`);
    this.count();
    const b = this.buf.subarray(this.pos, end);
    this.pos = end;
    return b;
  }

  /** astring decoded as UTF-8. */
  astring(what: string): string {
    const c = this.peek();
    if (c === DQUOTE) return this.string(what);
    if (c !== LIT && c !== 0x7b) {
      const end = this.scan(ASTRING);
      if (end > this.pos) {
        this.count();
        const s = text(this.buf, this.pos, end);
        this.pos = end;
        return s;
      }
    }
    return this.astringBytes(what).toString('utf8');
  }

  /** string (quoted or literal) decoded as UTF-8. */
  string(what: string): string {
    if (this.peek() === DQUOTE) {
      const start = this.pos + 1;
      const end = this.scanQuoted();
      this.pos = end + 1;
      return this.escapes === 0 ? text(this.buf, start, end) : this.unescape(start, end).toString('utf8');
    }
    return this.stringBytes(what).toString('utf8');
  }

  /** nstring: string or NIL (null). */
  nstring(what: string): string | null {
    if (this.tryKeyword('NIL')) return null;
    return this.string(what);
  }

  /** mailbox = "INBOX" / astring, in wire form. */
  mailbox(what = 'mailbox name'): string {
    return this.astring(what);
  }

  /** list-mailbox = 1*list-char / string (LIST/LSUB patterns with % and *). */
  listMailbox(what: string): string {
    const c = this.peek();
    if (c === DQUOTE || c === LIT || c === 0x7b) return this.string(what);
    const end = this.scan(LISTCHAR);
    if (end === this.pos) this.unexpected(what);
    this.count();
    const s = text(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  /** Digits as a number (at most `max`) that must end the token. */
  number(what: string, max = 4294967295, nonZero = false): number {
    const n = this.digits(what, max, nonZero);
    if (this.pos < this.buf.length && ATOM[this.buf[this.pos]!] === 1) this.fail(`Invalid number: ${what}`);
    return n;
  }

  /** Digits as a number (at most `max`), whatever follows them (section parts, partials). */
  digits(what: string, max = 4294967295, nonZero = false): number {
    const buf = this.buf;
    let i = this.pos;
    let n = 0;
    while (i < buf.length) {
      const c = buf[i]!;
      if (c < 0x30 || c > 0x39) break;
      n = n * 10 + (c - 0x30);
      if (n > max) this.fail(`Number out of range: ${what}`);
      i++;
    }
    if (i === this.pos) this.unexpected(what);
    if (nonZero && n === 0) this.fail(`Number must not be zero: ${what}`);
    this.count();
    this.pos = i;
    return n;
  }

  /** nz-number (1 .. 2^32-1). */
  nzNumber(what: string): number {
    return this.number(what, 4294967295, true);
  }

  /** A 63-bit unsigned number (mod-sequence-valzer) as a bigint. */
  number64(what: string): bigint {
    const end = this.scan(ATOM);
    const s = this.buf.toString('latin1', this.pos, end);
    if (s.length === 0) this.unexpected(what);
    if (!/^[0-9]{1,19}$/.test(s)) this.fail(`Invalid number: ${what}`);
    const v = BigInt(s);
    if (v > 9223372036854775807n) this.fail(`Number out of range: ${what}`);
    this.count();
    this.pos = end;
    return v;
  }

  /** A sequence set, or `$`. */
  sequenceSet(what = 'sequence set'): SequenceSet {
    const end = this.scan(SEQCHAR);
    if (end === this.pos) this.unexpected(what);
    if (end < this.buf.length && ATOM[this.buf[end]!] === 1) this.fail(`Invalid ${what}`);
    const start = this.pos;
    this.count();
    this.pos = end;
    try {
      return parseSequenceBytes(this.buf, start, end);
    } catch (e) {
      if (e instanceof ProtocolSyntaxError) this.fail(`${e.message} (${what})`);
      throw e;
    }
  }

  /** A flag: `\Name` or a keyword atom (kept as sent). */
  flag(what = 'flag'): string {
    if (this.peek() === BACKSLASH) {
      this.pos++;
      if (this.peek() === 0x2a /* * */) this.fail('\\* is not a valid flag here');
      return `\\${this.atom(what)}`;
    }
    return this.atom(what);
  }

  /** flag-list = "(" [flag *(SP flag)] ")". */
  flagList(what = 'flag list'): string[] {
    this.open(what);
    const flags: string[] = [];
    if (this.tryClose()) return flags;
    for (;;) {
      flags.push(this.flag());
      if (this.tryClose()) return flags;
      this.sp('flag');
    }
  }

  /** Parenthesised list of items read by `item`, separated by single spaces; `allowEmpty` permits "()". */
  list<T>(what: string, item: () => T, allowEmpty = false): T[] {
    this.open(what);
    const out: T[] = [];
    if (this.tryClose()) {
      if (!allowEmpty) this.fail(`Empty ${what}`);
      return out;
    }
    for (;;) {
      out.push(item());
      if (this.tryClose()) return out;
      if (this.peek() === EOL) this.fail(`Missing ) closing ${what}`);
      this.sp(what);
    }
  }
}
