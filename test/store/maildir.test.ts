/**
 * The maildir store beyond the shared contract: Dovecot's on-disk formats, files written by others,
 * locking, the cache, crash safety, watching new/, and mailbox names that must not escape.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreError, type ChangeEvent, type UserMailStore } from '../../src/store/contract.js';
import { MaildirStore, parseMaildirSpec } from '../../src/store/maildir/store.js';
import { parseUidlist } from '../../src/store/maildir/uidlist.js';
import { parseSubscriptions, serializeSubscriptions } from '../../src/store/maildir/subscriptions.js';
import { openStore } from '../../src/store/index.js';
import '../../src/store/maildir/register.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const msg = (n: number | string, extra = ''): Buffer => Buffer.from(`From: a@example.org\r\nSubject: m ${n}\r\n\r\nBody ${n}${extra}\r\n`);

let dir: string;
let stores: MaildirStore[];

function newStore(opts: Partial<ConstructorParameters<typeof MaildirStore>[0] & object> = {}): MaildirStore {
  const s = new MaildirStore({ path: path.join(dir, '%u', 'Maildir'), rescanIntervalMs: 100, warn: () => undefined, ...opts });
  stores.push(s);
  return s;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe(code);
}

/**
 * Start a child process that opens alice's Maildir as `u` and runs `body` (which prints "ready"
 * before it appends forever); resolves once it is ready.
 */
async function startAppender(name: string, body: string): Promise<ReturnType<typeof spawn>> {
  const script = path.join(dir, name);
  const storeModule = path.resolve(here, '../../src/store/maildir/store.ts');
  await fs.writeFile(
    script,
    `import { MaildirStore } from ${JSON.stringify(storeModule)};\n` +
      `const s = new MaildirStore({ path: ${JSON.stringify(path.join(dir, '%u', 'Maildir'))} });\n` +
      `const u = await s.openUser('alice');\n` +
      body,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: path.resolve(here, '../..'), stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', () => reject(new Error('appender exited early')));
  });
  return child;
}

async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imapkit-md-'));
  stores = [];
});
afterEach(async () => {
  for (const s of stores) await s.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('on-disk format (as Dovecot writes it)', () => {
  it('creates the Maildir++ layout, a version 3 dovecot-uidlist and mUTF-7 folder names', async () => {
    const u = await newStore().openUser('alice');
    const root = path.join(dir, 'alice', 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) expect((await fs.stat(path.join(root, sub))).isDirectory()).toBe(true);
    await u.status('INBOX');
    const ul = await fs.readFile(path.join(root, 'dovecot-uidlist'), 'utf8');
    expect(ul).toMatch(/^3 V\d+ N1 G[0-9a-f]{32}\n$/);
    await u.createMailbox('Entwürfe/Sub');
    const entries = (await fs.readdir(root)).sort();
    expect(entries).toContain('.Entw&APw-rfe');
    expect(entries).toContain('.Entw&APw-rfe.Sub');
    expect((await fs.stat(path.join(root, '.Entw&APw-rfe.Sub', 'maildirfolder'))).isFile()).toBe(true);
    // Every folder got its UIDVALIDITY from Dovecot's shared counter files.
    const counter = parseInt(await fs.readFile(path.join(root, 'dovecot-uidvalidity'), 'utf8'), 16);
    expect(entries).toContain(`dovecot-uidvalidity.${counter.toString(16).padStart(8, '0')}`);
    expect((await u.status('Entwürfe/Sub')).uidValidity).toBe(counter);
  });

  it('names files <unique>,S=,W= with :2, flag letters and keeps keywords in dovecot-keywords', async () => {
    const u = await newStore().openUser('alice');
    const root = path.join(dir, 'alice', 'Maildir');
    const date = new Date('2021-06-07T08:09:10Z');
    const data = msg(1);
    await u.append('INBOX', [
      { data, flags: ['\\Seen', '\\Flagged', 'Work', '$Label1'], internalDate: date },
      { data: msg(2) },
    ]);
    const cur = await fs.readdir(path.join(root, 'cur'));
    const nw = await fs.readdir(path.join(root, 'new'));
    expect(cur).toHaveLength(1);
    expect(nw).toHaveLength(1);
    expect(cur[0]).toMatch(new RegExp(`^\\d+\\.M\\d+P\\d+Q\\d+\\.[^,:]+,S=${data.length},W=${data.length}:2,FSab$`));
    // Flagless messages go to new/ without an info part, as Dovecot saves them.
    expect(nw[0]).toMatch(/^\d+\.M\d+P\d+Q\d+\.[^,:]+,S=\d+,W=\d+$/);
    expect(await fs.readFile(path.join(root, 'dovecot-keywords'), 'utf8')).toBe('0 Work\n1 $Label1\n');
    expect((await fs.stat(path.join(root, 'cur', cur[0]!))).mtime.getTime()).toBe(date.getTime());
    const parsed = parseUidlist(await fs.readFile(path.join(root, 'dovecot-uidlist'), 'utf8'));
    expect(parsed.ok && parsed.list.records.map((r) => [r.uid, r.base])).toEqual([
      [1, cur[0]!.split(':')[0]],
      [2, nw[0]],
    ]);
    // A flag change renames the file; the base (and so the UID) stays.
    const h = await u.open('INBOX');
    await h.updateFlags([2], { action: 'add', flags: ['\\Answered', 'Work'] });
    expect(await fs.readdir(path.join(root, 'new'))).toEqual([]);
    expect((await fs.readdir(path.join(root, 'cur'))).sort()).toEqual([cur[0], `${nw[0]}:2,Ra`].sort());
  });

  it('opens a Maildir written by Dovecot: UIDs, flags, keywords, dates, LF files served as CRLF', async () => {
    const root = path.join(dir, 'bob', 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) await fs.mkdir(path.join(root, sub), { recursive: true });
    const lf = 'From: x@y\nSubject: lf\n\nline one\nline two\n';
    const crlfLen = Buffer.byteLength(lf) + 5;
    const names = [`1700000000.M1P1.host,S=${Buffer.byteLength(lf)},W=${crlfLen}`, `1700000001.M2P1.host,S=${Buffer.byteLength(lf)},W=${crlfLen}`, '1700000002.M3P1.host'];
    await fs.writeFile(path.join(root, 'cur', `${names[0]}:2,RSb`), lf);
    await fs.writeFile(path.join(root, 'cur', `${names[1]}:2,PTa`), lf);
    await fs.writeFile(path.join(root, 'new', names[2]!), lf);
    await fs.utimes(path.join(root, 'cur', `${names[0]}:2,RSb`), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    await fs.writeFile(path.join(root, 'dovecot-keywords'), '0 Foo\n1 $Label1\n');
    // Dovecot appends records in place without touching N: the next UID is max(N, last + 1).
    await fs.writeFile(path.join(root, 'dovecot-uidlist'), `3 V1234 N1 G0123456789abcdef0123456789abcdef\n7 :${names[0]}\n9 W${crlfLen} :${names[1]}\n12 :${names[2]}\n`);
    const u = await newStore().openUser('bob');
    const st = await u.status('INBOX');
    expect(st).toMatchObject({ uidValidity: 1234, uidNext: 13, messages: 3, unseen: 2, deleted: 1 });
    const h = await u.open('INBOX');
    const list = await h.list();
    expect(list.map((m) => m.uid)).toEqual([7, 9, 12]);
    expect(list.map((m) => [...m.flags].sort())).toEqual([['$Label1', '\\Answered', '\\Seen'], ['Foo', '\\Deleted'], []]);
    expect(list[0]!.internalDate.toISOString()).toBe('2020-01-01T00:00:00.000Z');
    expect(list.map((m) => m.size)).toEqual([crlfLen, crlfLen, crlfLen]);
    expect((await h.read(12))!.toString()).toBe(lf.replace(/\n/g, '\r\n'));
    // Unknown letters (P: passed) survive our flag changes.
    await h.updateFlags([9], { action: 'remove', flags: ['\\Deleted'] });
    expect(await fs.readdir(path.join(root, 'cur'))).toContain(`${names[1]}:2,Pa`);
    // New mail continues after the highest UID, not after N.
    const r = await u.append('INBOX', [{ data: msg(1) }]);
    expect(r.destUids).toEqual([13]);
    const text = await fs.readFile(path.join(root, 'dovecot-uidlist'), 'utf8');
    expect(text.startsWith('3 V1234 N1 G0123456789abcdef0123456789abcdef\n7 :')).toBe(true);
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^13 :\d+\./);
  });

  it('gives UIDs to a Maildir without dovecot-uidlist (from another MDA) in delivery order', async () => {
    const root = path.join(dir, 'carol', 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) await fs.mkdir(path.join(root, sub), { recursive: true });
    await fs.writeFile(path.join(root, 'new', '1600000002.abc.host'), 'Subject: b\n\nb\n');
    await fs.writeFile(path.join(root, 'cur', '1600000001.abc.host:2,S'), 'Subject: a\n\na\n');
    const u = await newStore().openUser('carol');
    const list = await (await u.open('INBOX')).list();
    expect(list.map((m) => [m.uid, m.flags])).toEqual([
      [1, ['\\Seen']],
      [2, []],
    ]);
    const parsed = parseUidlist(await fs.readFile(path.join(root, 'dovecot-uidlist'), 'utf8'));
    expect(parsed.ok && parsed.list.records.map((r) => r.base)).toEqual(['1600000001.abc.host', '1600000002.abc.host']);
  });

  it('writes and reads the subscriptions file in Dovecot 2 format and reads the older one-per-line format', async () => {
    const u = await newStore().openUser('alice');
    await u.setSubscribed('A/Bé', true);
    await u.setSubscribed('INBOX', true);
    const file = path.join(dir, 'alice', 'Maildir', 'subscriptions');
    expect(await fs.readFile(file, 'utf8')).toBe('V\t2\n\nA\tB&AOk-\nINBOX\n');
    expect(parseSubscriptions('INBOX.Sent\nINBOX.A.B\nTrash\n', '.')).toEqual(['Sent', 'A/B', 'Trash']);
    expect(parseSubscriptions(serializeSubscriptions(['x/y', 'Ü']), '.')).toEqual(['x/y', 'Ü']);
  });

  it('a copy is a hard link sharing bytes and INTERNALDATE', async () => {
    const u = await newStore().openUser('alice');
    await u.createMailbox('Copy');
    await u.append('INBOX', [{ data: msg(1), flags: ['\\Seen'], internalDate: new Date('2019-05-05T05:05:05Z') }]);
    const r = await (await u.open('INBOX')).copy([1], 'Copy');
    expect(r.destUids).toEqual([1]);
    const cur = path.join(dir, 'alice', 'Maildir', '.Copy', 'cur');
    const [f] = await fs.readdir(cur);
    const st = await fs.stat(path.join(cur, f!));
    expect(st.nlink).toBe(2);
    expect(st.mtime.toISOString()).toBe('2019-05-05T05:05:05.000Z');
  });

  it('refuses a 27th keyword in one folder with LIMIT (26 letters a..z)', async () => {
    const u = await newStore().openUser('alice');
    await u.append('INBOX', [{ data: msg(1), flags: Array.from({ length: 26 }, (_, i) => `kw${i}`) }]);
    await expectCode(u.append('INBOX', [{ data: msg(2), flags: ['one-too-many'] }]), 'LIMIT');
    expect((await u.status('INBOX')).messages).toBe(1);
  });
});

describe('mailbox and user names never escape the user directory', () => {
  const bad: Array<[string, string]> = [
    ['..', '..'],
    ['a .. level', 'a/../../etc'],
    ['.', '.'],
    ['absolute path', '/etc/passwd'],
    ['a lone /', '/'],
    ['NUL', 'a\u0000b'],
    ['control character', 'a\u0001b'],
    ['newline', 'x\ny'],
    ['DEL', 'x\u007f'],
    ['the Maildir++ separator', 'a.b'],
    ['a backslash', 'a\\b'],
  ];
  it.each(bad)('refuses %s with CANNOT', async (_label, name) => {
    const u = await newStore().openUser('alice');
    await expectCode(u.createMailbox(name), 'CANNOT');
    await expectCode(u.status(name), 'CANNOT');
    await expectCode(u.append(name, [{ data: msg(1) }]), 'CANNOT');
    await expectCode(u.renameMailbox('INBOX', name), 'CANNOT');
    // Nothing appeared outside the Maildir.
    expect((await fs.readdir(dir)).sort()).toEqual(['alice']);
    expect((await fs.readdir(path.join(dir, 'alice'))).sort()).toEqual(['Maildir']);
  });

  it.each([['../x'], ['a/b'], [''], ['..'], ['x\u0000y'], ['x\ny']])('refuses the user name %j', async (user) => {
    await expectCode(newStore().openUser(user), 'CANNOT');
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('a configured separator is refused inside names and used on disk', async () => {
    const u = await newStore({ separator: '_' }).openUser('alice');
    await u.createMailbox('a.b/c');
    expect((await fs.readdir(path.join(dir, 'alice', 'Maildir'))).filter((e) => e.startsWith('_')).sort()).toEqual(['_a.b', '_a.b_c']);
    await expectCode(u.createMailbox('x_y'), 'CANNOT');
    expect((await u.listMailboxes()).map((b) => b.name).sort()).toEqual(['INBOX', 'a.b', 'a.b/c']);
  });
});

describe('delivery without opening the folder', () => {
  it('appends like dovecot-lda (uidlist line, file in new/, no scan, no cache), and an open folder finds it', async () => {
    const root = path.join(dir, 'alice', 'Maildir');
    const watcher = await newStore().openUser('alice');
    const h = await watcher.open('INBOX');
    const events: ChangeEvent[] = [];
    watcher.watch((e) => events.push(e));
    const before = await fs.readFile(path.join(root, 'dovecot-uidlist'), 'utf8');
    // A second store (another process: deliver) with no listener and no open folder.
    const deliverer = await newStore().openUser('alice');
    const r = await deliverer.append('INBOX', [{ data: msg(1) }, { data: msg(2), flags: ['\\Seen', 'Later'] }]);
    expect(r.destUids).toEqual([1, 2]);
    const after = await fs.readFile(path.join(root, 'dovecot-uidlist'), 'utf8');
    // Appended in place: the old content is untouched.
    expect(after.startsWith(before)).toBe(true);
    expect(after.slice(before.length)).toMatch(/^1 :\S+\n2 :\S+\n$/);
    expect(await fs.readdir(path.join(root, 'new'))).toHaveLength(1);
    expect((await fs.readdir(path.join(root, 'cur')))[0]).toMatch(/:2,Sa$/);
    await waitFor(() => events.some((e) => e.kind === 'append'), 'append event in the other store');
    const list = await h.list();
    expect(list.map((m) => [m.uid, m.flags])).toEqual([
      [1, []],
      [2, ['\\Seen', 'Later']],
    ]);
    await expectCode(deliverer.append('Missing', [{ data: msg(3) }]), 'NONEXISTENT');
  });
});

describe('changes made by others', () => {
  it('announces mail an MDA drops into new/ and mail changed or removed by others', async () => {
    const u = await newStore().openUser('alice');
    await u.append('INBOX', [{ data: msg(1), flags: ['\\Seen'] }]);
    const h = await u.open('INBOX');
    const events: ChangeEvent[] = [];
    u.watch((e) => events.push(e));
    const root = path.join(dir, 'alice', 'Maildir');
    // The MDA way: write in tmp/, rename into new/.
    await fs.writeFile(path.join(root, 'tmp', '1700000000.M5P5.mta'), 'Subject: delivered\n\nhi\n');
    await fs.rename(path.join(root, 'tmp', '1700000000.M5P5.mta'), path.join(root, 'new', '1700000000.M5P5.mta'));
    await waitFor(() => events.some((e) => e.kind === 'append' && e.mailbox === 'INBOX' && e.origin === undefined), 'append event');
    const mark = (await h.status()).highestModSeq;
    expect((await h.list()).map((m) => m.uid)).toEqual([1, 2]);
    // Another program sets \Flagged on message 1 by renaming its file.
    const [f] = await fs.readdir(path.join(root, 'cur'));
    await fs.rename(path.join(root, 'cur', f!), path.join(root, 'cur', f!.replace(/:2,S$/, ':2,FS')));
    await waitFor(() => events.some((e) => e.kind === 'flags'), 'flags event');
    const ch = await h.changesSince(mark);
    expect(ch.changed.map((m) => [m.uid, [...m.flags].sort()])).toEqual([[1, ['\\Flagged', '\\Seen']]]);
    expect(ch.highestModSeq).toBeGreaterThan(mark);
    // And deletes message 2.
    await fs.unlink(path.join(root, 'new', '1700000000.M5P5.mta'));
    await waitFor(() => events.some((e) => e.kind === 'expunge'), 'expunge event');
    expect((await h.changesSince(ch.highestModSeq)).expunged).toEqual([2]);
    expect((await h.list()).map((m) => m.uid)).toEqual([1]);
  });

  it('two stores on one Maildir (two processes) never duplicate or lose a UID and agree on state', async () => {
    const a = await newStore().openUser('alice');
    const b = await newStore().openUser('alice');
    const ops: Array<Promise<unknown>> = [];
    for (let i = 0; i < 20; i++) {
      ops.push(a.append('INBOX', [{ data: msg(`a${i}`), flags: i % 2 ? ['x'] : [] }]));
      ops.push(b.append('INBOX', [{ data: msg(`b${i}`), flags: i % 3 ? ['\\Seen'] : ['y'] }]));
    }
    const results = (await Promise.all(ops)) as Array<{ destUids: number[] }>;
    const uids = results.flatMap((r) => r.destUids);
    expect(new Set(uids).size).toBe(40);
    const ha = await a.open('INBOX');
    const hb = await b.open('INBOX');
    await ha.updateFlags(uids.slice(0, 10), { action: 'add', flags: ['\\Answered'] });
    await hb.updateFlags(uids.slice(5, 15), { action: 'add', flags: ['\\Flagged', '\\Deleted'] });
    const removed = await ha.expunge(uids.slice(10, 12));
    expect(removed).toEqual(uids.slice(10, 12).sort((x, y) => x - y));
    const la = await ha.list();
    const lb = await hb.list();
    expect(la.map((m) => [m.uid, [...m.flags].sort(), m.modSeq])).toEqual(lb.map((m) => [m.uid, [...m.flags].sort(), m.modSeq]));
    expect(la).toHaveLength(38);
    expect((await ha.status()).highestModSeq).toBe((await hb.status()).highestModSeq);
    // b learns a's expunges through changesSince.
    expect((await hb.changesSince(0n)).expunged.sort((x, y) => x - y)).toEqual(removed);
  });
});

describe('cache', () => {
  it('is rebuilt when missing or corrupt and never trusted over the files', async () => {
    const s1 = newStore();
    const u1 = await s1.openUser('alice');
    await u1.append('INBOX', [{ data: msg(1), flags: ['\\Seen'] }, { data: msg(2) }, { data: msg(3), flags: ['a'] }]);
    await s1.close();
    const root = path.join(dir, 'alice', 'Maildir');
    // Change the files behind the cache's back: flag message 1, delete message 3.
    const cur = await fs.readdir(path.join(root, 'cur'));
    const m1 = cur.find((f) => f.endsWith(':2,S'))!;
    await fs.rename(path.join(root, 'cur', m1), path.join(root, 'cur', m1.replace(':2,S', ':2,FS')));
    await fs.unlink(path.join(root, 'cur', cur.find((f) => f.endsWith(':2,a'))!));
    const u2 = await newStore().openUser('alice');
    const list = await (await u2.open('INBOX')).list();
    expect(list.map((m) => [m.uid, [...m.flags].sort()])).toEqual([
      [1, ['\\Flagged', '\\Seen']],
      [2, []],
    ]);
    const modseqs = new Map(list.map((m) => [m.uid, m.modSeq]));
    // Corrupt cache: rebuilt from the files, same UIDs and flags.
    await fs.writeFile(path.join(root, 'imapkit-cache.sqlite'), 'not a database at all'.repeat(100));
    for (const s of ['-wal', '-shm']) await fs.rm(path.join(root, `imapkit-cache.sqlite${s}`), { force: true });
    const u3 = await newStore().openUser('alice');
    const list3 = await (await u3.open('INBOX')).list();
    expect(list3.map((m) => [m.uid, [...m.flags].sort(), m.size])).toEqual(list.map((m) => [m.uid, [...m.flags].sort(), m.size]));
    expect(modseqs.size).toBe(2);
  });

  it('keeps server structure entries only with keepStructures, across restarts, until the message changes name', async () => {
    const plain = await newStore().openUser('alice');
    expect(plain.keepsStructures).toBe(false);
    expect((await plain.open('INBOX')).structures).toBeUndefined();
    const entry = Buffer.from([0, 0xff, 1, 2, 3]);
    const u = await newStore({ keepStructures: true }).openUser('bob');
    expect(u.keepsStructures).toBe(true);
    const h = await u.open('INBOX');
    const r = await u.append('INBOX', [{ data: msg(1), structure: entry }, { data: msg(2) }]);
    await h.saveStructures!(new Map([[r.destUids[1]!, Buffer.from('two')]]));
    await h.updateFlags(r.destUids, { action: 'add', flags: ['\Seen'] });
    // Another process (a new store on the same files) reads the entries from the folder's cache database.
    const again = await (await newStore({ keepStructures: true }).openUser('bob')).open('INBOX');
    const got = await again.structures!(r.destUids);
    expect(got.get(r.destUids[0]!)).toEqual(entry);
    expect(got.get(r.destUids[1]!)).toEqual(Buffer.from('two'));
  });

  it('a cache directory outside the Maildir (INDEX=) keeps the Maildir free of imapkit files', async () => {
    const cache = path.join(dir, 'cache', '%u');
    const u = await newStore({ cacheDir: cache }).openUser('alice');
    await u.createMailbox('Box');
    await u.append('Box', [{ data: msg(1) }]);
    await u.renameMailbox('Box', 'Renamed');
    expect((await u.status('Renamed')).messages).toBe(1);
    const root = path.join(dir, 'alice', 'Maildir');
    const all = [...(await fs.readdir(root)), ...(await fs.readdir(path.join(root, '.Renamed')))];
    expect(all.some((f) => f.startsWith('imapkit-cache'))).toBe(false);
    expect(await fs.readdir(path.join(dir, 'cache', 'alice'))).toContain('.Renamed.sqlite');
  });
});

describe('our own changes and others\' at the same time', () => {
  const root = (): string => path.join(dir, 'alice', 'Maildir');
  /** Deliver the MDA way (tmp/, then rename), or straight into cur/ with flags. */
  async function drop(name: string, sub: 'new' | 'cur', body = 'Subject: dropped\n\nhi\n'): Promise<void> {
    await fs.writeFile(path.join(root(), 'tmp', name), body);
    await fs.rename(path.join(root(), 'tmp', name), path.join(root(), sub, name));
  }

  it('a file dropped into new/ or cur/ right after our own append is seen by the next call', async () => {
    const u = await newStore().openUser('alice');
    const h = await u.open('INBOX');
    expect(await h.list()).toEqual([]);
    const r = await u.append('INBOX', [{ data: msg(1) }, { data: msg(2), flags: ['\\Seen'] }, { data: msg(3) }]);
    expect(r.destUids).toEqual([1, 2, 3]);
    // Same clock tick as our own renames, most likely: the directory stats alone cannot tell.
    await drop('1700000000.M1P1.mta', 'new');
    await drop('1700000001.M1P1.mta:2,F', 'cur');
    const list = await h.list();
    expect(list.map((m) => [m.uid, [...m.flags].sort()])).toEqual([
      [1, []],
      [2, ['\\Seen']],
      [3, []],
      [4, []],
      [5, ['\\Flagged']],
    ]);
    // Later calls agree, also once the directories are old enough to be trusted by their stat.
    expect((await h.list()).map((m) => m.uid)).toEqual([1, 2, 3, 4, 5]);
    await new Promise((res) => setTimeout(res, 1100));
    expect((await h.list()).map((m) => m.uid)).toEqual([1, 2, 3, 4, 5]);
    expect((await h.list()).map((m) => m.uid)).toEqual([1, 2, 3, 4, 5]);
    // And a change after that quiet period is seen too.
    await drop('1700000002.M1P1.mta', 'new');
    expect((await h.list()).map((m) => m.uid)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('a rename or unlink by others right after our own flag change or expunge is seen by the next call', async () => {
    const u = await newStore().openUser('alice');
    const h = await u.open('INBOX');
    await u.append('INBOX', [1, 2, 3, 4, 5].map((n) => ({ data: msg(n), flags: ['\\Seen'] })));
    const mark = (await h.status()).highestModSeq;
    const res = await h.updateFlags([1, 2, 3], { action: 'add', flags: ['\\Flagged'] });
    expect(res.updated.map((m) => m.uid)).toEqual([1, 2, 3]);
    // Another program answers message 4 (a rename in cur/) and deletes message 5.
    const base = async (uid: number): Promise<string> => {
      const parsed = parseUidlist(await fs.readFile(path.join(root(), 'dovecot-uidlist'), 'utf8'));
      return (parsed.ok && parsed.list.records.find((x) => x.uid === uid)?.base) || '';
    };
    const b4 = await base(4);
    const b5 = await base(5);
    await fs.rename(path.join(root(), 'cur', `${b4}:2,S`), path.join(root(), 'cur', `${b4}:2,RS`));
    await fs.unlink(path.join(root(), 'cur', `${b5}:2,S`));
    const ch = await h.changesSince(mark);
    expect(ch.changed.map((m) => [m.uid, [...m.flags].sort()])).toEqual([
      [1, ['\\Flagged', '\\Seen']],
      [2, ['\\Flagged', '\\Seen']],
      [3, ['\\Flagged', '\\Seen']],
      [4, ['\\Answered', '\\Seen']],
    ]);
    expect(ch.expunged).toEqual([5]);
    // Our expunge, then someone else drops a message and removes another.
    await h.updateFlags([1], { action: 'add', flags: ['\\Deleted'] });
    expect(await h.expunge(undefined)).toEqual([1]);
    await drop('1700000003.M1P1.mta', 'new');
    const b2 = await base(2);
    await fs.unlink(path.join(root(), 'cur', `${b2}:2,FS`));
    expect((await h.list()).map((m) => m.uid)).toEqual([3, 4, 6]);
    expect((await h.list()).map((m) => m.uid)).toEqual([3, 4, 6]);
  });

  it('a batch of flag changes and a move leave the files, the uidlist and the state in agreement', async () => {
    const u = await newStore().openUser('alice');
    await u.createMailbox('Archive');
    const h = await u.open('INBOX');
    const a = await u.open('Archive');
    const uids = (await u.append('INBOX', Array.from({ length: 60 }, (_, i) => ({ data: msg(i), flags: i % 2 ? ['\\Seen'] : [] })))).destUids;
    const res = await h.updateFlags(uids, { action: 'add', flags: ['\\Flagged', 'Work'] });
    expect(res.updated.map((m) => m.uid)).toEqual(uids);
    const moved = await h.move(uids.slice(0, 20), 'Archive');
    expect(moved.sourceUids).toEqual(uids.slice(0, 20));
    await drop('1700000004.M1P1.mta', 'new');
    expect((await h.list()).map((m) => m.uid)).toEqual([...uids.slice(20), 61]);
    expect((await a.list()).map((m) => [...m.flags].sort())).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 ? ['Work', '\\Flagged', '\\Seen'] : ['Work', '\\Flagged']).sort()));
    // A fresh store (nothing remembered) sees the same.
    const u2 = await newStore().openUser('alice');
    const h2 = await u2.open('INBOX');
    expect((await h2.list()).map((m) => [m.uid, [...m.flags].sort()])).toEqual((await h.list()).map((m) => [m.uid, [...m.flags].sort()]));
    expect((await fs.readdir(path.join(root(), 'new'))).length + (await fs.readdir(path.join(root(), 'cur'))).length).toBe(41);
  });

  it('records Dovecot appended to the uidlist in place are read, and our next UID follows them', async () => {
    const u = await newStore().openUser('alice');
    const h = await u.open('INBOX');
    await u.append('INBOX', [{ data: msg(1) }]);
    // Dovecot's way: the file, then a record appended to the uidlist (header untouched) under its lock.
    await drop('1700000005.M1P1.dove', 'cur', 'Subject: d\n\nx\n');
    await fs.rename(path.join(root(), 'cur', '1700000005.M1P1.dove'), path.join(root(), 'cur', '1700000005.M1P1.dove:2,S'));
    await fs.appendFile(path.join(root(), 'dovecot-uidlist'), '7 :1700000005.M1P1.dove\n');
    expect((await h.list()).map((m) => [m.uid, m.flags])).toEqual([
      [1, []],
      [7, ['\\Seen']],
    ]);
    expect((await u.append('INBOX', [{ data: msg(2) }])).destUids).toEqual([8]);
    expect((await h.list()).map((m) => m.uid)).toEqual([1, 7, 8]);
  });

  it('an append that fails between writing tmp/ and renaming leaves nothing in new/, cur/ or tmp/', async () => {
    const u = await newStore({ lockTimeoutMs: 300 }).openUser('alice');
    const h = await u.open('INBOX');
    await u.append('INBOX', [{ data: msg(1) }]);
    const before = { new: await fs.readdir(path.join(root(), 'new')), cur: await fs.readdir(path.join(root(), 'cur')) };
    // A live holder of the uidlist lock (another host: never judged dead) keeps us from placing the files.
    await fs.writeFile(path.join(root(), 'dovecot-uidlist.lock'), '1:some-other-host');
    await expectCode(u.append('INBOX', Array.from({ length: 20 }, (_, i) => ({ data: msg(`x${i}`) }))), 'INUSE');
    expect(await fs.readdir(path.join(root(), 'tmp'))).toEqual([]);
    expect(await fs.readdir(path.join(root(), 'new'))).toEqual(before.new);
    expect(await fs.readdir(path.join(root(), 'cur'))).toEqual(before.cur);
    expect((await h.list()).map((m) => m.uid)).toEqual([1]);
    await fs.unlink(path.join(root(), 'dovecot-uidlist.lock'));
    expect((await u.append('INBOX', [{ data: msg(2) }])).destUids).toEqual([2]);
    expect((await h.list()).map((m) => m.uid)).toEqual([1, 2]);
  });

  it('a process killed during batch appends to an open folder leaves only whole messages, each with one UID', async () => {
    const child = await startAppender(
      'batch-appender.mts',
      `await u.open('INBOX');\n` +
        `const body = Buffer.alloc(64 * 1024, 'x');\n` +
        `process.stdout.write('ready\\n');\n` +
        `for (let i = 0; ; i++) await u.append('INBOX', Array.from({ length: 10 }, (_, j) => ({ data: Buffer.concat([Buffer.from('Subject: ' + i + '.' + j + '\\r\\n\\r\\n'), body]), flags: j % 2 ? ['\\\\Seen'] : [] })));\n`,
    );
    await waitFor(async () => (await fs.readdir(path.join(root(), 'new'))).length >= 25 || undefined, 'some appends');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const u = await newStore().openUser('alice');
    const h = await u.open('INBOX');
    const list = await h.list();
    expect(list.length).toBeGreaterThanOrEqual(50);
    expect(new Set(list.map((m) => m.uid)).size).toBe(list.length);
    const files = [...(await fs.readdir(path.join(root(), 'new'))), ...(await fs.readdir(path.join(root(), 'cur')))];
    expect(files).toHaveLength(list.length);
    for (const m of list) {
      const data = (await h.read(m.uid))!;
      expect(data.length).toBe(64 * 1024 + data.indexOf('\r\n\r\n') + 4);
      expect(m.size).toBe(data.length);
    }
  });
});

describe('crash safety and locking', () => {
  it('ignores half-written tmp/ files and a half-appended uidlist line, and repairs the latter', async () => {
    const u = await newStore().openUser('alice');
    await u.append('INBOX', [{ data: msg(1) }]);
    const root = path.join(dir, 'alice', 'Maildir');
    await fs.writeFile(path.join(root, 'tmp', '1700000000.M9P9.crashed'), 'Subject: half');
    const ul = path.join(root, 'dovecot-uidlist');
    await fs.appendFile(ul, '2 :1700000000.half-writ');
    const u2 = await newStore().openUser('alice');
    expect((await u2.status('INBOX')).messages).toBe(1);
    const r = await u2.append('INBOX', [{ data: msg(2) }]);
    expect(r.destUids).toEqual([2]);
    const parsed = parseUidlist(await fs.readFile(ul, 'utf8'));
    expect(parsed.ok && parsed.list.records.map((x) => x.uid)).toEqual([1, 2]);
    expect(parsed.ok && parsed.list.records.some((x) => x.base.includes('half'))).toBe(false);
  });

  it('a file placed but not yet in the uidlist (killed between rename and uidlist write) gets one UID, once', async () => {
    const u = await newStore().openUser('alice');
    await u.append('INBOX', [{ data: msg(1) }]);
    const root = path.join(dir, 'alice', 'Maildir');
    await fs.writeFile(path.join(root, 'cur', '1700000000.M7P7.x,S=10,W=10:2,S'), 'Subject: x');
    const a = await newStore().openUser('alice');
    const b = await newStore().openUser('alice');
    const [la, lb] = await Promise.all([(await a.open('INBOX')).list(), (await b.open('INBOX')).list()]);
    expect(la.map((m) => m.uid)).toEqual([1, 2]);
    expect(lb.map((m) => m.uid)).toEqual([1, 2]);
  });

  it('a process killed while appending leaves only whole messages, each with one UID', async () => {
    const child = await startAppender(
      'appender.mts',
      `const body = Buffer.alloc(256 * 1024, 'x');\n` +
        `process.stdout.write('ready\\n');\n` +
        `for (let i = 0; ; i++) await u.append('INBOX', [{ data: Buffer.concat([Buffer.from('Subject: ' + i + '\\r\\n\\r\\n'), body]) }]);\n`,
    );
    const root = path.join(dir, 'alice', 'Maildir');
    await waitFor(async () => (await fs.readdir(path.join(root, 'new'))).length >= 5 || undefined, 'some appends');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const u = await newStore().openUser('alice');
    const h = await u.open('INBOX');
    const list = await h.list();
    expect(list.length).toBeGreaterThanOrEqual(5);
    expect(new Set(list.map((m) => m.uid)).size).toBe(list.length);
    for (const m of list) {
      const data = (await h.read(m.uid))!;
      expect(data.length).toBe(256 * 1024 + data.indexOf('\r\n\r\n') + 4);
      expect(m.size).toBe(data.length);
    }
    // No lock left behind blocks us: a new append works.
    expect((await u.append('INBOX', [{ data: msg('after') }])).destUids[0]).toBe(Math.max(...list.map((m) => m.uid)) + 1);
  });

  it('waits for a lock held by a live process, then fails with INUSE; a dead holder\'s lock is broken', async () => {
    const u = await newStore({ lockTimeoutMs: 600 }).openUser('alice');
    const root = path.join(dir, 'alice', 'Maildir');
    const lock = path.join(root, 'dovecot-uidlist.lock');
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await fs.writeFile(lock, `${sleeper.pid}:${os.hostname()}`);
      const old = new Date(Date.now() - 10_000);
      await fs.utimes(lock, old, old);
      await expectCode(u.append('INBOX', [{ data: msg(1) }]), 'INUSE');
      expect(await fs.readFile(lock, 'utf8')).toBe(`${sleeper.pid}:${os.hostname()}`);
    } finally {
      sleeper.kill();
    }
    await new Promise((r) => sleeper.once('exit', r));
    // The holder is dead now: its lock is stale and gets overridden.
    const r = await u.append('INBOX', [{ data: msg(2) }]);
    expect(r.destUids).toEqual([1]);
    await expect(fs.stat(lock)).rejects.toThrow();
  });

  it('breaks a fresh lock of a dead process at once, and its own lock file always names its holder', async () => {
    // A lock timeout shorter than the 2 s grace for unreadable locks: only the PID check can free it.
    const u = await newStore({ lockTimeoutMs: 500 }).openUser('alice');
    const root = path.join(dir, 'alice', 'Maildir');
    await u.status('INBOX');
    const dead = spawn('true', { stdio: 'ignore' });
    await new Promise((r) => dead.once('exit', r));
    await fs.writeFile(path.join(root, 'dovecot-uidlist.lock'), `${dead.pid}:${os.hostname()}`);
    expect((await u.append('INBOX', [{ data: msg(1) }])).destUids).toEqual([1]);
    // Locks are link()ed into place with their content: no empty lock, and no temporary name left.
    const seen: string[] = [];
    const watcher = (await import('node:fs')).watch(root, (_e, name) => {
      if (name === 'dovecot-uidlist.lock') {
        try {
          seen.push(readFileSync(path.join(root, name), 'utf8'));
        } catch {
          // gone again already
        }
      }
    });
    try {
      for (let i = 0; i < 20; i++) await u.append('INBOX', [{ data: msg(`l${i}`) }]);
    } finally {
      watcher.close();
    }
    for (const text of seen) expect(text).toBe(`${process.pid}:${os.hostname()}`);
    expect((await fs.readdir(root)).filter((n) => n.startsWith('dovecot-uidlist.lock'))).toEqual([]);
  });

  it('breaks a lock that nobody touched for the stale timeout (other host, no PID to check)', async () => {
    const u = await newStore({ lockTimeoutMs: 2000 }).openUser('alice');
    const root = path.join(dir, 'alice', 'Maildir');
    const lock = path.join(root, 'dovecot-uidlist.lock');
    await u.status('INBOX');
    await fs.writeFile(lock, '12345:some-other-host');
    const old = new Date(Date.now() - 200_000);
    await fs.utimes(lock, old, old);
    await fs.utimes(path.join(root, 'dovecot-uidlist'), old, old);
    expect((await u.append('INBOX', [{ data: msg(1) }])).destUids).toEqual([1]);
  });
});

describe('spec', () => {
  it('parses maildir:PATH with options and opens through openStore', async () => {
    expect(parseMaildirSpec('maildir:/var/mail/%u/Maildir:SEP=_:INDEX=MEMORY')).toEqual({ path: '/var/mail/%u/Maildir', separator: '_', cacheDir: 'MEMORY' });
    expect(() => parseMaildirSpec('maildir:/x:BOGUS=1')).toThrow(StoreError);
    expect(() => parseMaildirSpec('maildir:/x:SEP=a')).toThrow(StoreError);
    const store = await openStore(`maildir:${path.join(dir, '%n', 'Maildir')}`);
    try {
      expect(store.kind).toBe('maildir');
      const u: UserMailStore = await store.openUser('dave@example.org');
      await u.append('INBOX', [{ data: msg(1) }]);
      expect((await fs.readdir(path.join(dir, 'dave', 'Maildir', 'new'))).length).toBe(1);
    } finally {
      await store.close();
    }
  });
});
