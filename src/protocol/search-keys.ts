/**
 * SEARCH criteria (RFC 3501 6.4.4, RFC 9051 6.4.4) with the keys of CONDSTORE (MODSEQ, RFC 7162),
 * WITHIN (OLDER/YOUNGER, RFC 5032), SAVEDATE (RFC 8514), OBJECTID (RFC 8474) and SEARCHRES `$`
 * (RFC 5182); ESEARCH RETURN options (RFC 4731); SORT (RFC 5256, RFC 5267, RFC 5957) and THREAD.
 */
import iconv from 'iconv-lite';
import type { CommandBody, SearchKey, SearchReturn, SortKey } from './ast.js';
import { EOL, type Reader } from './tokenizer.js';

type Decoder = (bytes: Buffer) => string;

const utf8: Decoder = (b) => b.toString('utf8');

/** Decoder for a CHARSET argument; unknown charsets are a BAD with code BADCHARSET. */
export function charsetDecoder(r: Reader, charset: string): Decoder {
  const cs = charset.toUpperCase();
  // US-ASCII text is UTF-8 too; 8-bit bytes under US-ASCII are read as UTF-8 rather than refused.
  if (cs === 'UTF-8' || cs === 'US-ASCII' || cs === 'UTF8' || cs === 'ASCII') return utf8;
  if (!iconv.encodingExists(cs)) r.fail(`Unsupported charset ${charset}`, 'BADCHARSET');
  return (b) => iconv.decode(b, cs);
}

const MONTHS: Record<string, number> = {
  JAN: 1, FEB: 2, MAR: 3, APR: 4, MAY: 5, JUN: 6, JUL: 7, AUG: 8, SEP: 9, OCT: 10, NOV: 11, DEC: 12,
};

/** Days in a month of the proleptic Gregorian calendar. */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Month number (1..12) of an IMAP month name, case-insensitive; 0 when invalid. */
export function monthNumber(name: string): number {
  return MONTHS[name.toUpperCase()] ?? 0;
}

const DATE_RE = /^([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})$/;

/** "1-Feb-1994" → "1994-02-01"; null when invalid. */
export function parseSearchDate(text: string): string | null {
  const m = DATE_RE.exec(text);
  if (!m) return null;
  const day = Number(m[1]);
  const month = monthNumber(m[2]!);
  const year = Number(m[3]);
  if (month === 0 || day < 1 || day > daysInMonth(year, month)) return null;
  return `${m[3]}-${month < 10 ? '0' : ''}${month}-${day < 10 ? '0' : ''}${day}`;
}

// Date bytes: digits, letters and '-', as an atom or inside quotes.
function readDate(r: Reader, what: string): string {
  let text: string;
  if (r.peek() === 0x22) text = r.stringBytes(what).toString('latin1');
  else text = r.atom(what);
  const iso = parseSearchDate(text);
  if (iso === null) r.fail(`Invalid date: ${text.length > 30 ? text.slice(0, 30) : text}`);
  return iso;
}

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  RECENT: ['\\Recent', true],
  OLD: ['\\Recent', false],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};

const DATE_KEYS: Record<string, ['internal' | 'sent' | 'saved', 'before' | 'on' | 'since']> = {
  BEFORE: ['internal', 'before'],
  ON: ['internal', 'on'],
  SINCE: ['internal', 'since'],
  SENTBEFORE: ['sent', 'before'],
  SENTON: ['sent', 'on'],
  SENTSINCE: ['sent', 'since'],
  SAVEDBEFORE: ['saved', 'before'],
  SAVEDON: ['saved', 'on'],
  SAVEDSINCE: ['saved', 'since'],
};

const HEADER_KEYS: Record<string, string> = { BCC: 'bcc', CC: 'cc', FROM: 'from', SUBJECT: 'subject', TO: 'to' };

const OBJECTID_RE = /^[A-Za-z0-9_-]{1,255}$/;

/** How each search key word is read: one Map lookup instead of a chain of string comparisons. */
type KeyDef =
  | { kind: 'flag'; flag: string; set: boolean }
  | { kind: 'date'; field: 'internal' | 'sent' | 'saved'; op: 'before' | 'on' | 'since' }
  | { kind: 'header'; field: string }
  | { kind: 'other' };

const KEYS = new Map<string, KeyDef>();
for (const [word, [flag, set]] of Object.entries(FLAG_KEYS)) KEYS.set(word, { kind: 'flag', flag, set });
for (const [word, [field, op]] of Object.entries(DATE_KEYS)) KEYS.set(word, { kind: 'date', field, op });
for (const [word, field] of Object.entries(HEADER_KEYS)) KEYS.set(word, { kind: 'header', field });
for (const word of ['ALL', 'NEW', 'KEYWORD', 'UNKEYWORD', 'BODY', 'TEXT', 'HEADER', 'LARGER', 'SMALLER', 'UID', 'NOT', 'OR', 'MODSEQ', 'OLDER', 'YOUNGER', 'SAVEDATESUPPORTED', 'EMAILID', 'THREADID']) {
  KEYS.set(word, { kind: 'other' });
}

class SearchParser {
  constructor(
    private readonly r: Reader,
    private readonly decode: Decoder,
  ) {}

  private text(what: string): string {
    // Search strings may be literal8 (RFC 3516 allows binary literals in SEARCH).
    return this.decode(this.r.astringBytes(what, true));
  }

  /** One search-key. */
  key(): SearchKey {
    const r: Reader = this.r;
    const c = r.peek();
    if (c === 0x28 /* ( */) {
      r.open('search key');
      const keys: SearchKey[] = [this.key()];
      while (!r.tryClose()) {
        if (r.peek() === EOL) r.fail('Missing ) closing search key list');
        r.sp('search key');
        keys.push(this.key());
      }
      return keys.length === 1 ? keys[0]! : { type: 'and', keys };
    }
    if ((c >= 0x30 && c <= 0x39) || c === 0x2a || c === 0x24) return { type: 'seq', set: r.sequenceSet() };
    const word = r.keyword('search key');
    const def = KEYS.get(word);
    if (def === undefined) r.fail(`Unknown search key ${word.length > 30 ? word.slice(0, 30) : word}`);
    if (def.kind === 'flag') return { type: 'flag', flag: def.flag, set: def.set };
    if (def.kind === 'date') {
      r.sp('date');
      return { type: 'date', field: def.field, op: def.op, date: readDate(r, 'date') };
    }
    if (def.kind === 'header') {
      r.sp(`${word} value`);
      return { type: 'header', field: def.field, value: this.text(`${word} value`) };
    }
    switch (word) {
      case 'ALL':
        return { type: 'all' };
      case 'NEW':
        return {
          type: 'and',
          keys: [
            { type: 'flag', flag: '\\Recent', set: true },
            { type: 'flag', flag: '\\Seen', set: false },
          ],
        };
      case 'KEYWORD':
      case 'UNKEYWORD':
        r.sp('keyword');
        return { type: 'flag', flag: r.flag('keyword'), set: word === 'KEYWORD' };
      case 'BODY':
      case 'TEXT':
        r.sp(`${word} value`);
        return { type: word === 'BODY' ? 'body' : 'text', value: this.text(`${word} value`) };
      case 'HEADER': {
        r.sp('header field name');
        const field = this.text('header field name').toLowerCase();
        r.sp('header value');
        return { type: 'header', field, value: this.text('header value') };
      }
      case 'LARGER':
      case 'SMALLER':
        r.sp('size');
        return { type: 'size', op: word === 'LARGER' ? 'larger' : 'smaller', value: r.number('size', Number.MAX_SAFE_INTEGER) };
      case 'UID':
        r.sp('UID set');
        return { type: 'uid', set: r.sequenceSet('UID set') };
      case 'NOT': {
        r.sp('search key after NOT');
        r.enter();
        const key = this.key();
        r.leave();
        return { type: 'not', key };
      }
      case 'OR': {
        r.sp('first search key of OR');
        r.enter();
        const left = this.key();
        r.sp('second search key of OR');
        const right = this.key();
        r.leave();
        return { type: 'or', left, right };
      }
      case 'MODSEQ':
        return this.modseq();
      case 'OLDER':
      case 'YOUNGER':
        r.sp('interval');
        return { type: word === 'OLDER' ? 'older' : 'younger', seconds: r.nzNumber('interval') };
      case 'SAVEDATESUPPORTED':
        return { type: 'savedatesupported' };
      case 'EMAILID':
      case 'THREADID': {
        r.sp('object id');
        const id = r.atom('object id');
        if (!OBJECTID_RE.test(id)) r.fail(`Invalid object id`);
        return { type: word === 'EMAILID' ? 'emailid' : 'threadid', id };
      }
      default:
        return r.fail(`Unknown search key ${word.length > 30 ? word.slice(0, 30) : word}`);
    }
  }

  // MODSEQ [entry-name SP entry-type-req] mod-sequence-valzer (RFC 7162 3.1.5).
  private modseq(): SearchKey {
    const r: Reader = this.r;
    r.sp('mod-sequence');
    if (r.peek() === 0x22) {
      const name = r.string('entry name');
      if (!/^\/flags\/\\?[^\s"\\()]+$/i.test(name)) r.fail('Invalid MODSEQ entry name');
      r.sp('entry type');
      const kind = r.keyword('entry type').toLowerCase();
      if (kind !== 'priv' && kind !== 'shared' && kind !== 'all') r.fail('Invalid MODSEQ entry type');
      r.sp('mod-sequence');
      return { type: 'modseq', modseq: r.number64('mod-sequence'), entry: { name, kind } };
    }
    return { type: 'modseq', modseq: r.number64('mod-sequence') };
  }

  /** 1*(SP search-key) after the first key's leading space; several keys become one "and". */
  program(): SearchKey {
    const r: Reader = this.r;
    const keys: SearchKey[] = [this.key()];
    while (r.peek() === 0x20) {
      r.sp('search key');
      keys.push(this.key());
    }
    return keys.length === 1 ? keys[0]! : { type: 'and', keys };
  }
}

const RETURN_OPTIONS = new Set(['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE']);

// RETURN (opts) of ESEARCH/ESORT; the RETURN keyword is already consumed.
function returnOptions(r: Reader): SearchReturn {
  r.sp('RETURN options');
  const opts = r.list(
    'RETURN options',
    () => {
      const o = r.keyword('RETURN option');
      if (!RETURN_OPTIONS.has(o)) r.fail(`Unknown RETURN option ${o.slice(0, 30)}`);
      return o as SearchReturn[number];
    },
    true,
  );
  return opts;
}

/** SEARCH [RETURN (...)] [CHARSET cs] keys (after the command name). */
export function parseSearch(r: Reader, uid: boolean): CommandBody {
  r.sp('search criteria');
  let ret: SearchReturn | undefined;
  if (r.tryKeyword('RETURN')) {
    ret = returnOptions(r);
    r.sp('search criteria');
  }
  let charset: string | undefined;
  let decode = utf8;
  if (r.tryKeyword('CHARSET')) {
    r.sp('charset');
    charset = r.astring('charset').toUpperCase();
    decode = charsetDecoder(r, charset);
    r.sp('search criteria');
  }
  const criteria = new SearchParser(r, decode).program();
  const cmd: Extract<CommandBody, { name: 'SEARCH' }> = { name: 'SEARCH', uid, criteria };
  if (charset !== undefined) cmd.charset = charset;
  if (ret !== undefined) cmd.returnOptions = ret;
  return cmd;
}

const SORT_KEYS = new Set(['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO', 'DISPLAYFROM', 'DISPLAYTO']);

/** SORT [RETURN (...)] (criteria) charset keys (RFC 5256, RFC 5267 ESORT, RFC 5957 DISPLAY). */
export function parseSort(r: Reader, uid: boolean): CommandBody {
  r.sp('sort criteria');
  let ret: SearchReturn | undefined;
  if (r.tryKeyword('RETURN')) {
    ret = returnOptions(r);
    r.sp('sort criteria');
  }
  const criteria = r.list('sort criteria', (): SortKey => {
    let reverse = false;
    let k = r.keyword('sort key');
    if (k === 'REVERSE') {
      reverse = true;
      r.sp('sort key');
      k = r.keyword('sort key');
    }
    if (!SORT_KEYS.has(k)) r.fail(`Unknown sort key ${k.slice(0, 30)}`);
    return { key: k as SortKey['key'], reverse };
  });
  r.sp('charset');
  const charset = r.astring('charset').toUpperCase();
  const decode = charsetDecoder(r, charset);
  r.sp('search criteria');
  const search = new SearchParser(r, decode).program();
  const cmd: Extract<CommandBody, { name: 'SORT' }> = { name: 'SORT', uid, criteria, charset, search };
  if (ret !== undefined) cmd.returnOptions = ret;
  return cmd;
}

/** THREAD algorithm charset keys (RFC 5256). */
export function parseThread(r: Reader, uid: boolean): CommandBody {
  r.sp('thread algorithm');
  const algorithm = r.keyword('thread algorithm');
  r.sp('charset');
  const charset = r.astring('charset').toUpperCase();
  const decode = charsetDecoder(r, charset);
  r.sp('search criteria');
  const search = new SearchParser(r, decode).program();
  return { name: 'THREAD', uid, algorithm, charset, search };
}
