/**
 * Command grammar: tag, name and the arguments of every command of RFC 3501 / RFC 9051 and the
 * extensions in ARCHITECTURE.md. Works on a Reader over one framed command and returns the AST.
 */
import type { AppendMessage, Command, CommandBody, ListCommand, QresyncParams, SequenceSet, StatusItem } from './ast.js';
import { parseFetch } from './fetch-items.js';
import { daysInMonth, monthNumber, parseSearch, parseSort, parseThread } from './search-keys.js';
import { EOL, LIT, type Reader } from './tokenizer.js';

const UID_COMMANDS = new Set(['COPY', 'MOVE', 'FETCH', 'SEARCH', 'STORE', 'EXPUNGE', 'SORT', 'THREAD']);

const STATUS_ITEMS = new Set<string>([
  'MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'DELETED', 'SIZE', 'HIGHESTMODSEQ', 'APPENDLIMIT', 'MAILBOXID',
]);

// Digits at text[i, i + n) as a number, or -1.
function digitsAt(text: string, i: number, n: number): number {
  let v = 0;
  for (let k = i; k < i + n; k++) {
    const c = text.charCodeAt(k);
    if (!(c >= 0x30 && c <= 0x39)) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

/** "17-Jul-1996 02:44:25 -0700" (day may be " 7" or "7") → Date; null when invalid. */
export function parseDateTime(text: string): Date | null {
  // date-day-fixed "-" date-month "-" date-year SP time SP zone, read by position (no regex: hot in APPEND).
  let i = text.charCodeAt(0) === 0x20 ? 1 : 0;
  const dayLen = text.charCodeAt(i + 1) === 0x2d ? 1 : 2;
  const day = digitsAt(text, i, dayLen);
  i += dayLen;
  if (day < 0 || text.length !== i + 24 || text.charCodeAt(i) !== 0x2d || text.charCodeAt(i + 4) !== 0x2d) return null;
  const month = monthNumber(text.slice(i + 1, i + 4));
  const year = digitsAt(text, i + 5, 4);
  if (text.charCodeAt(i + 9) !== 0x20 || text.charCodeAt(i + 12) !== 0x3a || text.charCodeAt(i + 15) !== 0x3a) return null;
  const hh = digitsAt(text, i + 10, 2);
  const mm = digitsAt(text, i + 13, 2);
  const ss = digitsAt(text, i + 16, 2);
  const sign = text.charCodeAt(i + 19);
  const zh = digitsAt(text, i + 20, 2);
  const zm = digitsAt(text, i + 22, 2);
  if (text.charCodeAt(i + 18) !== 0x20 || (sign !== 0x2b && sign !== 0x2d)) return null;
  if (year < 0 || hh < 0 || mm < 0 || ss < 0 || zh < 0 || zm < 0) return null;
  if (month === 0 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hh > 23 || mm > 59 || ss > 59 || zh > 23 || zm > 59) return null;
  let t = Date.UTC(year, month - 1, day, hh, mm, ss);
  if (year < 100) {
    // Date.UTC maps years below 100 to 19xx; setUTCFullYear keeps them literal.
    const d = new Date(t);
    d.setUTCFullYear(year);
    t = d.getTime();
  }
  const offset = (sign === 0x2d ? -1 : 1) * (zh * 60 + zm) * 60000;
  return new Date(t - offset);
}

function clip(s: string): string {
  return s.length > 30 ? `${s.slice(0, 30)}...` : s;
}

/** Parse one framed command. Throws ProtocolSyntaxError (or IncompleteInput at a pending literal). */
export function parseCommand(r: Reader): Command {
  const tag = r.readTag();
  r.sp('command name');
  let name = r.keyword('command name');
  let uid = false;
  if (name === 'UID') {
    uid = true;
    r.name = 'UID';
    r.sp('UID command');
    name = r.keyword('UID command');
    if (!UID_COMMANDS.has(name)) r.fail(`Unknown UID command ${clip(name)}`);
  }
  r.name = name;
  const body = parseBody(r, name, uid);
  r.end(uid ? `UID ${name}` : name);
  const cmd = body as Command;
  cmd.tag = tag;
  return cmd;
}

function parseBody(r: Reader, name: string, uid: boolean): CommandBody {
  switch (name) {
    case 'CAPABILITY':
    case 'NOOP':
    case 'LOGOUT':
    case 'STARTTLS':
    case 'IDLE':
    case 'CHECK':
    case 'CLOSE':
    case 'UNSELECT':
    case 'NAMESPACE':
      return { name };
    case 'LOGIN': {
      r.sp('user name');
      const user = r.astring('user name');
      r.sp('password');
      return { name, user, password: r.astring('password') };
    }
    case 'AUTHENTICATE':
      return authenticate(r);
    case 'ENABLE': {
      const capabilities: string[] = [];
      do {
        r.sp('capability');
        capabilities.push(r.keyword('capability'));
      } while (r.peek() === 0x20);
      return { name, capabilities };
    }
    case 'ID':
      return id(r);
    case 'SELECT':
    case 'EXAMINE':
      return select(r, name);
    case 'CREATE':
      return create(r);
    case 'DELETE':
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE':
      r.sp('mailbox name');
      return { name, mailbox: r.mailbox() };
    case 'RENAME': {
      r.sp('existing mailbox name');
      const from = r.mailbox('existing mailbox name');
      r.sp('new mailbox name');
      return { name, from, to: r.mailbox('new mailbox name') };
    }
    case 'LIST':
      return list(r);
    case 'LSUB': {
      r.sp('reference name');
      const reference = r.mailbox('reference name');
      r.sp('mailbox pattern');
      return { name, reference, pattern: r.listMailbox('mailbox pattern') };
    }
    case 'STATUS': {
      r.sp('mailbox name');
      const mailbox = r.mailbox();
      r.sp('status items');
      return { name, mailbox, items: statusItems(r) };
    }
    case 'APPEND':
      return append(r);
    case 'EXPUNGE':
      if (!uid) return { name, uid };
      r.sp('UID set');
      return { name, uid, sequence: r.sequenceSet('UID set') };
    case 'SEARCH':
      return parseSearch(r, uid);
    case 'FETCH':
      return parseFetch(r, uid);
    case 'STORE':
      return store(r, uid);
    case 'COPY':
    case 'MOVE': {
      r.sp('sequence set');
      const sequence = r.sequenceSet();
      r.sp('mailbox name');
      return { name, uid, sequence, mailbox: r.mailbox() };
    }
    case 'SORT':
      return parseSort(r, uid);
    case 'THREAD':
      return parseThread(r, uid);
    case 'GETQUOTA':
      r.sp('quota root');
      return { name, root: r.astring('quota root') };
    case 'GETQUOTAROOT':
      r.sp('mailbox name');
      return { name, mailbox: r.mailbox() };
    case 'SETQUOTA': {
      r.sp('quota root');
      const root = r.astring('quota root');
      r.sp('quota limits');
      const limits = r.list(
        'quota limits',
        () => {
          const resource = r.keyword('quota resource');
          r.sp('quota limit');
          return { resource, limit: r.number('quota limit', Number.MAX_SAFE_INTEGER) };
        },
        true,
      );
      return { name, root, limits };
    }
    case 'COMPRESS':
      r.sp('compression mechanism');
      return { name, mechanism: r.keyword('compression mechanism') };
    default:
      return r.fail('Unknown command');
  }
}

// AUTHENTICATE mechanism [SP (base64 / "=")] (RFC 4959 SASL-IR).
function authenticate(r: Reader): CommandBody {
  r.sp('SASL mechanism');
  const mechanism = r.keyword('SASL mechanism');
  if (!r.optSp()) return { name: 'AUTHENTICATE', mechanism };
  const initialResponse = r.atom('initial response');
  if (initialResponse !== '=' && !/^[A-Za-z0-9+/]*={0,2}$/.test(initialResponse)) r.fail('Invalid base64 in initial response');
  return { name: 'AUTHENTICATE', mechanism, initialResponse };
}

// ID ( "(" [string SP nstring *(SP string SP nstring)] ")" / NIL ) (RFC 2971).
function id(r: Reader): CommandBody {
  r.sp('ID parameters');
  if (r.tryKeyword('NIL')) return { name: 'ID', params: null };
  const params = r.list(
    'ID parameters',
    (): [string, string | null] => {
      const key = r.astring('ID field name');
      r.sp('ID field value');
      return [key, r.nstring('ID field value')];
    },
    true,
  );
  return { name: 'ID', params };
}

function noStar(r: Reader, set: SequenceSet, what: string): SequenceSet {
  if (set.kind === 'saved') r.fail(`$ not allowed in ${what}`);
  for (const range of set.ranges) if (range.start === '*' || range.end === '*') r.fail(`* not allowed in ${what}`);
  return set;
}

// QRESYNC (uidvalidity modseq [known-uids] [(seqs uids)]) (RFC 7162 3.2.5).
function qresync(r: Reader): QresyncParams {
  r.open('QRESYNC parameters');
  const uidValidity = r.nzNumber('UIDVALIDITY');
  r.sp('mod-sequence');
  const q: QresyncParams = { uidValidity, modSeq: r.number64('mod-sequence') };
  const seqMatch = (): void => {
    r.open('sequence match data');
    const seqs = noStar(r, r.sequenceSet('known sequence set'), 'known sequence set');
    r.sp('known UID set');
    const uids = noStar(r, r.sequenceSet('known UID set'), 'known UID set');
    r.close(') closing sequence match data');
    q.seqMatch = { seqs, uids };
  };
  if (r.optSp()) {
    if (r.peek() === 0x28) seqMatch();
    else {
      q.knownUids = noStar(r, r.sequenceSet('known UIDs'), 'known UIDs');
      if (r.optSp()) seqMatch();
    }
  }
  r.close(') closing QRESYNC parameters');
  return q;
}

function select(r: Reader, name: 'SELECT' | 'EXAMINE'): CommandBody {
  r.sp('mailbox name');
  const cmd: Extract<CommandBody, { name: 'SELECT' | 'EXAMINE' }> = {
    name,
    mailbox: r.mailbox(),
    condstore: false,
  };
  if (r.optSp()) {
    r.list('SELECT parameters', () => {
      const p = r.keyword('SELECT parameter');
      if (p === 'CONDSTORE') cmd.condstore = true;
      else if (p === 'QRESYNC') {
        if (cmd.qresync) r.fail('QRESYNC given twice');
        r.sp('QRESYNC parameters');
        cmd.qresync = qresync(r);
      } else r.fail(`Unknown SELECT parameter ${clip(p)}`);
    });
  }
  return cmd;
}

// CREATE mailbox [(USE (\Drafts ...))] (RFC 6154 3).
function create(r: Reader): CommandBody {
  r.sp('mailbox name');
  const cmd: Extract<CommandBody, { name: 'CREATE' }> = { name: 'CREATE', mailbox: r.mailbox() };
  if (r.optSp()) {
    r.list('CREATE parameters', () => {
      const p = r.keyword('CREATE parameter');
      if (p !== 'USE') r.fail(`Unknown CREATE parameter ${clip(p)}`);
      if (cmd.specialUse) r.fail('USE given twice');
      r.sp('special-use attributes');
      cmd.specialUse = r.list(
        'special-use attributes',
        () => {
          if (r.peek() !== 0x5c) r.fail('Expected special-use attribute');
          return r.flag('special-use attribute');
        },
        true,
      );
    });
  }
  return cmd;
}

function statusItems(r: Reader): StatusItem[] {
  return r.list('status items', () => {
    const item = r.keyword('status item');
    if (!STATUS_ITEMS.has(item)) r.fail(`Unknown status item ${clip(item)}`);
    return item as StatusItem;
  });
}

const SELECT_OPTIONS = new Set(['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE']);

// LIST [(selection)] reference (pattern / (patterns)) [RETURN (options)] (RFC 5258, 5819, 6154).
function list(r: Reader): CommandBody {
  const cmd: ListCommand = {
    name: 'LIST',
    reference: '',
    patterns: [],
    selection: [],
    returnSubscribed: false,
    returnChildren: false,
    returnSpecialUse: false,
    extended: false,
  };
  r.sp('reference name');
  if (r.peek() === 0x28) {
    cmd.extended = true;
    cmd.selection = r.list(
      'selection options',
      () => {
        const o = r.keyword('selection option');
        if (!SELECT_OPTIONS.has(o)) r.fail(`Unknown LIST selection option ${clip(o)}`);
        return o;
      },
      true,
    );
    // RECURSIVEMATCH only modifies a base option (RFC 5258 3).
    if (cmd.selection.includes('RECURSIVEMATCH') && !cmd.selection.some((o) => o === 'SUBSCRIBED' || o === 'SPECIAL-USE')) {
      r.fail('RECURSIVEMATCH needs another selection option');
    }
    r.sp('reference name');
  }
  cmd.reference = r.mailbox('reference name');
  r.sp('mailbox pattern');
  if (r.peek() === 0x28) {
    cmd.extended = true;
    cmd.patterns = r.list('mailbox patterns', () => r.listMailbox('mailbox pattern'));
  } else {
    cmd.patterns = [r.listMailbox('mailbox pattern')];
  }
  if (r.optSp()) {
    if (!r.tryKeyword('RETURN')) r.fail('Expected RETURN');
    cmd.extended = true;
    r.sp('return options');
    r.list(
      'return options',
      () => {
        const o = r.keyword('return option');
        if (o === 'SUBSCRIBED') cmd.returnSubscribed = true;
        else if (o === 'CHILDREN') cmd.returnChildren = true;
        else if (o === 'SPECIAL-USE') cmd.returnSpecialUse = true;
        else if (o === 'STATUS') {
          if (cmd.returnStatus) r.fail('STATUS given twice');
          r.sp('status items');
          cmd.returnStatus = statusItems(r);
        } else r.fail(`Unknown LIST return option ${clip(o)}`);
      },
      true,
    );
  }
  return cmd;
}

// APPEND mailbox 1*([SP flag-list] [SP date-time] SP (literal / literal8 / UTF8 (literal8)))
// (RFC 3501 6.3.11, RFC 3502 MULTIAPPEND, RFC 3516 BINARY, RFC 6855 UTF8=ACCEPT).
function append(r: Reader): CommandBody {
  r.sp('mailbox name');
  const mailbox = r.mailbox();
  const messages: AppendMessage[] = [];
  do {
    r.sp('message literal');
    const msg: AppendMessage = { flags: [], data: EMPTY, binary: false, utf8: false };
    if (r.peek() === 0x28) {
      msg.flags = r.flagList();
      r.sp('message literal');
    }
    if (r.peek() === 0x22) {
      const text = r.string('date-time');
      const date = parseDateTime(text);
      if (!date) r.fail(`Invalid date-time: ${clip(text)}`);
      msg.date = date;
      r.sp('message literal');
    }
    const c = r.peek();
    if (c === LIT) {
      msg.binary = r.literalIsBinary();
      msg.data = r.stringBytes('message literal', true);
    } else if (r.tryKeyword('UTF8')) {
      msg.utf8 = true;
      r.sp('UTF8 message literal');
      r.open('( before UTF8 message literal');
      if (r.peek() !== LIT) r.fail('Expected UTF8 message literal');
      msg.binary = r.literalIsBinary();
      msg.data = r.stringBytes('UTF8 message literal', true);
      r.close(') after UTF8 message literal');
    } else if (r.tryKeyword('CATENATE')) {
      r.fail('CATENATE is not supported');
    } else if (c === EOL) {
      r.fail('Missing argument: message literal');
    } else if (c === 0x7b || c === 0x7e) {
      r.fail('Literal must end the line (message literal)');
    } else {
      r.fail('Expected message literal');
    }
    messages.push(msg);
  } while (r.peek() === 0x20);
  return { name: 'APPEND', mailbox, messages };
}

const EMPTY = Buffer.alloc(0);

// STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags (RFC 3501 6.4.6, RFC 7162 3.1.3).
function store(r: Reader, uid: boolean): CommandBody {
  r.sp('sequence set');
  const sequence = r.sequenceSet();
  r.sp('store action');
  let unchangedSince: bigint | undefined;
  if (r.peek() === 0x28) {
    r.list('STORE modifiers', () => {
      const m = r.keyword('STORE modifier');
      if (m !== 'UNCHANGEDSINCE') r.fail(`Unknown STORE modifier ${clip(m)}`);
      if (unchangedSince !== undefined) r.fail('UNCHANGEDSINCE given twice');
      r.sp('mod-sequence');
      unchangedSince = r.number64('mod-sequence');
    });
    r.sp('store action');
  }
  const act = r.keyword('store action');
  const m = /^([+-]?)FLAGS(\.SILENT)?$/.exec(act);
  if (!m) r.fail(`Invalid store action ${clip(act)}`);
  r.sp('flags');
  let flags: string[];
  if (r.peek() === 0x28) flags = r.flagList();
  else {
    flags = [r.flag()];
    while (r.optSp()) flags.push(r.flag());
  }
  const cmd: Extract<CommandBody, { name: 'STORE' }> = {
    name: 'STORE',
    uid,
    sequence,
    action: m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set',
    silent: m[2] !== undefined,
    flags,
  };
  if (unchangedSince !== undefined) cmd.unchangedSince = unchangedSince;
  return cmd;
}
