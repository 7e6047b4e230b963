/**
 * Property: parsing formatCommand(cmd) gives back cmd, for commands drawn from the whole AST.
 * The arbitraries produce each command in the parser's canonical form where the grammar has
 * several spellings (FROM is HEADER "from", one-key lists are the key itself, charsets upper case).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CommandParser } from '../../src/protocol/parser.js';
import { formatCommand } from '../../src/protocol/format-command.js';
import type {
  AppendMessage,
  Command,
  CommandBody,
  FetchItem,
  Partial,
  SearchKey,
  SearchReturn,
  Section,
  SeqNumber,
  SequenceSet,
  SortKey,
  StatusItem,
} from '../../src/protocol/ast.js';

// ---- scalars ----

const nz32 = fc.integer({ min: 1, max: 4294967295 });
const modseq = fc.bigInt({ min: 0n, max: 9223372036854775807n });
const nzModseq = fc.bigInt({ min: 1n, max: 9223372036854775807n });

// ATOM-CHAR without the ones that make an atom look like something else to a human reader.
const atomChar = fc.constantFrom(...'abcXYZ019.-_!#&\'+,/:;<=>?@[^`|~$'.split(''));
const atom = fc.string({ unit: atomChar, minLength: 1, maxLength: 8 });
const upperAtom = fc.string({ unit: fc.constantFrom(...'ABCXYZ019-_.'.split('')), minLength: 1, maxLength: 8 });

/** Characters that force quoting or literals: specials, wildcards, controls, 8-bit, astral. */
const oddChar = fc.constantFrom(' ', '"', '\\', '(', ')', '{', '}', '%', '*', ']', '[', '\r', '\n', '\t', '\x7f', 'é', 'ß', '日', '😀', '~', '+', '&');
/** Any string the formatter must carry: atoms, quoted-worthy text, 8-bit, CR/LF (never NUL: not a CHAR8). */
const text = fc.oneof(
  atom,
  fc.constant(''),
  fc.constant('NIL'),
  fc.string({ unit: fc.oneof(atomChar, oddChar), maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }).filter((s) => !s.includes('\0')),
  fc.string({ unit: fc.constantFrom('x', ' '), minLength: 1020, maxLength: 1030 }),
);
const mailbox = text;

const seqNumber: fc.Arbitrary<SeqNumber> = fc.oneof(nz32, fc.integer({ min: 1, max: 20 }), fc.constant('*' as const));
const seqSet: fc.Arbitrary<SequenceSet> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'saved' } as SequenceSet) },
  {
    weight: 5,
    arbitrary: fc
      .array(
        fc.oneof(
          seqNumber.map((n) => ({ start: n, end: n })),
          fc.record({ start: seqNumber, end: seqNumber }),
        ),
        { minLength: 1, maxLength: 4 },
      )
      .map((ranges): SequenceSet => ({ kind: 'ranges', ranges })),
  },
);

// QRESYNC known sets allow neither "*" nor "$" (RFC 7162 3.2.5).
const knownSet: fc.Arbitrary<SequenceSet> = fc
  .array(fc.record({ start: nz32, end: nz32 }), { minLength: 1, maxLength: 3 })
  .map((ranges): SequenceSet => ({ kind: 'ranges', ranges }));

const systemFlag = fc.constantFrom('\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft');
const keyword = atom;
const flag = fc.oneof(systemFlag, keyword, atom.map((a) => `\\${a}`));
const flags = fc.array(flag, { maxLength: 4 });

const isoDate = fc
  .date({ min: new Date(Date.UTC(1900, 0, 1)), max: new Date(Date.UTC(2199, 11, 31)), noInvalidDate: true })
  .map((d) => d.toISOString().slice(0, 10));

// ---- SEARCH ----

const searchLeaf: fc.Arbitrary<SearchKey> = fc.oneof(
  fc.constant<SearchKey>({ type: 'all' }),
  fc.record({ type: fc.constant('flag' as const), flag: fc.constantFrom('\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft', '\\Recent'), set: fc.boolean() }),
  fc.record({ type: fc.constant('flag' as const), flag: keyword, set: fc.boolean() }),
  fc.record({ type: fc.constant('seq' as const), set: seqSet }),
  fc.record({ type: fc.constant('uid' as const), set: seqSet }),
  fc.record({
    type: fc.constant('date' as const),
    field: fc.constantFrom('internal' as const, 'sent' as const, 'saved' as const),
    op: fc.constantFrom('before' as const, 'on' as const, 'since' as const),
    date: isoDate,
  }),
  fc.record({ type: fc.constant('size' as const), op: fc.constantFrom('larger' as const, 'smaller' as const), value: fc.maxSafeNat() }),
  // HEADER field names come back lower-cased (FROM, TO, ... are HEADER with a lower-case name).
  fc.record({
    type: fc.constant('header' as const),
    field: fc.oneof(fc.constantFrom('from', 'to', 'cc', 'bcc', 'subject'), text.map((t) => t.toLowerCase())),
    value: text,
  }),
  fc.record({ type: fc.constantFrom('body' as const, 'text' as const), value: text }),
  fc.record(
    {
      type: fc.constant('modseq' as const),
      modseq,
      entry: fc.record({
        name: fc.oneof(systemFlag, keyword).map((f) => `/flags/${f}`),
        kind: fc.constantFrom('priv' as const, 'shared' as const, 'all' as const),
      }),
    },
    { requiredKeys: ['type', 'modseq'] },
  ),
  fc.record({ type: fc.constantFrom('older' as const, 'younger' as const), seconds: nz32 }),
  fc.constant<SearchKey>({ type: 'savedatesupported' }),
  fc.record({
    type: fc.constantFrom('emailid' as const, 'threadid' as const),
    id: fc.string({ unit: fc.constantFrom(...'Aa09_-'.split('')), minLength: 1, maxLength: 20 }),
  }),
);

const searchKey: fc.Arbitrary<SearchKey> = fc.letrec<{ key: SearchKey }>((tie) => ({
  key: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    searchLeaf,
    // A one-key list is the key itself, so AND groups hold at least two keys.
    fc.array(tie('key'), { minLength: 2, maxLength: 3 }).map((keys): SearchKey => ({ type: 'and', keys })),
    fc.record({ type: fc.constant('or' as const), left: tie('key'), right: tie('key') }),
    fc.record({ type: fc.constant('not' as const), key: tie('key') }),
  ),
})).key;

const searchReturn: fc.Arbitrary<SearchReturn> = fc.subarray(['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE'] as const).map((a) => [...a]);
// Charsets come back upper case; both decode as UTF-8, so 8-bit text survives.
const charset = fc.constantFrom('UTF-8', 'US-ASCII');

// ---- FETCH ----

const part = fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 0, maxLength: 3 });
const partial: fc.Arbitrary<Partial> = fc.record({ offset: fc.maxSafeNat(), length: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) });
const section: fc.Arbitrary<Section> = fc.oneof(
  part.map((p): Section => ({ part: p })),
  fc.record({ part, text: fc.constantFrom('HEADER' as const, 'TEXT' as const) }),
  fc.record({ part: part.filter((p) => p.length > 0), text: fc.constant('MIME' as const) }),
  fc.record({
    part,
    text: fc.constantFrom('HEADER.FIELDS' as const, 'HEADER.FIELDS.NOT' as const),
    fields: fc.array(text, { minLength: 1, maxLength: 3 }),
  }),
);
const fetchItem: fc.Arbitrary<FetchItem> = fc.oneof(
  fc
    .constantFrom(
      'UID',
      'FLAGS',
      'INTERNALDATE',
      'RFC822.SIZE',
      'ENVELOPE',
      'BODYSTRUCTURE',
      'BODY',
      'RFC822',
      'RFC822.HEADER',
      'RFC822.TEXT',
      'MODSEQ',
      'EMAILID',
      'THREADID',
      'SAVEDATE',
    )
    .map((type) => ({ type }) as FetchItem),
  fc.record({ type: fc.constant('BODY[]' as const), peek: fc.boolean(), section, partial }, { requiredKeys: ['type', 'peek', 'section'] }),
  fc.record({ type: fc.constant('BINARY[]' as const), peek: fc.boolean(), part, partial }, { requiredKeys: ['type', 'peek', 'part'] }),
  fc.record({ type: fc.constant('BINARY.SIZE' as const), part }),
);

// ---- commands ----

const statusItem: fc.Arbitrary<StatusItem> = fc.constantFrom(
  'MESSAGES',
  'RECENT',
  'UIDNEXT',
  'UIDVALIDITY',
  'UNSEEN',
  'DELETED',
  'SIZE',
  'HIGHESTMODSEQ',
  'APPENDLIMIT',
  'MAILBOXID',
);
const statusItems = fc.uniqueArray(statusItem, { minLength: 1, maxLength: 4 });

// APPEND dates: whole seconds (the wire has no milliseconds), four-digit years.
const appendDate = fc
  .integer({ min: Date.UTC(1970, 0, 1) / 1000, max: Date.UTC(2199, 11, 31) / 1000 })
  .map((s) => new Date(s * 1000));
const appendMessage: fc.Arbitrary<AppendMessage> = fc
  .record(
    {
      flags,
      date: appendDate,
      binary: fc.boolean(),
      utf8: fc.boolean(),
      data: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    },
    { requiredKeys: ['flags', 'binary', 'utf8', 'data'] },
  )
  .map((m) => {
    // NUL only travels in binary literals; UTF8 (...) always carries a literal8.
    const binary = m.binary || m.utf8;
    const bytes = Buffer.from(m.data);
    if (!binary) for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0) bytes[i] = 0x20;
    const out: AppendMessage = { flags: m.flags, data: bytes, binary, utf8: m.utf8 };
    if (m.date) out.date = m.date;
    return out;
  });

const sortKey: fc.Arbitrary<SortKey> = fc.record({
  key: fc.constantFrom('ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO', 'DISPLAYFROM', 'DISPLAYTO'),
  reverse: fc.boolean(),
});

const simple = fc
  .constantFrom('CAPABILITY', 'NOOP', 'LOGOUT', 'STARTTLS', 'IDLE', 'CHECK', 'CLOSE', 'UNSELECT', 'NAMESPACE')
  .map((name) => ({ name }) as CommandBody);

const body: fc.Arbitrary<CommandBody> = fc.oneof(
  simple,
  fc.record({ name: fc.constant('LOGIN' as const), user: text, password: text }),
  fc.record(
    {
      name: fc.constant('AUTHENTICATE' as const),
      mechanism: fc.constantFrom('PLAIN', 'LOGIN', 'XOAUTH2', 'SCRAM-SHA-256', 'OAUTHBEARER'),
      initialResponse: fc.oneof(fc.constant('='), fc.base64String({ minLength: 4, maxLength: 40 })),
    },
    { requiredKeys: ['name', 'mechanism'] },
  ),
  fc.record({ name: fc.constant('ENABLE' as const), capabilities: fc.array(upperAtom, { minLength: 1, maxLength: 3 }) }),
  fc.record({
    name: fc.constant('ID' as const),
    params: fc.option(fc.array(fc.tuple(text, fc.option(text, { nil: null })), { maxLength: 3 }), { nil: null }),
  }),
  fc.record(
    {
      name: fc.constantFrom('SELECT' as const, 'EXAMINE' as const),
      mailbox,
      condstore: fc.boolean(),
      qresync: fc.record(
        {
          uidValidity: nz32,
          modSeq: nzModseq,
          knownUids: knownSet,
          seqMatch: fc.record({ seqs: knownSet, uids: knownSet }),
        },
        { requiredKeys: ['uidValidity', 'modSeq'] },
      ),
    },
    { requiredKeys: ['name', 'mailbox', 'condstore'] },
  ),
  fc.record(
    { name: fc.constant('CREATE' as const), mailbox, specialUse: fc.array(fc.constantFrom('\\Drafts', '\\Sent', '\\Trash', '\\Archive'), { minLength: 1, maxLength: 2 }) },
    { requiredKeys: ['name', 'mailbox'] },
  ),
  fc.record({ name: fc.constantFrom('DELETE' as const, 'SUBSCRIBE' as const, 'UNSUBSCRIBE' as const), mailbox }),
  fc.record({ name: fc.constant('RENAME' as const), from: mailbox, to: mailbox }),
  fc.record({
    name: fc.constant('LIST' as const),
    reference: mailbox,
    patterns: text.map((p) => [p]),
    selection: fc.constant([] as string[]),
    returnSubscribed: fc.constant(false),
    returnChildren: fc.constant(false),
    returnSpecialUse: fc.constant(false),
    extended: fc.constant(false),
  }),
  fc.record(
    {
      name: fc.constant('LIST' as const),
      reference: mailbox,
      patterns: fc.array(text, { minLength: 1, maxLength: 3 }),
      // RECURSIVEMATCH only modifies SUBSCRIBED or SPECIAL-USE (RFC 5258 3).
      selection: fc
        .subarray(['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE'])
        .filter((sel) => !sel.includes('RECURSIVEMATCH') || sel.includes('SUBSCRIBED') || sel.includes('SPECIAL-USE')),
      returnSubscribed: fc.boolean(),
      returnChildren: fc.boolean(),
      returnSpecialUse: fc.boolean(),
      returnStatus: statusItems,
      extended: fc.constant(true),
    },
    { requiredKeys: ['name', 'reference', 'patterns', 'selection', 'returnSubscribed', 'returnChildren', 'returnSpecialUse', 'extended'] },
  ),
  fc.record({ name: fc.constant('LSUB' as const), reference: mailbox, pattern: text }),
  fc.record({ name: fc.constant('STATUS' as const), mailbox, items: statusItems }),
  fc.record({ name: fc.constant('APPEND' as const), mailbox, messages: fc.array(appendMessage, { minLength: 1, maxLength: 3 }) }),
  fc.constant<CommandBody>({ name: 'EXPUNGE', uid: false }),
  fc.record({ name: fc.constant('EXPUNGE' as const), uid: fc.constant(true), sequence: seqSet }),
  fc.record(
    { name: fc.constant('SEARCH' as const), uid: fc.boolean(), charset, criteria: searchKey, returnOptions: searchReturn },
    { requiredKeys: ['name', 'uid', 'criteria'] },
  ),
  fc
    .record(
      {
        name: fc.constant('FETCH' as const),
        uid: fc.boolean(),
        sequence: seqSet,
        items: fc.array(fetchItem, { minLength: 1, maxLength: 5 }),
        changedSince: modseq,
        vanished: fc.boolean(),
      },
      { requiredKeys: ['name', 'uid', 'sequence', 'items', 'vanished'] },
    )
    // VANISHED is only valid with UID FETCH and CHANGEDSINCE (RFC 7162 3.2.6).
    .map((c) => ({ ...c, vanished: c.vanished && c.uid && c.changedSince !== undefined })),
  fc.record(
    {
      name: fc.constant('STORE' as const),
      uid: fc.boolean(),
      sequence: seqSet,
      action: fc.constantFrom('set' as const, 'add' as const, 'remove' as const),
      silent: fc.boolean(),
      flags,
      unchangedSince: modseq,
    },
    { requiredKeys: ['name', 'uid', 'sequence', 'action', 'silent', 'flags'] },
  ),
  fc.record({ name: fc.constantFrom('COPY' as const, 'MOVE' as const), uid: fc.boolean(), sequence: seqSet, mailbox }),
  fc.record(
    {
      name: fc.constant('SORT' as const),
      uid: fc.boolean(),
      criteria: fc.array(sortKey, { minLength: 1, maxLength: 3 }),
      charset,
      search: searchKey,
      returnOptions: searchReturn,
    },
    { requiredKeys: ['name', 'uid', 'criteria', 'charset', 'search'] },
  ),
  fc.record({
    name: fc.constant('THREAD' as const),
    uid: fc.boolean(),
    algorithm: fc.constantFrom('REFERENCES', 'ORDEREDSUBJECT', 'REFS'),
    charset,
    search: searchKey,
  }),
  fc.record({ name: fc.constant('GETQUOTA' as const), root: mailbox }),
  fc.record({ name: fc.constant('GETQUOTAROOT' as const), mailbox }),
  fc.record({
    name: fc.constant('SETQUOTA' as const),
    root: mailbox,
    limits: fc.array(fc.record({ resource: upperAtom, limit: fc.nat() }), { maxLength: 3 }),
  }),
  fc.record({ name: fc.constant('COMPRESS' as const), mechanism: fc.constant('DEFLATE') }),
);

// Tags: ASTRING-CHAR except "+", including "]" which atoms lack.
const tag = fc.string({ unit: fc.constantFrom(...'aZ09.-_!#]&~\'$'.split('')), minLength: 1, maxLength: 6 });
const command: fc.Arbitrary<Command> = fc.tuple(tag, body).map(([t, b]) => ({ ...b, tag: t }) as Command);

// Commands after which the connection changes mode (line mode, TLS, compression) end a stream.
const MODE_CHANGERS = new Set(['IDLE', 'AUTHENTICATE', 'STARTTLS', 'COMPRESS']);
const streamable = command.filter((c) => !MODE_CHANGERS.has(c.name));

/** Feeds bytes to a fresh parser in `chunk`-sized pieces and returns every command it yields. */
function parseAll(bytes: Buffer, chunk: number): Command[] {
  const p = new CommandParser();
  const out: Command[] = [];
  for (let i = 0; i < bytes.length; i += chunk) {
    p.push(bytes.subarray(i, i + chunk));
    for (;;) {
      const ev = p.next();
      if (!ev) break;
      if (ev.kind === 'continue') continue;
      if (ev.kind === 'command') out.push(ev.command);
      else throw new Error(`parser event ${ev.kind}: ${JSON.stringify(ev)}`);
    }
  }
  return out;
}

const ALL_NAMES = [
  'CAPABILITY', 'NOOP', 'LOGOUT', 'STARTTLS', 'IDLE', 'CHECK', 'CLOSE', 'UNSELECT', 'NAMESPACE', 'LOGIN', 'AUTHENTICATE',
  'ENABLE', 'ID', 'SELECT', 'EXAMINE', 'CREATE', 'DELETE', 'SUBSCRIBE', 'UNSUBSCRIBE', 'RENAME', 'LIST', 'LSUB', 'STATUS',
  'APPEND', 'EXPUNGE', 'SEARCH', 'FETCH', 'STORE', 'COPY', 'MOVE', 'SORT', 'THREAD', 'GETQUOTA', 'GETQUOTAROOT', 'SETQUOTA',
  'COMPRESS',
];
const ALL_SEARCH_TYPES = [
  'all', 'and', 'or', 'not', 'flag', 'seq', 'uid', 'date', 'size', 'header', 'body', 'text', 'modseq', 'older', 'younger',
  'savedatesupported', 'emailid', 'threadid',
];
const ALL_FETCH_TYPES = [
  'UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT',
  'MODSEQ', 'EMAILID', 'THREADID', 'SAVEDATE', 'BODY[]', 'BINARY[]', 'BINARY.SIZE',
];

function collectSearchTypes(k: SearchKey, into: Set<string>): void {
  into.add(k.type);
  if (k.type === 'and') for (const x of k.keys) collectSearchTypes(x, into);
  else if (k.type === 'or') {
    collectSearchTypes(k.left, into);
    collectSearchTypes(k.right, into);
  } else if (k.type === 'not') collectSearchTypes(k.key, into);
}

describe('the command arbitrary', () => {
  it('covers every command, search key and fetch item kind', () => {
    const names = new Set<string>();
    const keys = new Set<string>();
    const items = new Set<string>();
    for (const c of fc.sample(command, { numRuns: 3000, seed: 1 })) {
      names.add(c.name);
      if (c.name === 'SEARCH') collectSearchTypes(c.criteria, keys);
      if (c.name === 'FETCH') for (const it of c.items) items.add(it.type);
    }
    expect([...names].sort()).toEqual([...ALL_NAMES].sort());
    expect([...keys].sort()).toEqual([...ALL_SEARCH_TYPES].sort());
    expect([...items].sort()).toEqual([...ALL_FETCH_TYPES].sort());
  });
});

describe('formatCommand → CommandParser round trip', () => {
  it('gives back every command, with LITERAL+ and with synchronizing literals, whole or in pieces', () => {
    fc.assert(
      fc.property(command, fc.boolean(), fc.integer({ min: 1, max: 64 }), (cmd, literalPlus, chunk) => {
        const bytes = formatCommand(cmd, { literalPlus });
        const whole = parseAll(bytes, bytes.length);
        expect(whole).toHaveLength(1);
        expect(whole[0]).toEqual(cmd);
        const pieces = parseAll(bytes, chunk);
        expect(pieces).toHaveLength(1);
        expect(pieces[0]).toEqual(cmd);
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps several commands apart in one stream', () => {
    fc.assert(
      fc.property(fc.array(streamable, { minLength: 2, maxLength: 5 }), (cmds) => {
        const bytes = Buffer.concat(cmds.map((c) => formatCommand(c, { literalPlus: true })));
        expect(parseAll(bytes, bytes.length)).toEqual(cmds);
      }),
      { numRuns: 300 },
    );
  });
});
