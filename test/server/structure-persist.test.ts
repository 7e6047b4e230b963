/**
 * Persisted ENVELOPE/BODYSTRUCTURE/BODY answers (src/server/fetch/stored.ts) on the sqlite store:
 * computed at APPEND, served after a restart of the server without reading a message body, equal
 * byte for byte to what parsing gives, and written back lazily for messages stored without them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { structureCache } from '../../src/server/fetch/cache.js';
import { layoutCache } from '../../src/server/search/layout.js';
import { Session } from '../../src/server/session.js';
import { decodeAnswers, decodeLayout, encodeAnswers, computeAnswers, STRUCTURE_FORMAT } from '../../src/server/fetch/stored.js';
import { append, loggedIn, sampleMessage, startTestServer, type TestClient, type TestServer } from './helpers.js';

const FETCH = 'FETCH 1:* (UID ENVELOPE BODYSTRUCTURE BODY)';

const messages = [
  sampleMessage('Plain', 'Hello.'),
  [
    'From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>',
    'To: a@example.org, "Group" <g@example.org>',
    'Subject: Grüße aus Köln',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Schöne Grüße',
    '--b1',
    'Content-Type: message/rfc822',
    '',
    'Subject: inner',
    'From: x@example.org',
    '',
    'inner body',
    '--b1--',
    '',
  ].join('\r\n'),
  'Subject: no from, no date\r\n\r\nbody\r\n',
];

let dir: string;
let file: string;
let server: TestServer | undefined;
let store: SqliteStore | undefined;
let client: TestClient | undefined;

async function start(): Promise<void> {
  store = new SqliteStore(file, { scryptLn: 4 });
  if (!(await store.users.listUsers()).includes('test1')) await store.users.addUser('test1', 'pass');
  server = await startTestServer({ store });
  client = await loggedIn(server.port);
}

/** Stop the server and close the file; the process-wide cache is cleared, as a new process would have it. */
async function stop(): Promise<void> {
  client?.close();
  await server?.close();
  await store?.close();
  client = undefined;
  server = undefined;
  store = undefined;
  structureCache.clear();
  layoutCache.clear();
}

/** Spies on the message-byte reads of the sqlite handles. */
async function spyReads(): Promise<{ calls(): number; restore(): void }> {
  const h = await (await store!.openUser('test1')).open('INBOX');
  const proto = Object.getPrototypeOf(h) as { read: unknown; readBatch: unknown };
  const read = vi.spyOn(proto as { read: (uid: number) => Promise<Buffer | null> }, 'read');
  const readBatch = vi.spyOn(proto as { readBatch: (uids: number[]) => Promise<Map<number, Buffer>> }, 'readBatch');
  return {
    calls: () => read.mock.calls.length + readBatch.mock.calls.length,
    restore: () => {
      read.mockRestore();
      readBatch.mockRestore();
    },
  };
}

async function fetchAll(): Promise<string[]> {
  expect((await client!.command('SELECT INBOX')).tagged).toMatch(/^OK/);
  const r = await client!.command(FETCH);
  expect(r.tagged).toMatch(/^OK/);
  expect(r.untagged).toHaveLength(messages.length);
  return r.untagged;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imapkit-structure-'));
  file = join(dir, 'mail.sqlite');
  structureCache.clear();
});
afterEach(async () => {
  await stop();
  await rm(dir, { recursive: true, force: true });
});

describe('persisted structure answers (sqlite)', () => {
  it('a first SEARCH TEXT after a restart uses the search layouts stored at APPEND: nothing parsed, same answers', async () => {
    await start();
    for (const m of messages) expect((await append(client!, 'INBOX', m)).tagged).toMatch(/^OK/);
    expect((await client!.command('SELECT INBOX')).tagged).toMatch(/^OK/);
    const searches = ['SEARCH TEXT hello', 'SEARCH TEXT inner', 'SEARCH BODY inner', 'SEARCH TEXT example.org', 'SEARCH BODY example.org', 'SEARCH TEXT nowhere'];
    const before: string[] = [];
    for (const q of searches) before.push((await client!.command(q)).untagged.join('|'));
    expect(before).toEqual(['* SEARCH 1', '* SEARCH 2', '* SEARCH 2', '* SEARCH 1 2', '* SEARCH', '* SEARCH']);
    await stop();

    await start();
    expect((await client!.command('SELECT INBOX')).tagged).toMatch(/^OK/);
    const parsed = vi.spyOn(Session.prototype, 'message');
    try {
      const after: string[] = [];
      for (const q of searches) after.push((await client!.command(q)).untagged.join('|'));
      expect(after).toEqual(before);
      expect(parsed).not.toHaveBeenCalled();
      // A key the layout cannot answer still parses.
      expect((await client!.command('SEARCH HEADER SUBJECT inner')).untagged).toEqual(['* SEARCH']);
      expect(parsed).toHaveBeenCalled();
    } finally {
      parsed.mockRestore();
    }
  });

  it('a cold FETCH after a restart answers from the store, without reading bodies, with the bytes a parse gives', async () => {
    await start();
    for (const m of messages) expect((await append(client!, 'INBOX', m)).tagged).toMatch(/^OK/);
    await stop();

    // Restart: the answers APPEND stored are served without one read.
    await start();
    let spy = await spyReads();
    const fromStore = await fetchAll();
    expect(spy.calls()).toBe(0);
    spy.restore();
    await stop();

    // The same file without entries (as a database written before they existed): FETCH parses...
    const db = new Database(file);
    expect(db.prepare('SELECT count(*) FROM body_structure').pluck().get()).toBe(messages.length);
    db.exec('DELETE FROM body_structure');
    db.close();
    await start();
    spy = await spyReads();
    const parsed = await fetchAll();
    expect(spy.calls()).toBeGreaterThan(0);
    spy.restore();
    expect(parsed).toEqual(fromStore);
    await stop();

    // ...and wrote them back: the next cold FETCH reads nothing again.
    await start();
    spy = await spyReads();
    expect(await fetchAll()).toEqual(parsed);
    expect(spy.calls()).toBe(0);
    spy.restore();
  });

  it('an entry of another format version is ignored, recomputed and replaced', async () => {
    await start();
    for (const m of messages) await append(client!, 'INBOX', m);
    const reference = await fetchAll();
    await stop();
    const db = new Database(file);
    const stale = encodeAnswers({ ENVELOPE: { atom: 'WRONG' }, BODYSTRUCTURE: { atom: 'WRONG' }, BODY: { atom: 'WRONG' } })!;
    stale.write(String(STRUCTURE_FORMAT + 1), 3, 'latin1');
    db.prepare('UPDATE body_structure SET data = ?').run(stale);
    db.close();
    await start();
    expect(await fetchAll()).toEqual(reference);
    await stop();
    const check = new Database(file, { readonly: true });
    const blobs = check.prepare('SELECT data FROM body_structure').pluck().all() as Buffer[];
    check.close();
    expect(blobs).toHaveLength(messages.length);
    for (const b of blobs) expect(decodeAnswers(b)).toBeDefined();
  });

  it('the stored form round-trips atoms, strings, literals, NIL and nested lists', () => {
    const raw = Buffer.from(messages[1]!, 'utf8');
    const { answers, layout } = computeAnswers(raw);
    const blob = encodeAnswers(answers)!;
    expect(blob.subarray(0, 4).toString('latin1')).toBe(`IKS${STRUCTURE_FORMAT}`);
    expect(decodeAnswers(blob)).toEqual(answers);
    expect(decodeLayout(blob)).toBeUndefined();
    // With the search layout after the answers: both read back.
    const withLayout = encodeAnswers(answers, layout)!;
    expect(decodeAnswers(withLayout)).toEqual(answers);
    expect(decodeLayout(withLayout)).toEqual(layout);
    expect(layout.plainHeaders.length + layout.otherHeaders.length).toBeGreaterThan(0);
    // A damaged layout frame reads as no layout (and as no answers: the entry is recomputed).
    const bad = Buffer.from(withLayout);
    bad[bad.length - 2] = 0x7b;
    expect(decodeLayout(bad)).toBeUndefined();
    const layoutFrame = (json: string): Buffer => Buffer.concat([Buffer.from([0x6c, 0, 0, 0, Buffer.byteLength(json)]), Buffer.from(json)]);
    expect(decodeLayout(Buffer.concat([blob, layoutFrame('[[],[],[],[]]')]))).toEqual({ plainHeaders: [], otherHeaders: [], plainBodies: [], otherBodies: [] });
    expect(decodeLayout(Buffer.concat([blob, layoutFrame('[[],[],[]')]))).toBeUndefined();
    expect(decodeLayout(Buffer.concat([blob, layoutFrame('[[5,2],[],[],[]]')]))).toBeUndefined();
    expect(decodeLayout(Buffer.concat([blob, layoutFrame('[[],[],[],[[1,2,"uuencode",null]]]')]))).toBeUndefined();
    // Damaged or hostile entries read as missing: nothing stored may break a response line.
    const frame = (kind: string, body: string): Buffer => {
      const head = Buffer.alloc(5);
      head.write(kind, 0, 'latin1');
      head.writeUInt32BE(Buffer.byteLength(body), 1);
      return Buffer.concat([head, Buffer.from(body)]);
    };
    const prefix = Buffer.from(`IKS${STRUCTURE_FORMAT}\n`);
    const ok = frame('w', '(NIL)');
    expect(decodeAnswers(Buffer.concat([prefix, ok, ok, ok]))).toEqual({ ENVELOPE: { atom: '(NIL)', checked: true }, BODYSTRUCTURE: { atom: '(NIL)', checked: true }, BODY: { atom: '(NIL)', checked: true } });
    expect(decodeAnswers(Buffer.concat([prefix, ok, ok, frame('w', 'x\r\n* BYE')]))).toBeUndefined();
    expect(decodeAnswers(Buffer.concat([prefix, ok, ok, frame('j', '{"a":"x\\r\\n* BYE"}')]))).toBeUndefined();
    expect(decodeAnswers(Buffer.concat([prefix, ok, ok, frame('j', '{not json')]))).toBeUndefined();
    expect(decodeAnswers(Buffer.concat([prefix, ok, ok]))).toBeUndefined();
    expect(decodeAnswers(Buffer.concat([prefix, ok, ok, ok, ok]))).toBeUndefined();
    expect(decodeAnswers(Buffer.concat([prefix, ok, ok, ok]).subarray(0, -1))).toBeUndefined();
    expect(decodeAnswers(Buffer.alloc(0))).toBeUndefined();
  });
});
