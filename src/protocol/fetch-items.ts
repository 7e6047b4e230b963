/**
 * FETCH data items (RFC 3501 6.4.5, RFC 9051 6.4.5) with BINARY (RFC 3516), CONDSTORE/QRESYNC
 * modifiers (RFC 7162), OBJECTID (RFC 8474) and SAVEDATE (RFC 8514). Macros are expanded here.
 */
import type { CommandBody, FetchItem, Partial as PartialRange, Section } from './ast.js';
import { FETCHNAME, type Reader } from './tokenizer.js';

type SimpleType = Extract<FetchItem, { type: 'UID' }>['type'];

const SIMPLE = new Set<string>([
  'UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'RFC822', 'RFC822.HEADER',
  'RFC822.TEXT', 'MODSEQ', 'EMAILID', 'THREADID', 'SAVEDATE',
]);

// Macro expansions (RFC 3501 6.4.5); fresh objects each time, callers may keep them.
function macro(name: string): FetchItem[] | null {
  switch (name) {
    case 'ALL':
      return [{ type: 'FLAGS' }, { type: 'INTERNALDATE' }, { type: 'RFC822.SIZE' }, { type: 'ENVELOPE' }];
    case 'FAST':
      return [{ type: 'FLAGS' }, { type: 'INTERNALDATE' }, { type: 'RFC822.SIZE' }];
    case 'FULL':
      return [{ type: 'FLAGS' }, { type: 'INTERNALDATE' }, { type: 'RFC822.SIZE' }, { type: 'ENVELOPE' }, { type: 'BODY' }];
    default:
      return null;
  }
}

const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const DOT = 0x2e;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

// section-part = nz-number *("." nz-number); leaves pos after the last number.
function sectionPart(r: Reader, part: number[]): boolean {
  // Returns true when a '.' followed by a non-digit remains (a section-text follows).
  for (;;) {
    part.push(r.digits('section part number', 4294967295, true));
    if (r.peek() !== DOT) return false;
    r.pos++;
    if (!isDigit(r.peek())) return true;
  }
}

const SECTION_TEXT: Record<string, Section['text']> = {
  HEADER: 'HEADER',
  'HEADER.FIELDS': 'HEADER.FIELDS',
  'HEADER.FIELDS.NOT': 'HEADER.FIELDS.NOT',
  TEXT: 'TEXT',
  MIME: 'MIME',
};

// Letters and dots of a section-text.
const SECTION_CHARS = new Uint8Array(256);
for (let c = 0x41; c <= 0x5a; c++) SECTION_CHARS[c] = SECTION_CHARS[c + 0x20] = 1;
SECTION_CHARS[DOT] = 1;

/** section = "[" [section-spec] "]" (pos at "["). */
function section(r: Reader): Section {
  r.expect(LBRACKET, '[');
  const sec: Section = { part: [] };
  if (r.peek() === RBRACKET) {
    r.pos++;
    return sec;
  }
  let wantText = true;
  if (isDigit(r.peek())) wantText = sectionPart(r, sec.part);
  if (wantText) {
    const word = r.takeUpper(SECTION_CHARS);
    const text = SECTION_TEXT[word];
    if (text === undefined || (text === 'MIME' && sec.part.length === 0)) {
      r.fail(`Invalid section ${word.length > 30 ? word.slice(0, 30) : word}`);
    }
    sec.text = text;
    if (text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT') {
      r.sp('header field list');
      sec.fields = r.list('header field list', () => r.astring('header field name'));
    }
  }
  if (r.peek() !== RBRACKET) r.fail('Invalid section: expected ]');
  r.pos++;
  return sec;
}

/** section-binary = "[" [section-part] "]". */
function sectionBinary(r: Reader): number[] {
  r.expect(LBRACKET, '[');
  const part: number[] = [];
  if (r.peek() !== RBRACKET) {
    if (!isDigit(r.peek()) || sectionPart(r, part)) r.fail('Invalid binary section');
  }
  if (r.peek() !== RBRACKET) r.fail('Invalid binary section: expected ]');
  r.pos++;
  return part;
}

/** partial = "<" number "." nz-number ">", if present. */
function partial(r: Reader): PartialRange | undefined {
  if (r.peek() !== 0x3c /* < */) return undefined;
  r.pos++;
  const offset = r.digits('partial offset', Number.MAX_SAFE_INTEGER);
  r.expect(DOT, '. in partial');
  const length = r.digits('partial length', Number.MAX_SAFE_INTEGER, true);
  r.expect(0x3e /* > */, '> closing partial');
  return { offset, length };
}

/** One fetch-att whose name has been read. */
function fetchAtt(r: Reader, name: string): FetchItem {
  if (SIMPLE.has(name)) return { type: name as SimpleType };
  switch (name) {
    case 'BODY':
    case 'BODY.PEEK': {
      if (r.peek() !== LBRACKET) {
        if (name === 'BODY') return { type: 'BODY' };
        r.fail('BODY.PEEK needs a section');
      }
      const item: Extract<FetchItem, { type: 'BODY[]' }> = { type: 'BODY[]', peek: name === 'BODY.PEEK', section: section(r) };
      const p = partial(r);
      if (p) item.partial = p;
      return item;
    }
    case 'BINARY':
    case 'BINARY.PEEK': {
      if (r.peek() !== LBRACKET) r.fail(`${name} needs a section`);
      const item: Extract<FetchItem, { type: 'BINARY[]' }> = { type: 'BINARY[]', peek: name === 'BINARY.PEEK', part: sectionBinary(r) };
      const p = partial(r);
      if (p) item.partial = p;
      return item;
    }
    case 'BINARY.SIZE':
      if (r.peek() !== LBRACKET) r.fail('BINARY.SIZE needs a section');
      return { type: 'BINARY.SIZE', part: sectionBinary(r) };
    default:
      return r.fail(`Unknown fetch item ${name.length > 30 ? name.slice(0, 30) : name}`);
  }
}

function attName(r: Reader): string {
  const name = r.takeUpper(FETCHNAME);
  if (name.length === 0) r.fail(r.atEnd() ? 'Missing argument: fetch items' : 'Expected fetch item');
  r.count();
  return name;
}

/** The fetch items: a macro, one item, or a parenthesised list. */
export function parseFetchAtts(r: Reader): FetchItem[] {
  if (r.peek() === 0x28) return r.list('fetch items', () => fetchAtt(r, attName(r)));
  const name = attName(r);
  return macro(name) ?? [fetchAtt(r, name)];
}

/** FETCH sequence-set items [modifiers] (after the command name). */
export function parseFetch(r: Reader, uid: boolean): CommandBody {
  r.sp('sequence set');
  const sequence = r.sequenceSet();
  r.sp('fetch items');
  const items = parseFetchAtts(r);
  const cmd: Extract<CommandBody, { name: 'FETCH' }> = { name: 'FETCH', uid, sequence, items, vanished: false };
  if (r.optSp()) {
    // fetch-modifiers (RFC 4466): CHANGEDSINCE n, VANISHED (RFC 7162 3.1.4, 3.2.6).
    r.list('fetch modifiers', () => {
      const m = r.keyword('fetch modifier');
      if (m === 'CHANGEDSINCE') {
        if (cmd.changedSince !== undefined) r.fail('CHANGEDSINCE given twice');
        r.sp('mod-sequence');
        cmd.changedSince = r.number64('mod-sequence');
      } else if (m === 'VANISHED') {
        cmd.vanished = true;
      } else {
        r.fail(`Unknown fetch modifier ${m.slice(0, 30)}`);
      }
    });
    if (cmd.vanished && !uid) r.fail('VANISHED is only allowed with UID FETCH');
    if (cmd.vanished && cmd.changedSince === undefined) r.fail('VANISHED requires CHANGEDSINCE');
  }
  return cmd;
}
