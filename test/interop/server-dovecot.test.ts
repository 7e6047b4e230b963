/**
 * One scripted session (a fixed corpus, test/fixtures/corpus.ts) is run over raw sockets, with the
 * same client code, against a private Dovecot and against `imapkit serve`. Tagged results and
 * untagged data must agree once what legitimately differs is normalised: UIDVALIDITY values (also
 * in APPENDUID/COPYUID and STATUS), the human text after a status, capability lists, and the order
 * of untagged responses that RFC 9051 leaves free. Every remaining difference must be listed in
 * KNOWN_DIFFERENCES.md, section "Server sessions", as "- `<step>` `<difference>`: reason"; FETCH
 * differences in MIME items of a corpus message may instead be listed in its MIME section. The
 * test asserts the set of differences equals the documented set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCorpus } from '../fixtures/corpus.js';
import { RawImapClient, type ImapResponse, type ImapValue } from './helpers/raw-imap.js';
import { havePeer, startDovecot, startImapkit, tempDir, type DovecotServer, type ImapkitServer } from './helpers/server-peers.js';

const haveDovecot = havePeer('dovecot', 'the scripted session comparison with Dovecot is');
const KNOWN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'KNOWN_DIFFERENCES.md');
const SECTION = '## Server sessions (imapkit serve vs Dovecot)';
/** Corpus messages in the session: every kind once, some twice. */
const COUNT = 40;

/** One command of the script. */
interface Step {
  id: string;
  parts: Array<string | Buffer>;
}

/** What one step produced, normalised. */
interface Outcome {
  tagged: string;
  /** Untagged responses other than FETCH, normalised, sorted (their order is not the point). */
  untagged: string[];
  /** FETCH data per "UID or seq" and item. */
  fetch: Map<string, string>;
  /** `* n RECENT` responses (IMAP4rev2 dropped \Recent: compared apart). */
  recent: string[];
}

/**
 * EXPUNGE responses in the order sent, as the sequence numbers the messages had before the
 * command: "3 EXPUNGE, 3 EXPUNGE" and "4 EXPUNGE, 3 EXPUNGE" both remove original 3 and 4.
 */
function originalSeqs(expunges: number[]): number[] {
  const removed: number[] = [];
  for (const n of expunges) {
    let x = n;
    for (const r of removed) if (r <= x) x++;
    removed.push(x);
    removed.sort((a, b) => a - b);
  }
  return removed;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const appendDate = (i: number): string => `"${String((i % 28) + 1).padStart(2, '0')}-${MONTHS[i % 12]}-2023 ${String(i % 24).padStart(2, '0')}:15:30 +0000"`;

function script(corpus: Array<{ name: string; raw: Buffer }>): Step[] {
  const s: Step[] = [];
  const add = (id: string, ...parts: Array<string | Buffer>): void => void s.push({ id, parts });
  add('capability', 'CAPABILITY');
  add('login', 'LOGIN test1 pass');
  add('enable unknown', 'ENABLE X-NO-SUCH-EXTENSION');
  add('namespace', 'NAMESPACE');
  add('create Work', 'CREATE Work');
  add('create Work/Sub', 'CREATE Work/Sub');
  add('create existing', 'CREATE Work');
  add('create utf7', 'CREATE "Entw&APw-rfe"');
  add('list Work*', 'LIST "" Work*');
  add('list %', 'LIST "" "Work/%"');
  add('list INBOX', 'LIST "" INBOX');
  add('list utf7', 'LIST "" "Entw*"');
  add('subscribe', 'SUBSCRIBE Work');
  add('lsub', 'LSUB "" "Work*"');
  corpus.forEach((m, i) => {
    const flags = ['', '(\\Seen) ', '(\\Flagged \\Seen) ', '($Label1) ', '(\\Answered) '][i % 5];
    add(`append ${m.name}`, `APPEND INBOX ${flags}${appendDate(i)} `, m.raw);
  });
  add('append to missing', 'APPEND Nowhere ', Buffer.from('Subject: x\r\n\r\ny\r\n'));
  add('status INBOX', 'STATUS INBOX (MESSAGES UIDNEXT UNSEEN UIDVALIDITY)');
  add('select INBOX', 'SELECT INBOX');
  add('fetch basics', 'FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)');
  add('fetch envelope', 'FETCH 1:* (UID ENVELOPE)');
  add('fetch bodystructure', 'FETCH 1:* (UID BODYSTRUCTURE)');
  add('fetch body', 'FETCH 1:* (UID BODY)');
  add('fetch source', 'FETCH 1:* (UID BODY.PEEK[])');
  add('fetch sections', 'FETCH 1:8 (UID BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])');
  add('fetch partial', 'FETCH 1:4 (UID BODY.PEEK[]<10.20> BODY.PEEK[TEXT]<0.5>)');
  add('fetch rfc822.header', 'FETCH 2 (UID RFC822.HEADER)');
  add('fetch sets seen', 'FETCH 4 (UID BODY[TEXT])');
  add('uid fetch range', 'UID FETCH 5:7 (FLAGS)');
  add('uid fetch beyond', 'UID FETCH 1000:* (FLAGS)');
  add('search all', 'SEARCH ALL');
  add('search seen', 'SEARCH SEEN');
  add('search unseen', 'SEARCH UNSEEN');
  add('search flagged or answered', 'SEARCH OR FLAGGED ANSWERED');
  add('search keyword', 'SEARCH KEYWORD $Label1');
  add('search text', 'SEARCH TEXT report');
  add('search body', 'SEARCH BODY meeting');
  add('search subject', 'SEARCH SUBJECT the');
  add('search from', 'SEARCH FROM alice');
  add('search header', 'SEARCH HEADER Content-Type multipart');
  add('search larger', 'SEARCH LARGER 5000');
  add('search smaller not', 'SEARCH NOT SMALLER 2000');
  add('search since', 'SEARCH SINCE 1-Jun-2023');
  add('search sentbefore', 'SEARCH SENTBEFORE 1-Jan-2020');
  add('search uid', 'SEARCH UID 3:9 NOT DELETED');
  add('uid search', 'UID SEARCH 10:* SEEN');
  add('search charset', 'SEARCH CHARSET UTF-8 TEXT ', Buffer.from('Grüße', 'utf8'));
  add('search bad charset', 'SEARCH CHARSET X-NOPE ALL');
  add('esearch', 'SEARCH RETURN (MIN MAX COUNT) UNSEEN');
  add('sort subject', 'SORT (SUBJECT) UTF-8 ALL');
  add('sort reverse date', 'SORT (REVERSE DATE) UTF-8 ALL');
  add('sort arrival', 'SORT (ARRIVAL) UTF-8 SEEN');
  add('sort size', 'SORT (SIZE) UTF-8 ALL');
  add('sort from', 'SORT (FROM) UTF-8 ALL');
  add('thread references', 'THREAD REFERENCES UTF-8 ALL');
  add('thread orderedsubject', 'THREAD ORDEREDSUBJECT UTF-8 ALL');
  add('store add', 'STORE 1:5 +FLAGS (\\Flagged)');
  add('store replace', 'STORE 6 FLAGS (\\Seen $Work)');
  add('store remove silent', 'STORE 2 -FLAGS.SILENT (\\Flagged)');
  add('uid store', 'UID STORE 7:8 +FLAGS (\\Draft)');
  add('store beyond', 'STORE 1000 +FLAGS (\\Seen)');
  add('copy', 'COPY 1:10 Work');
  add('uid copy', 'UID COPY 11,13 Work/Sub');
  add('copy to missing', 'COPY 1 Nowhere');
  add('move', 'MOVE 12:14 Work/Sub');
  add('uid move', 'UID MOVE 20 Work');
  add('store deleted', 'STORE 3,5 +FLAGS (\\Deleted)');
  add('expunge', 'EXPUNGE');
  add('uid expunge', 'UID EXPUNGE 1:100');
  add('store deleted again', 'UID STORE 30 +FLAGS.SILENT (\\Deleted)');
  add('uid expunge one', 'UID EXPUNGE 30');
  add('check', 'CHECK');
  add('status Work', 'STATUS Work (MESSAGES UIDNEXT UNSEEN)');
  add('status Work/Sub', 'STATUS Work/Sub (MESSAGES UIDNEXT UNSEEN)');
  add('examine Work', 'EXAMINE Work');
  add('fetch Work', 'FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)');
  add('store read-only', 'STORE 1 +FLAGS (\\Deleted)');
  add('unselect', 'UNSELECT');
  add('rename', 'RENAME Work Archive');
  add('list after rename', 'LIST "" "Archive*"');
  add('list old name', 'LIST "" "Work*"');
  add('rename to existing', 'RENAME Archive INBOX');
  add('rename missing', 'RENAME Nowhere Elsewhere');
  add('delete child', 'DELETE Archive/Sub');
  add('delete', 'DELETE Archive');
  add('delete missing', 'DELETE Archive');
  add('delete utf7', 'DELETE "Entw&APw-rfe"');
  add('select missing', 'SELECT Nowhere');
  add('logout', 'LOGOUT');
  return s;
}

/** Canonical text of a value: strings by their bytes whatever their form (quoted or literal). */
function canon(v: ImapValue, sortAtoms = false): string {
  if (v === null) return 'NIL';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const items = v.map((x) => canon(x));
    // flag lists: set semantics
    if (sortAtoms && v.every((x) => typeof x === 'string')) items.sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
    return `(${items.join(' ')})`;
  }
  return JSON.stringify(v.bytes.toString('latin1'));
}

/** Response codes without values that are per-server by nature. */
function normCode(code: string | null): string {
  if (code === null) return '';
  const c = code
    .replace(/^CAPABILITY .*/i, 'CAPABILITY <caps>')
    .replace(/^(UIDVALIDITY|APPENDUID|COPYUID) \d+/i, '$1 <uidvalidity>')
    // per-server counters and identifiers, like UIDVALIDITY
    .replace(/^(HIGHESTMODSEQ) \d+/i, '$1 <modseq>')
    .replace(/^(MAILBOXID) \(.*\)$/i, '$1 (<id>)');
  return ` [${c}]`;
}

function normTagged(r: ImapResponse): string {
  return `${r.status}${normCode(r.code)}`;
}

function normUntagged(values: ImapValue[]): string {
  const head = typeof values[0] === 'string' ? values[0].toUpperCase() : '';
  if (['OK', 'NO', 'BAD', 'BYE', 'PREAUTH'].includes(head)) return `${head}${normCode(values[1] as string | null)}`;
  if (head === 'CAPABILITY') return 'CAPABILITY <caps>';
  if (head === 'LIST' || head === 'LSUB') return `${head} ${canon(values[1]!, true)} ${values.slice(2).map((v) => canon(v)).join(' ')}`;
  if (head === 'FLAGS') return `FLAGS ${canon(values[1]!, true)}`;
  if (head === 'STATUS' && Array.isArray(values[2])) {
    // the order of STATUS items is the server's choice
    const list = values[2];
    const pairs: string[] = [];
    for (let i = 0; i + 1 < list.length; i += 2) pairs.push(`${canon(list[i]!)} ${canon(list[i + 1]!)}`);
    pairs.sort();
    return `STATUS ${canon(values[1]!)} (${pairs.join(' ')})`.replace(/UIDVALIDITY \d+/, 'UIDVALIDITY <uidvalidity>');
  }
  return values
    .map((v) => canon(v))
    .join(' ')
    .replace(/UIDVALIDITY \d+/, 'UIDVALIDITY <uidvalidity>');
}

async function runSession(port: number, steps: Step[]): Promise<Map<string, Outcome>> {
  const c = await RawImapClient.connect(port);
  const out = new Map<string, Outcome>();
  try {
    for (const step of steps) {
      const r = await c.command(step.parts, { literalPlus: true });
      const untagged: string[] = [];
      const fetch = new Map<string, string>();
      const expunges: number[] = [];
      const recent: string[] = [];
      for (const u of r.untagged) {
        const v = u.values;
        const what = typeof v[1] === 'string' ? v[1].toUpperCase() : '';
        if (what === 'EXPUNGE') {
          expunges.push(Number(v[0]));
          continue;
        }
        if (what === 'RECENT') {
          recent.push(`${canon(v[0]!)} RECENT`);
          continue;
        }
        if (v[1] === 'FETCH' && Array.isArray(v[2])) {
          const list = v[2];
          const uid = list.findIndex((x, i) => i % 2 === 0 && typeof x === 'string' && x.toUpperCase() === 'UID');
          const who = uid >= 0 ? `uid ${canon(list[uid + 1]!)}` : `seq ${canon(v[0]!)}`;
          for (let i = 0; i + 1 < list.length; i += 2) {
            const item = canon(list[i]!).toUpperCase();
            fetch.set(`${who} ${item}`, canon(list[i + 1]!, item === 'FLAGS'));
          }
          continue;
        }
        untagged.push(normUntagged(v));
      }
      if (expunges.length) untagged.push(`EXPUNGED ${originalSeqs(expunges).join(',')}`);
      untagged.sort();
      out.set(step.id, { tagged: normTagged(r), untagged, fetch, recent });
    }
  } finally {
    await c.close();
  }
  return out;
}

/** One key for every difference that \Recent (gone in IMAP4rev2) alone explains. */
const RECENT_KEY = '\\Recent flag and RECENT responses';

/** Keep a difference key readable and stable. */
const short = (s: string): string => (s.length > 100 && !process.env.SHOW_FULL ? `${s.slice(0, 100)}…` : s);

/**
 * The differences between the two sessions, as "`step` `what`" keys: tagged results, untagged
 * responses only one side sent ("+" imapkit only, "-" Dovecot only), FETCH items that differ.
 */
function differences(ours: Map<string, Outcome>, theirs: Map<string, Outcome>, names: Map<string, string>): { keys: Set<string>; detail: Map<string, string> } {
  const keys = new Set<string>();
  const detail = new Map<string, string>();
  const note = (step: string, what: string, d: string): void => {
    const k = `\`${step}\` \`${short(what)}\``;
    keys.add(k);
    detail.set(k, d);
  };
  const noRecent = (flags: string | undefined): string | undefined => flags?.replace(/ ?\\Recent\b/i, '').replace('( ', '(');
  for (const [step, a] of ours) {
    const b = theirs.get(step)!;
    if (a.recent.join() !== b.recent.join()) note('*', RECENT_KEY, `${step}: imapkit ${a.recent.join()} / dovecot ${b.recent.join()}`);
    if (a.tagged !== b.tagged) note(step, `tagged ${a.tagged} vs ${b.tagged}`, '');
    const ours = [...a.untagged];
    const rest = [...b.untagged];
    // SEARCH results in INBOX (sequence numbers follow the APPEND order there): name the messages
    // one side found and the other did not, so the key does not depend on the rest of the corpus
    const x = ours.findIndex((l) => /^SEARCH\b/.test(l));
    const y = rest.findIndex((l) => /^SEARCH\b/.test(l));
    if (step.startsWith('search') && x >= 0 && y >= 0 && ours[x] !== rest[y]) {
      const set = (l: string): Set<string> => new Set(l.split(' ').slice(1));
      const [sa, sb] = [set(ours[x]!), set(rest[y]!)];
      const name = (n: string): string => names.get(n) ?? `seq ${n}`;
      const only = [...[...sa].filter((n) => !sb.has(n)).map((n) => `+${name(n)}`), ...[...sb].filter((n) => !sa.has(n)).map((n) => `-${name(n)}`)];
      note(step, `SEARCH ${only.join(' ')}`, `imapkit: ${ours[x]}\ndovecot: ${rest[y]}`);
      ours.splice(x, 1);
      rest.splice(y, 1);
    }
    for (const line of ours) {
      const i = rest.indexOf(line);
      if (i >= 0) rest.splice(i, 1);
      else note(step, `+ ${line}`, line);
    }
    for (const line of rest) note(step, `- ${line}`, line);
    const items = new Set([...a.fetch.keys(), ...b.fetch.keys()]);
    for (const key of items) {
      const x = a.fetch.get(key);
      const y = b.fetch.get(key);
      if (x === y) continue;
      if (key.endsWith(' FLAGS') && x === noRecent(y)) {
        note('*', RECENT_KEY, `${step} ${key}: dovecot ${y}`);
        continue;
      }
      // name corpus messages (INBOX UIDs follow the APPEND order) so the MIME section can cover them
      const [, uid, item] = /^uid (\d+) (.*)$/.exec(key) ?? [];
      const name = step.startsWith('fetch') && uid ? names.get(uid) : undefined;
      note(step, name ? `${name} ${item}` : key, `imapkit: ${short(x ?? '(missing)')}\ndovecot: ${short(y ?? '(missing)')}`);
    }
  }
  return { keys, detail };
}

/** Entries "- `a` `b`: reason" of one section of KNOWN_DIFFERENCES.md, as "`a` `b`". */
function documented(heading: string): Set<string> {
  const text = readFileSync(KNOWN, 'utf8');
  const start = text.indexOf(heading);
  if (start < 0) return new Set();
  const end = text.indexOf('\n## ', start + heading.length);
  const body = text.slice(start, end < 0 ? undefined : end);
  const out = new Set<string>();
  for (const m of body.matchAll(/^- (`[^`]+` `[^`]+`):/gm)) out.add(m[1]!);
  return out;
}

describe.runIf(haveDovecot)('the same scripted session against Dovecot and imapkit serve', () => {
  let tmp: ReturnType<typeof tempDir>;
  let dovecot: DovecotServer;
  let imapkit: ImapkitServer;
  beforeAll(async () => {
    tmp = tempDir('session-vs-dovecot');
    [dovecot, imapkit] = await Promise.all([startDovecot(path.join(tmp.dir, 'dovecot')), startImapkit(tmp.dir)]);
  });
  afterAll(async () => {
    await dovecot?.stop();
    await imapkit?.stop();
    tmp?.remove();
  });

  it('agrees with Dovecot except where KNOWN_DIFFERENCES.md says why', async () => {
    const corpus = generateCorpus(COUNT);
    const steps = script(corpus);
    const [ours, theirs] = await Promise.all([runSession(imapkit.port, steps), runSession(dovecot.port, steps)]);
    // the sessions really ran: both stored the corpus and answered the FETCH of every message
    expect(theirs.get('select INBOX')!.untagged).toContain(`${COUNT} EXISTS`);
    expect(ours.get('fetch source')!.fetch.size).toBe(2 * COUNT);

    const names = new Map(corpus.map((m, i) => [String(i + 1), m.name]));
    const { keys, detail } = differences(ours, theirs, names);
    const mime = documented('## MIME');
    // a MIME item of a corpus message documented by the MIME golden test is covered there
    const found = [...keys].filter((k) => {
      const m = /^`fetch [^`]*` `(\S+) (\S.*)`$/.exec(k);
      if (!m) return true;
      const item = m[2]!.replace('BODY[', 'BODY.PEEK[');
      return !mime.has(`\`${m[1]}\` \`${m[2]}\``) && !mime.has(`\`${m[1]}\` \`${item}\``);
    });
    const expected = [...documented(SECTION)].sort();
    if (process.env.SHOW_DIFFERENCES) for (const k of found.sort()) console.log(`- ${k}: ${detail.get(k) ?? ''}`);
    expect(found.sort()).toEqual(expected);
  });
});
