/**
 * Fuzzing the streaming command parser: valid commands mutated (byte flips, truncation, inserted
 * literal headers, huge literal sizes, deep parentheses) and random token soup, fed whole and in
 * random chunks. The parser must only ever yield well-formed events, stop (bounded next() calls),
 * keep `buffered` within its limits, and give the same events however the bytes were chunked.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CommandParser } from '../../src/protocol/parser.js';
import type { ParserEvent, ParserLimits } from '../../src/protocol/ast.js';

const CORPUS: string[] = [
  'a1 CAPABILITY\r\n',
  'a2 LOGIN joe "se\\"cret"\r\n',
  'a3 LOGIN {3}\r\njoe {6+}\r\nsecret\r\n',
  'a4 AUTHENTICATE PLAIN AGpvZQBzZWNyZXQ=\r\n',
  'a5 AUTHENTICATE PLAIN\r\nAGpvZQBzZWNyZXQ=\r\n',
  'a6 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211 (1:3 41,43)))\r\n',
  'a7 EXAMINE "Sent Items" (CONDSTORE)\r\n',
  'a8 CREATE Drafts (USE (\\Drafts))\r\n',
  'a9 LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" "Lists/%") RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n',
  'b1 STATUS INBOX (MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ APPENDLIMIT)\r\n',
  'b2 APPEND INBOX (\\Seen $Junk) " 7-Feb-1994 21:52:25 -0800" {12}\r\nHello world!\r\n',
  'b3 APPEND INBOX {3+}\r\none ~{4+}\r\nt\0wo UTF8 (~{2}\r\nhi)\r\n',
  'b4 UID FETCH 1:* (FLAGS UID BODY.PEEK[HEADER.FIELDS (From Subject {4}\r\nDate)]<0.512> BINARY[1.2] MODSEQ) (CHANGEDSINCE 5 VANISHED)\r\n',
  'b5 FETCH 2:4,7 FULL\r\n',
  'b6 UID SEARCH RETURN (MIN MAX COUNT SAVE) CHARSET UTF-8 OR FROM "a" (SINCE 1-Feb-1994 NOT SEEN) MODSEQ "/flags/\\\\seen" all 3\r\n',
  'b7 SEARCH CHARSET ISO-8859-1 TEXT ~{5+}\r\nab\0cd HEADER X-Foo "" LARGER 100 OLDER 60 EMAILID M1\r\n',
  'b8 UID STORE 1:5 (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Deleted)\r\n',
  'b9 UID MOVE $ Trash\r\n',
  'c1 UID EXPUNGE 1:3\r\n',
  'c2 UID SORT RETURN (ALL) (REVERSE DATE SUBJECT) UTF-8 ALL\r\n',
  'c3 THREAD REFERENCES UTF-8 SINCE 5-MAR-2000 (OR SEEN FLAGGED)\r\n',
  'c4 SETQUOTA "" (STORAGE 512)\r\n',
  'c5 ID ("name" "x" "version" NIL)\r\n',
  'c6 IDLE\r\nDONE\r\n',
  'c7 ENABLE QRESYNC CONDSTORE\r\n',
  'c8 COMPRESS DEFLATE\r\n',
  'c9 GETQUOTAROOT INBOX\r\n',
  'd1 RENAME {3}\r\nold new\r\n',
  'd2 NOOP\r\n',
  'd3 LOGOUT\r\n',
];

const TOKENS = [
  'a ', 'b1 ', 'UID ', 'FETCH ', 'SEARCH ', 'APPEND ', 'LOGIN ', 'SELECT ', 'LIST ', 'STORE ', 'INBOX', ' ', ' ', '(', ')', '"',
  '\\', '\\"', '\r\n', '\n', '\r', '{3}\r\n', '{0+}\r\n', '~{2+}\r\n', '{2}\r\n', '{99999999999999999999+}\r\n', 'abc', 'x', '1:*', '$',
  'BODY[', ']', '<0.5>', 'HEADER.FIELDS', 'NOT ', 'OR ', 'SEEN', 'CHARSET ', '1-Feb-1994', '\0', '\xff', 'NIL', '+FLAGS ', '*', '%',
];

const SMALL: ParserLimits = { maxLineLength: 200, maxLiteralSize: 300, maxDepth: 6, maxItems: 60, maxCommandSize: 1200 };

type Mutation = [op: number, at: number, arg: number];

function mutate(input: Buffer, muts: Mutation[]): Buffer {
  let b = input;
  for (const [op, at, arg] of muts) {
    const pos = b.length === 0 ? 0 : at % (b.length + 1);
    const ins = (s: Buffer | string): Buffer => Buffer.concat([b.subarray(0, pos), typeof s === 'string' ? Buffer.from(s, 'latin1') : s, b.subarray(pos)]);
    switch (op) {
      case 0: // byte flip
        if (b.length > 0) {
          b = Buffer.from(b);
          b[pos % b.length] = arg & 0xff;
        }
        break;
      case 1: // truncation
        b = b.subarray(0, pos);
        break;
      case 2: // inserted literal header of any kind, with some bytes after it
        b = ins(`${['', '~'][arg & 1]}{${arg % 40}${['', '+'][(arg >> 1) & 1]}}\r\n${'z'.repeat(arg % 50)}`);
        break;
      case 3: // huge literal sizes
        b = ins(['{2147483648+}\r\n', '{2147483648}\r\n', '{99999999999999999999+}\r\n', '~{4294967296+}\r\n', `{${1000 + arg}+}\r\n`][arg % 5]!);
        break;
      case 4: // deep parentheses
        b = ins((arg & 1 ? '(' : 'NOT ').repeat(arg % 200));
        break;
      case 5: // deletion
        b = Buffer.concat([b.subarray(0, pos), b.subarray(pos + (arg % 16))]);
        break;
      case 6: // line breaks, spaces and quotes
        b = ins(['\r\n', '\n', ' ', '"', '\r', ')'][arg % 6]!);
        break;
      default: // long line
        b = ins('x'.repeat(arg % 600));
    }
  }
  return b;
}

function split(b: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (b.length === 0 ? 0 : c % b.length)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    if (p > last) out.push(b.subarray(last, p));
    last = p;
  }
  out.push(b.subarray(last));
  return out;
}

// Plain checks in the hot loop: vitest's expect costs more than the parser itself here.
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`fuzz check failed: ${what}`);
}

function checkEvent(e: ParserEvent): void {
  switch (e.kind) {
    case 'command':
      check(typeof e.command.tag === 'string' && e.command.tag.length > 0, 'command tag');
      check(typeof e.command.name === 'string', 'command name');
      break;
    case 'continue':
      check(Number.isSafeInteger(e.size) && e.size >= 0, 'continue size');
      check(typeof e.tag === 'string' && typeof e.name === 'string', 'continue tag');
      break;
    case 'error':
      check(typeof e.tag === 'string' && e.tag.length > 0, 'error tag');
      check(typeof e.message === 'string' && e.message.length > 0, 'error message');
      check(typeof e.fatal === 'boolean', 'error fatal');
      break;
    case 'line':
      check(typeof e.line === 'string', 'line');
      break;
    default:
      throw new Error(`unexpected event ${JSON.stringify(e)}`);
  }
}

/** What the fuzzer has produced, so the tests can show they reached every path. */
const seen = new Map<string, number>();
function tally(e: ParserEvent): void {
  const key = e.kind === 'error' ? `error:${e.code ?? '-'}${e.fatal ? ':fatal' : ''}` : e.kind;
  seen.set(key, (seen.get(key) ?? 0) + 1);
}

const replacer = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? `${v}n` : v);

/** Feed chunks, drain after each; check events, termination and memory; return the events serialised. */
function exercise(chunks: Buffer[], limits: ParserLimits | undefined): string {
  const p = new CommandParser(limits);
  const bound = limits ? limits.maxLineLength + (limits.maxCommandSize ?? 0) + 64 : Infinity;
  const out: string[] = [];
  let pushed = 0;
  let calls = 0;
  let dead = false;
  for (const c of chunks) {
    p.push(c);
    pushed += c.length;
    for (;;) {
      const e = p.next();
      calls++;
      // At most a few events per byte: anything more is a loop.
      check(calls <= 3 * pushed + 2 * chunks.length + 4, 'bounded next() calls');
      if (e === null) break;
      check(!dead, 'no event after a fatal error');
      checkEvent(e);
      tally(e);
      if (e.kind === 'error' && e.fatal) dead = true;
      // Line mode as a server would drive it: after AUTHENTICATE/IDLE, for one line.
      if (e.kind === 'command' && (e.command.name === 'AUTHENTICATE' || e.command.name === 'IDLE')) p.setLineMode(true);
      if (e.kind === 'line') p.setLineMode(false);
      out.push(JSON.stringify(e, replacer));
    }
    check(p.buffered <= Math.min(pushed, bound), `buffered ${p.buffered} within ${Math.min(pushed, bound)}`);
  }
  return out.join('\n');
}

const mutationArb = fc.tuple(fc.nat(7), fc.nat(), fc.nat(1023));

describe('parser fuzz', () => {
  it('mutated command streams', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(CORPUS.length - 1), { minLength: 1, maxLength: 4 }),
        fc.array(mutationArb, { maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.boolean(),
        (picks, muts, cuts, small) => {
          const input = mutate(Buffer.from(picks.map((i) => CORPUS[i]).join(''), 'latin1'), muts);
          const limits = small ? SMALL : undefined;
          const whole = exercise([input], limits);
          expect(exercise(split(input, cuts), limits)).toBe(whole);
        },
      ),
      { numRuns: 120000 },
    );
    // The mutations reached the interesting paths, not only syntax errors.
    for (const k of ['command', 'continue', 'line', 'error:-', 'error:TOOBIG', 'error:TOOBIG:fatal', 'error:LIMIT', 'error:BADCHARSET']) {
      expect(seen.get(k) ?? 0, k).toBeGreaterThan(10);
    }
  });

  it('random token streams', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(TOKENS.length - 1), { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), (toks, cuts, small) => {
        const input = Buffer.from(toks.map((i) => TOKENS[i]).join(''), 'latin1');
        const limits = small ? SMALL : undefined;
        const whole = exercise([input], limits);
        expect(exercise(split(input, cuts), limits)).toBe(whole);
      }),
      { numRuns: 60000 },
    );
  });

  it('random bytes, byte by byte', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const input = Buffer.from(bytes);
        const chunks: Buffer[] = [];
        for (let i = 0; i < input.length; i++) chunks.push(input.subarray(i, i + 1));
        expect(exercise(chunks, SMALL)).toBe(exercise([input], SMALL));
      }),
      { numRuns: 20000 },
    );
  });
});
