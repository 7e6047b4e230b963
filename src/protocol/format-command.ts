/**
 * Command AST -> the bytes a client sends (RFC 3501 9, RFC 9051 9 and the extensions in ast.ts).
 * Used by the proxy to speak to upstream servers and by tests to feed the parser. Strings become
 * atoms, quoted strings or literals, whichever the grammar allows and the content needs.
 */
import type {
  Command,
  FetchItem,
  Partial,
  SearchKey,
  SearchReturn,
  Section,
  SequenceSet,
  StatusItem,
} from './ast.js';

/** Formatting options. */
export interface FormatOptions {
  /** Send literals as `{n+}` (LITERAL+ / LITERAL-, RFC 7888) instead of synchronizing `{n}`. */
  literalPlus?: boolean;
}

/** Longest string sent as a quoted string; longer ones become literals to keep lines short. */
const MAX_QUOTED = 1024;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** ATOM-CHAR (RFC 3501 9): CHAR minus atom-specials; `wild` also admits list-wildcards (list-char). */
function isAtomString(s: string, wild: boolean): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
    switch (c) {
      case 0x28: // (
      case 0x29: // )
      case 0x7b: // {
      case 0x22: // "
      case 0x5c: // \
      case 0x5d: // ]
        return false;
      case 0x25: // %
      case 0x2a: // *
        if (!wild) return false;
    }
  }
  return true;
}

/** Printable 7-bit only: safe inside a quoted string on any server. */
function isQuotable(s: string): boolean {
  if (s.length > MAX_QUOTED) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** Collects command text and literal bodies in order. */
class Out {
  private parts: Buffer[] = [];
  text = '';
  constructor(private readonly literalPlus: boolean) {}

  /** A string (quoted or literal). */
  string(s: string): void {
    if (isQuotable(s)) this.text += '"' + s.replace(/["\\]/g, '\\$&') + '"';
    else this.literal(Buffer.from(s, 'utf8'), false);
  }

  /** An astring (atom when possible). */
  astring(s: string): void {
    if (isAtomString(s, false)) this.text += s;
    else this.string(s);
  }

  /** A list-mailbox (atom may hold % and *). */
  listMailbox(s: string): void {
    if (isAtomString(s, true)) this.text += s;
    else this.string(s);
  }

  /** An nstring: NIL or a string (never an atom, which would be read as NIL when it is "NIL"). */
  nstring(s: string | null): void {
    if (s === null) this.text += 'NIL';
    else this.string(s);
  }

  literal(data: Buffer, binary: boolean): void {
    this.text += `${binary ? '~' : ''}{${data.length}${this.literalPlus ? '+' : ''}}\r\n`;
    this.parts.push(Buffer.from(this.text, 'utf8'), data);
    this.text = '';
  }

  finish(): Buffer {
    this.text += '\r\n';
    this.parts.push(Buffer.from(this.text, 'utf8'));
    return this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
  }
}

/** A sequence set: "1:3,5,7:*" or "$". */
function seqSet(s: SequenceSet): string {
  if (s.kind === 'saved') return '$';
  return s.ranges.map((r) => (r.start === r.end ? String(r.start) : `${r.start}:${r.end}`)).join(',');
}

/** "YYYY-MM-DD" -> RFC 3501 date "d-Mon-yyyy". */
function searchDate(iso: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  if (!m) throw new RangeError(`not an ISO date: ${iso}`);
  const month = Number(m[2]);
  if (month < 1 || month > 12) throw new RangeError(`not an ISO date: ${iso}`);
  return `${Number(m[3])}-${MONTHS[month - 1]}-${m[1]}`;
}

/** APPEND date-time in UTC: "dd-Mon-yyyy hh:mm:ss +0000" (quoted by the caller). */
function dateTime(d: Date): string {
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const day = String(d.getUTCDate()).padStart(2, ' ');
  const year = String(d.getUTCFullYear()).padStart(4, '0');
  return `${day}-${MONTHS[d.getUTCMonth()]}-${year} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

/** Search keys for the system flags, as [when set, when not set]. */
const FLAG_KEYS: Record<string, [string, string]> = {
  '\\answered': ['ANSWERED', 'UNANSWERED'],
  '\\deleted': ['DELETED', 'UNDELETED'],
  '\\draft': ['DRAFT', 'UNDRAFT'],
  '\\flagged': ['FLAGGED', 'UNFLAGGED'],
  '\\seen': ['SEEN', 'UNSEEN'],
  '\\recent': ['RECENT', 'OLD'],
};

/** HEADER fields that have a search key of their own. */
const HEADER_KEYS = new Set(['from', 'to', 'cc', 'bcc', 'subject']);

const DATE_KEYS: Record<'internal' | 'sent' | 'saved', string> = { internal: '', sent: 'SENT', saved: 'SAVED' };

/** One search key; `nested` asks for parentheses around an AND group. */
function searchKey(o: Out, k: SearchKey, nested: boolean): void {
  switch (k.type) {
    case 'all':
      o.text += 'ALL';
      return;
    case 'and':
      if (k.keys.length === 0) {
        o.text += 'ALL';
        return;
      }
      if (nested) o.text += '(';
      k.keys.forEach((sub, i) => {
        if (i > 0) o.text += ' ';
        searchKey(o, sub, true);
      });
      if (nested) o.text += ')';
      return;
    case 'or':
      o.text += 'OR ';
      searchKey(o, k.left, true);
      o.text += ' ';
      searchKey(o, k.right, true);
      return;
    case 'not':
      o.text += 'NOT ';
      searchKey(o, k.key, true);
      return;
    case 'flag': {
      const sys = FLAG_KEYS[k.flag.toLowerCase()];
      if (sys) o.text += sys[k.set ? 0 : 1];
      else o.text += `${k.set ? 'KEYWORD' : 'UNKEYWORD'} ${k.flag}`;
      return;
    }
    case 'seq':
      o.text += seqSet(k.set);
      return;
    case 'uid':
      o.text += `UID ${seqSet(k.set)}`;
      return;
    case 'date':
      o.text += `${DATE_KEYS[k.field]}${k.op.toUpperCase()} ${searchDate(k.date)}`;
      return;
    case 'size':
      o.text += `${k.op.toUpperCase()} ${k.value}`;
      return;
    case 'header':
      if (HEADER_KEYS.has(k.field)) {
        o.text += `${k.field.toUpperCase()} `;
      } else {
        o.text += 'HEADER ';
        o.astring(k.field);
        o.text += ' ';
      }
      o.astring(k.value);
      return;
    case 'body':
    case 'text':
      o.text += `${k.type.toUpperCase()} `;
      o.astring(k.value);
      return;
    case 'modseq':
      o.text += 'MODSEQ ';
      if (k.entry) {
        o.string(k.entry.name);
        o.text += ` ${k.entry.kind} `;
      }
      o.text += k.modseq.toString();
      return;
    case 'older':
    case 'younger':
      o.text += `${k.type.toUpperCase()} ${k.seconds}`;
      return;
    case 'savedatesupported':
      o.text += 'SAVEDATESUPPORTED';
      return;
    case 'emailid':
    case 'threadid':
      o.text += `${k.type.toUpperCase()} ${k.id}`;
      return;
  }
}

/** The search program after the command name: top-level AND without parentheses. */
function searchProgram(o: Out, k: SearchKey): void {
  searchKey(o, k, false);
}

function returnOpts(o: Out, r: SearchReturn | undefined): void {
  if (r !== undefined) o.text += ` RETURN (${r.join(' ')})`;
}

function partial(p: Partial | undefined): string {
  return p ? `<${p.offset}.${p.length}>` : '';
}

function section(o: Out, s: Section): void {
  o.text += '[' + s.part.join('.');
  if (s.text) {
    if (s.part.length > 0) o.text += '.';
    o.text += s.text;
    if (s.fields) {
      o.text += ' (';
      s.fields.forEach((f, i) => {
        if (i > 0) o.text += ' ';
        o.astring(f);
      });
      o.text += ')';
    }
  }
  o.text += ']';
}

function fetchItem(o: Out, it: FetchItem): void {
  switch (it.type) {
    case 'BODY[]':
      o.text += it.peek ? 'BODY.PEEK' : 'BODY';
      section(o, it.section);
      o.text += partial(it.partial);
      return;
    case 'BINARY[]':
      o.text += `${it.peek ? 'BINARY.PEEK' : 'BINARY'}[${it.part.join('.')}]${partial(it.partial)}`;
      return;
    case 'BINARY.SIZE':
      o.text += `BINARY.SIZE[${it.part.join('.')}]`;
      return;
    default:
      o.text += it.type;
  }
}

function flagList(flags: string[]): string {
  return `(${flags.join(' ')})`;
}

function statusItems(items: StatusItem[]): string {
  return `(${items.join(' ')})`;
}

/** The exact bytes a client sends for `cmd` (CRLF included; literals inline, as `{n+}` with literalPlus). */
export function formatCommand(cmd: Command, opts?: FormatOptions): Buffer {
  const o = new Out(opts?.literalPlus === true);
  o.text = `${cmd.tag} `;
  switch (cmd.name) {
    case 'CAPABILITY':
    case 'NOOP':
    case 'LOGOUT':
    case 'STARTTLS':
    case 'IDLE':
    case 'CHECK':
    case 'CLOSE':
    case 'UNSELECT':
    case 'NAMESPACE':
      o.text += cmd.name;
      break;
    case 'LOGIN':
      o.text += 'LOGIN ';
      o.astring(cmd.user);
      o.text += ' ';
      o.astring(cmd.password);
      break;
    case 'AUTHENTICATE':
      o.text += `AUTHENTICATE ${cmd.mechanism}`;
      if (cmd.initialResponse !== undefined) o.text += ` ${cmd.initialResponse}`;
      break;
    case 'ENABLE':
      o.text += `ENABLE ${cmd.capabilities.join(' ')}`;
      break;
    case 'ID':
      o.text += 'ID ';
      if (cmd.params === null) {
        o.text += 'NIL';
      } else {
        o.text += '(';
        cmd.params.forEach(([k, v], i) => {
          if (i > 0) o.text += ' ';
          o.string(k);
          o.text += ' ';
          o.nstring(v);
        });
        o.text += ')';
      }
      break;
    case 'SELECT':
    case 'EXAMINE': {
      o.text += `${cmd.name} `;
      o.astring(cmd.mailbox);
      const params: string[] = [];
      if (cmd.condstore) params.push('CONDSTORE');
      if (cmd.qresync) {
        const q = cmd.qresync;
        let s = `QRESYNC (${q.uidValidity} ${q.modSeq}`;
        if (q.knownUids) s += ` ${seqSet(q.knownUids)}`;
        if (q.seqMatch) s += ` (${seqSet(q.seqMatch.seqs)} ${seqSet(q.seqMatch.uids)})`;
        params.push(s + ')');
      }
      if (params.length > 0) o.text += ` (${params.join(' ')})`;
      break;
    }
    case 'CREATE':
      o.text += 'CREATE ';
      o.astring(cmd.mailbox);
      if (cmd.specialUse) o.text += ` (USE ${flagList(cmd.specialUse)})`;
      break;
    case 'DELETE':
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE':
    case 'GETQUOTAROOT':
      o.text += `${cmd.name} `;
      o.astring(cmd.mailbox);
      break;
    case 'RENAME':
      o.text += 'RENAME ';
      o.astring(cmd.from);
      o.text += ' ';
      o.astring(cmd.to);
      break;
    case 'LIST': {
      o.text += 'LIST ';
      if (cmd.extended) o.text += `(${cmd.selection.join(' ')}) `;
      o.astring(cmd.reference);
      o.text += ' ';
      if (cmd.patterns.length === 1) {
        o.listMailbox(cmd.patterns[0]);
      } else {
        o.text += '(';
        cmd.patterns.forEach((p, i) => {
          if (i > 0) o.text += ' ';
          o.listMailbox(p);
        });
        o.text += ')';
      }
      const ret: string[] = [];
      if (cmd.returnSubscribed) ret.push('SUBSCRIBED');
      if (cmd.returnChildren) ret.push('CHILDREN');
      if (cmd.returnSpecialUse) ret.push('SPECIAL-USE');
      if (cmd.returnStatus) ret.push(`STATUS ${statusItems(cmd.returnStatus)}`);
      if (ret.length > 0) o.text += ` RETURN (${ret.join(' ')})`;
      break;
    }
    case 'LSUB':
      o.text += 'LSUB ';
      o.astring(cmd.reference);
      o.text += ' ';
      o.listMailbox(cmd.pattern);
      break;
    case 'STATUS':
      o.text += 'STATUS ';
      o.astring(cmd.mailbox);
      o.text += ` ${statusItems(cmd.items)}`;
      break;
    case 'APPEND':
      o.text += 'APPEND ';
      o.astring(cmd.mailbox);
      for (const m of cmd.messages) {
        if (m.flags.length > 0) o.text += ` ${flagList(m.flags)}`;
        if (m.date) o.text += ` "${dateTime(m.date)}"`;
        o.text += ' ';
        if (m.utf8) {
          // RFC 6855: UTF8 (literal8).
          o.text += 'UTF8 (';
          o.literal(m.data, true);
          o.text += ')';
        } else {
          o.literal(m.data, m.binary);
        }
      }
      break;
    case 'EXPUNGE':
      if (cmd.uid && cmd.sequence) o.text += `UID EXPUNGE ${seqSet(cmd.sequence)}`;
      else o.text += 'EXPUNGE';
      break;
    case 'SEARCH':
      o.text += `${cmd.uid ? 'UID ' : ''}SEARCH`;
      returnOpts(o, cmd.returnOptions);
      if (cmd.charset !== undefined) {
        o.text += ' CHARSET ';
        o.astring(cmd.charset);
      }
      o.text += ' ';
      searchProgram(o, cmd.criteria);
      break;
    case 'FETCH': {
      o.text += `${cmd.uid ? 'UID ' : ''}FETCH ${seqSet(cmd.sequence)} (`;
      cmd.items.forEach((it, i) => {
        if (i > 0) o.text += ' ';
        fetchItem(o, it);
      });
      o.text += ')';
      const mods: string[] = [];
      if (cmd.changedSince !== undefined) mods.push(`CHANGEDSINCE ${cmd.changedSince}`);
      if (cmd.vanished) mods.push('VANISHED');
      if (mods.length > 0) o.text += ` (${mods.join(' ')})`;
      break;
    }
    case 'STORE': {
      o.text += `${cmd.uid ? 'UID ' : ''}STORE ${seqSet(cmd.sequence)} `;
      if (cmd.unchangedSince !== undefined) o.text += `(UNCHANGEDSINCE ${cmd.unchangedSince}) `;
      const sign = cmd.action === 'add' ? '+' : cmd.action === 'remove' ? '-' : '';
      o.text += `${sign}FLAGS${cmd.silent ? '.SILENT' : ''} ${flagList(cmd.flags)}`;
      break;
    }
    case 'COPY':
    case 'MOVE':
      o.text += `${cmd.uid ? 'UID ' : ''}${cmd.name} ${seqSet(cmd.sequence)} `;
      o.astring(cmd.mailbox);
      break;
    case 'SORT':
      o.text += `${cmd.uid ? 'UID ' : ''}SORT`;
      returnOpts(o, cmd.returnOptions);
      o.text += ` (${cmd.criteria.map((c) => (c.reverse ? `REVERSE ${c.key}` : c.key)).join(' ')}) `;
      o.astring(cmd.charset);
      o.text += ' ';
      searchProgram(o, cmd.search);
      break;
    case 'THREAD':
      o.text += `${cmd.uid ? 'UID ' : ''}THREAD ${cmd.algorithm} `;
      o.astring(cmd.charset);
      o.text += ' ';
      searchProgram(o, cmd.search);
      break;
    case 'GETQUOTA':
      o.text += 'GETQUOTA ';
      o.astring(cmd.root);
      break;
    case 'SETQUOTA':
      o.text += 'SETQUOTA ';
      o.astring(cmd.root);
      o.text += ` (${cmd.limits.map((l) => `${l.resource} ${l.limit}`).join(' ')})`;
      break;
    case 'COMPRESS':
      o.text += `COMPRESS ${cmd.mechanism}`;
      break;
  }
  return o.finish();
}
