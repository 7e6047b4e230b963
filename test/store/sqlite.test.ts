/**
 * SqliteStore specifics: persistence, several connections and processes on one file,
 * content-addressed bodies, bulk paths, pragmas.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { StoreError } from '../../src/store/contract.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const worker = fileURLToPath(new URL('./fixtures/sqlite-append-worker.ts', import.meta.url));

let dir: string;
let file: string;
const open: SqliteStore[] = [];
function newStore(): SqliteStore {
  const s = new SqliteStore(file, { scryptLn: 4 });
  open.push(s);
  return s;
}
function count(sql: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(sql).pluck().get() as number) ?? 0;
  } finally {
    db.close();
  }
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imapkit-sqlite-'));
  file = join(dir, 'sub', 'mail.sqlite');
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

describe('SqliteStore', () => {
  it('keeps everything across a reopen', async () => {
    const a = newStore();
    const u = await a.openUser('alice');
    await u.createMailbox('Work/Reports', '\\Archive');
    await u.setSubscribed('Work', true);
    const r = await u.append('Work/Reports', [{ data: Buffer.from('hello'), flags: ['\\Seen', 'Kw'], internalDate: new Date(1_600_000_000_000) }]);
    const st = await u.status('Work/Reports');
    await a.users.addUser('alice', 'pw');
    await a.close();

    const b = newStore();
    const u2 = await b.openUser('alice');
    const st2 = await u2.status('Work/Reports');
    expect(st2).toEqual(st);
    const boxes = await u2.listMailboxes();
    expect(boxes.find((x) => x.name === 'Work/Reports')!.specialUse).toBe('\\Archive');
    expect(boxes.find((x) => x.name === 'Work')!.subscribed).toBe(true);
    const h = await u2.open('Work/Reports');
    const [m] = await h.list();
    expect(m!.uid).toBe(r.destUids[0]);
    expect([...m!.flags].sort()).toEqual(['Kw', '\\Seen']);
    expect(m!.internalDate.getTime()).toBe(1_600_000_000_000);
    expect((await h.read(m!.uid))!.toString()).toBe('hello');
    expect(await b.users.verify('alice', 'pw')).toBe(true);
    // UIDVALIDITY uniqueness survives the reopen too.
    await u2.deleteMailbox('Work/Reports');
    await u2.createMailbox('Work/Reports');
    expect((await u2.status('Work/Reports')).uidValidity).not.toBe(st.uidValidity);
  });

  it('uses WAL and synchronous=FULL', async () => {
    newStore();
    const db = new Database(file);
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
    const s = newStore();
    // synchronous is per connection: read it through the store's own connection.
    const conn = (s as unknown as { e: { db: Database.Database } }).e.db;
    expect(conn.pragma('synchronous', { simple: true })).toBe(2);
  });

  it('two instances on one file append concurrently with unique UIDs and see each other', async () => {
    const a = newStore();
    const b = newStore();
    const ua = await a.openUser('alice');
    const ub = await b.openUser('alice');
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? ua : ub).append('INBOX', [{ data: Buffer.from(`m${i}`) }])),
    );
    const uids = results.flatMap((r) => r.destUids);
    expect(new Set(uids).size).toBe(40);
    expect((await ua.status('INBOX')).messages).toBe(40);
    expect((await ub.status('INBOX')).uidNext).toBe(41);
    const h = await ub.open('INBOX');
    await (await ua.open('INBOX')).updateFlags([1], { action: 'add', flags: ['\\Seen'] });
    expect((await h.get([1]))[0]!.flags).toEqual(['\\Seen']);
  });

  it('several processes appending at once get unique ascending UIDs', async () => {
    const s = newStore();
    await s.openUser('alice');
    const children = ['p1', 'p2', 'p3'].map((tag) =>
      run(process.execPath, ['--import', 'tsx', worker, file, 'alice', '25', tag], { cwd: root, timeout: 60_000 }),
    );
    const outputs = await Promise.all(children);
    const perProcess = outputs.map((o) => JSON.parse(o.stdout) as number[]);
    for (const uids of perProcess) {
      expect(uids).toHaveLength(25);
      for (let i = 1; i < uids.length; i++) expect(uids[i]).toBeGreaterThan(uids[i - 1]!);
    }
    const all = perProcess.flat();
    expect(new Set(all).size).toBe(75);
    const u = await s.openUser('alice');
    const list = await (await u.open('INBOX')).list();
    expect(list.map((m) => m.uid)).toEqual([...all].sort((x, y) => x - y));
    const modSeqs = new Set(list.map((m) => m.modSeq));
    expect(modSeqs.size).toBe(75);
  });

  it('stores identical bytes once and frees them with the last reference', async () => {
    const s = newStore();
    const u = await s.openUser('alice');
    await u.createMailbox('Copy');
    const body = Buffer.alloc(10_000, 'x');
    await u.append('INBOX', [{ data: body, flags: ['\\Deleted'] }, { data: body }]);
    const h = await u.open('INBOX');
    await h.copy([1, 2], 'Copy');
    expect(count('SELECT count(*) FROM body_data')).toBe(1);
    expect(count('SELECT refs FROM bodies')).toBe(4);
    await h.expunge(undefined);
    await h.move([2], 'Copy');
    expect(count('SELECT refs FROM bodies')).toBe(3);
    await u.deleteMailbox('Copy');
    expect(count('SELECT count(*) FROM body_data')).toBe(0);
    expect(count('SELECT count(*) FROM bodies')).toBe(0);
  });

  it('bulk paths: 50,000 messages listed in one call, 10,000 flag changes in one transaction', async () => {
    const s = newStore();
    const u = await s.openUser('bulk');
    const r = await u.append(
      'INBOX',
      Array.from({ length: 50_000 }, (_, i) => ({ data: Buffer.from(`Subject: ${i}\r\n\r\n${i}\r\n`) })),
    );
    expect(r.destUids[49_999]).toBe(50_000);
    const h = await u.open('INBOX');
    const list = await h.list();
    expect(list).toHaveLength(50_000);
    expect(list[12_345]!.uid).toBe(12_346);
    const before = (await h.status()).highestModSeq;
    const uids = Array.from({ length: 10_000 }, (_, i) => i * 5 + 1);
    const res = await h.updateFlags(uids, { action: 'add', flags: ['\\Seen', 'Bulk'] });
    expect(res.updated).toHaveLength(10_000);
    const st = await h.status();
    expect(st.highestModSeq).toBe(before + 1n);
    expect(st.unseen).toBe(40_000);
    const ch = await h.changesSince(before);
    expect(ch.changed.map((m) => m.uid)).toEqual(uids);
  });

  it('refuses a database written by a newer schema', async () => {
    const s = newStore();
    await s.close();
    const db = new Database(file);
    db.prepare("UPDATE meta SET value = '999' WHERE key = 'schema_version'").run();
    db.close();
    expect(() => new SqliteStore(file)).toThrow(StoreError);
  });

  it('upgrades a schema-1 file in place: messages without structure entries keep working and get them', async () => {
    const a = newStore();
    const u = await a.openUser('alice');
    await u.append('INBOX', [{ data: Buffer.from('Subject: old\r\n\r\nold\r\n') }]);
    await a.close();
    // Make it a schema-1 file: no body_structure table, no trigger, version 1.
    const db = new Database(file);
    db.exec('DROP TRIGGER bodies_gc_structure; DROP TABLE body_structure');
    db.prepare("UPDATE meta SET value = '1' WHERE key = 'schema_version'").run();
    db.close();

    const b = newStore();
    const u2 = await b.openUser('alice');
    expect(count("SELECT value FROM meta WHERE key = 'schema_version'")).toBe('2');
    const h = await u2.open('INBOX');
    expect((await h.read(1))?.toString()).toContain('Subject: old');
    expect((await h.structures!([1])).size).toBe(0);
    await h.saveStructures!(new Map([[1, Buffer.from('entry')]]));
    expect((await h.structures!([1])).get(1)).toEqual(Buffer.from('entry'));
  });

  it('keeps one structure entry per body, shared by copies and freed with the body', async () => {
    const s = newStore();
    const u = await s.openUser('alice');
    await u.createMailbox('Copy');
    const body = Buffer.from('Subject: x\r\n\r\nx\r\n');
    await u.append('INBOX', [{ data: body, structure: Buffer.from('one'), flags: ['\\Deleted'] }]);
    const h = await u.open('INBOX');
    await h.copy([1], 'Copy');
    expect(count('SELECT count(*) FROM body_structure')).toBe(1);
    await h.expunge(undefined);
    expect(count('SELECT count(*) FROM body_structure')).toBe(1);
    await u.deleteMailbox('Copy');
    expect(count('SELECT count(*) FROM body_structure')).toBe(0);
    // A new body (which may reuse the freed id) starts without an entry.
    await u.append('INBOX', [{ data: Buffer.from('Subject: y\r\n\r\ny\r\n') }]);
    expect((await h.structures!([2])).size).toBe(0);
  });

  it('watch reaches sessions of the same instance only', async () => {
    const a = newStore();
    const b = newStore();
    const seenA: string[] = [];
    const seenB: string[] = [];
    (await a.openUser('alice')).watch((e) => seenA.push(e.kind));
    (await b.openUser('alice')).watch((e) => seenB.push(e.kind));
    await (await a.openUser('alice')).append('INBOX', [{ data: Buffer.from('x') }]);
    expect(seenA).toEqual(['append']);
    expect(seenB).toEqual([]);
  });
});
