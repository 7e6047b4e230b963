/**
 * imapkit sync against a private Dovecot: IMAP ↔ Maildir and IMAP ↔ IMAP (two Dovecot users).
 * New messages both ways, flag and keyword changes both ways with the conflict rule, deletions per
 * policy (trash and expunge), new folders on either side, include/exclude, name translation by
 * map and by JS functions (and the refusal of functions that are not inverse), a forced
 * UIDVALIDITY change without duplicates or losses, quick mode and dry runs.
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MaildirStore } from '../../src/store/maildir/index.js';
import { loadSyncConfig, openAccount, selectAccounts, syncAccount, type AccountSummary } from '../../src/sync/index.js';
import { ImapAppender } from '../../src/sync/imap-append.js';
import { havePeer, imapClient, imapIdentities, identity, maildirFolders, maildirIdentities, simpleMessage, startDovecot, tempDir, type Dovecot } from './sync-helpers.js';

const enabled = havePeer('dovecot', 'sync interop tests');

/** Identities of messages carrying the given flag, in a Maildir folder. */
async function localFlags(maildir: string, folder: string): Promise<Map<string, string[]>> {
  const store = new MaildirStore({ path: maildir });
  const u = await store.openUser('x');
  const h = await u.open(folder);
  const out = new Map<string, string[]>();
  for (const m of await h.list()) out.set(identity((await h.read(m.uid))!), [...m.flags].sort());
  await h.close();
  await u.close();
  await store.close();
  return out;
}

async function localChange(maildir: string, fn: (u: Awaited<ReturnType<MaildirStore['openUser']>>) => Promise<void>): Promise<void> {
  const store = new MaildirStore({ path: maildir });
  const u = await store.openUser('x');
  try {
    await fn(u);
  } finally {
    await u.close();
    await store.close();
  }
}

async function uidOfSubject(u: Awaited<ReturnType<MaildirStore['openUser']>>, folder: string, subject: string): Promise<number> {
  const h = await u.open(folder);
  try {
    for (const m of await h.list()) if ((await h.read(m.uid))!.toString().includes(`Subject: ${subject}\r\n`)) return m.uid;
  } finally {
    await h.close();
  }
  throw new Error(`no ${subject} in ${folder}`);
}

function expectOk(s: AccountSummary): void {
  expect(s.errors, JSON.stringify(s.errors)).toEqual([]);
  expect(s.ok).toBe(true);
}

describe.runIf(enabled)('sync IMAP ↔ Maildir against Dovecot', () => {
  let dc: Dovecot;
  let work: string;
  let config: string;
  let local: string;

  const sync = async (account = 'main', extra: { quick?: boolean; dryRun?: boolean } = {}) => {
    const cfg = await loadSyncConfig(config);
    const [spec] = selectAccounts(cfg, config, [account]);
    return syncAccount(spec!, extra);
  };

  beforeAll(async () => {
    dc = await startDovecot();
    work = tempDir();
    local = path.join(work, 'Mail');
    config = path.join(work, 'sync.toml');
    writeFileSync(
      config,
      `stateDir = "${work}/state"
[accounts.main]
remote = { type = "imap", host = "127.0.0.1", port = ${dc.port}, tls = false, user = "test1", password = "pass", maxConnections = 3 }
local = { type = "maildir", path = "${local}" }
deletions = { remote = "trash", local = "expunge" }

[accounts.filtered]
remote = { type = "imap", host = "127.0.0.1", port = ${dc.port}, tls = false, user = "test1", passwordEnv = "SYNC_TEST_PW" }
local = { type = "maildir", path = "${work}/Filtered" }
include = ["INBOX", "Projects/*"]
exclude = ["Projects/old"]
nameMap = { "Projects/2024" = "Archive/2024" }
`,
    );
    process.env.SYNC_TEST_PW = 'pass';
    const c = await imapClient(dc.port, 'test1');
    for (let i = 1; i <= 12; i++) await c.append('INBOX', simpleMessage(`in${i}`), i % 2 ? ['\\Seen'] : ['$Label1']);
    await c.mailboxCreate('Projects/2024');
    await c.mailboxCreate('Projects/old');
    for (let i = 1; i <= 4; i++) await c.append('Projects/2024', simpleMessage(`p${i}`), ['\\Flagged']);
    await c.append('Projects/old', simpleMessage('old1'));
    await c.logout();
    // The local side already has mail of its own, in INBOX and in a folder the server lacks.
    await localChange(local, async (u) => {
      await u.createMailbox('Local');
      await u.append('Local', [{ data: simpleMessage('l1'), flags: ['\\Answered'] }, { data: simpleMessage('l2'), flags: ['$Work'] }]);
      await u.append('INBOX', [{ data: simpleMessage('li1') }]);
    });
  }, 60_000);

  afterAll(async () => {
    await dc?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('first sync: new messages and folders both ways, flags and keywords kept', async () => {
    const s = await sync();
    expectOk(s);
    expect(s.copied.a).toBe(17);
    expect(s.copied.b).toBe(3);
    for (const f of ['INBOX', 'Projects/2024', 'Local']) {
      const remote = await imapIdentities(dc.port, 'test1', f);
      expect(maildirIdentities(local, f)).toEqual(remote.ids);
      const lf = await localFlags(local, f);
      for (const [id, flags] of remote.flags) expect(lf.get(id), `${f} ${id}`).toEqual(flags);
    }
    expect((await imapIdentities(dc.port, 'test1', 'Local')).flags.get(identity(simpleMessage('l2')))).toEqual(['$Work']);
    expect(maildirFolders(local)).toEqual(expect.arrayContaining(['INBOX', 'Projects', 'Projects/2024', 'Projects/old', 'Local', 'Trash']));
    // A second run has nothing to do.
    const again = await sync();
    expectOk(again);
    expect(again.copied).toEqual({ a: 0, b: 0 });
    expect(again.flagged).toEqual({ a: 0, b: 0 });
  });

  it('flag and keyword changes both ways follow the merge rule', async () => {
    const c = await imapClient(dc.port, 'test1');
    await c.mailboxOpen('INBOX');
    const uidOf = async (subject: string) => (await c.search({ subject }, { uid: true })) as number[];
    const [in1] = await uidOf('in1');
    const [in2] = await uidOf('in2');
    // Remote: in1 loses \Seen; in2 gains $Work.
    await c.messageFlagsRemove(String(in1), ['\\Seen'], { uid: true });
    await c.messageFlagsAdd(String(in2), ['$Work'], { uid: true });
    await c.logout();
    // Local: in1 gains \Flagged (a conflict with the remote removal: both changes win); in2 loses $Label1.
    await localChange(local, async (u) => {
      const h = await u.open('INBOX');
      await h.updateFlags([await uidOfSubject(u, 'INBOX', 'in1')], { action: 'add', flags: ['\\Flagged'] });
      await h.updateFlags([await uidOfSubject(u, 'INBOX', 'in2')], { action: 'remove', flags: ['$Label1'] });
      await h.close();
    });
    const s = await sync();
    expectOk(s);
    const remote = await imapIdentities(dc.port, 'test1', 'INBOX');
    const lf = await localFlags(local, 'INBOX');
    expect(remote.flags.get(identity(simpleMessage('in1')))).toEqual(['\\Flagged']);
    expect(remote.flags.get(identity(simpleMessage('in2')))).toEqual(['$Work']);
    for (const [id, flags] of remote.flags) expect(lf.get(id)).toEqual(flags);
  });

  it('deletions: local expunge moves the remote copy to Trash; remote expunge removes the local copy', async () => {
    const c = await imapClient(dc.port, 'test1');
    await c.mailboxOpen('INBOX');
    const [in3] = (await c.search({ subject: 'in3' }, { uid: true })) as number[];
    await c.messageDelete(String(in3), { uid: true });
    await c.logout();
    await localChange(local, async (u) => {
      const h = await u.open('INBOX');
      const uid = await uidOfSubject(u, 'INBOX', 'in4');
      await h.updateFlags([uid], { action: 'add', flags: ['\\Deleted'] });
      await h.expunge([uid]);
      await h.close();
    });
    const s = await sync();
    expectOk(s);
    const remote = await imapIdentities(dc.port, 'test1', 'INBOX');
    expect(remote.ids).not.toContain(identity(simpleMessage('in3')));
    expect(remote.ids).not.toContain(identity(simpleMessage('in4')));
    expect(maildirIdentities(local, 'INBOX')).toEqual(remote.ids);
    // The remote moved in4 to its Trash; that Trash syncs like any folder.
    expect((await imapIdentities(dc.port, 'test1', 'Trash')).ids).toEqual([identity(simpleMessage('in4'))]);
    expect(maildirIdentities(local, 'Trash')).toEqual([identity(simpleMessage('in4'))]);
  });

  it('include/exclude patterns and a name map', async () => {
    const s = await sync('filtered');
    expectOk(s);
    const dir = path.join(work, 'Filtered');
    expect(maildirFolders(dir).filter((f) => f !== 'Archive')).toEqual(['Archive/2024', 'INBOX']);
    expect(maildirIdentities(dir, 'Archive/2024')).toEqual((await imapIdentities(dc.port, 'test1', 'Projects/2024')).ids);
    // A folder made locally under the translated name goes back under the remote name.
    await localChange(dir, async (u) => {
      await u.append('Archive/2024', [{ data: simpleMessage('p-local') }]);
    });
    expectOk(await sync('filtered'));
    expect((await imapIdentities(dc.port, 'test1', 'Projects/2024')).ids).toContain(identity(simpleMessage('p-local')));
  });

  it('JS config: toLocal/toRemote functions, and refusal when they are not inverse', async () => {
    const dir = path.join(work, 'Js');
    const js = path.join(work, 'imapkit.config.mjs');
    const write = (toRemote: string) =>
      writeFileSync(
        js,
        `export default {
  stateDir: ${JSON.stringify(path.join(work, 'state-js'))},
  accounts: { js: {
    remote: { type: 'imap', host: '127.0.0.1', port: ${dc.port}, tls: false, user: 'test1', password: 'pass' },
    local: { type: 'maildir', path: ${JSON.stringify(dir)} },
    folderFilter: (name) => name === 'INBOX' || name.startsWith('Projects'),
    toLocal: (n) => (n === 'INBOX' ? n : 'R-' + n),
    toRemote: ${toRemote},
  } },
};\n`,
      );
    write(`(n) => (n === 'INBOX' ? n : n.replace(/^R-/, ''))`);
    let cfg = await loadSyncConfig(js);
    const ok = await syncAccount(selectAccounts(cfg, js, ['js'])[0]!);
    expectOk(ok);
    expect(maildirFolders(dir)).toEqual(['INBOX', 'R-Projects', 'R-Projects/2024', 'R-Projects/old']);
    // A toRemote that is not the inverse: refused before anything is copied, naming the folder.
    write(`(n) => (n === 'INBOX' ? n : n.replace(/^R-/, '').toUpperCase())`);
    // A fresh module URL (import caches by URL).
    const js2 = js.replace('.mjs', '-2.mjs');
    writeFileSync(js2, (await import('node:fs')).readFileSync(js, 'utf8'));
    cfg = await loadSyncConfig(js2);
    const bad = await syncAccount(selectAccounts(cfg, js2, ['js'])[0]!);
    expect(bad.ok).toBe(false);
    expect(bad.errors[0]!.kind).toBe('config');
    expect(bad.errors[0]!.message).toMatch(/R-Projects.*PROJECTS|not the inverse/);
  });

  it('a forced UIDVALIDITY change re-matches by Message-ID: no duplicates, no losses, flags kept', async () => {
    // Dovecot loses its UID list and index: new UIDVALIDITY, new UIDs (like a restored or migrated server).
    const mdir = dc.maildir('test1');
    for (const f of readdirSync(mdir)) if (f === 'dovecot-uidlist' || f.startsWith('dovecot.index')) rmSync(path.join(mdir, f));
    const before = await imapIdentities(dc.port, 'test1', 'INBOX');
    const c = await imapClient(dc.port, 'test1');
    await c.append('INBOX', simpleMessage('after-reset'));
    // A message without a Message-ID: matched by its hash.
    await c.append('INBOX', Buffer.from('Subject: no id\r\nFrom: x@example.org\r\n\r\nplain\r\n'));
    await c.logout();
    const s = await sync();
    expectOk(s);
    const remote = await imapIdentities(dc.port, 'test1', 'INBOX');
    expect(remote.ids.length).toBe(before.ids.length + 2);
    expect(new Set(remote.ids).size).toBe(remote.ids.length);
    expect(maildirIdentities(local, 'INBOX')).toEqual(remote.ids);
    const lf = await localFlags(local, 'INBOX');
    for (const [id, flags] of remote.flags) expect(lf.get(id), id).toEqual(flags);
    // Once more (the hash-matched message included): nothing to do.
    const again = await sync();
    expectOk(again);
    expect(again.copied).toEqual({ a: 0, b: 0 });
  });

  it('quick mode: HIGHESTMODSEQ shows flag changes; folders nobody touched are not read', async () => {
    expectOk(await sync());
    const c = await imapClient(dc.port, 'test1');
    await c.mailboxOpen('Projects/2024');
    await c.messageFlagsAdd('1:*', ['\\Answered']);
    await c.logout();
    // Dovecot has CONDSTORE, so HIGHESTMODSEQ moved: quick mode notices the change too.
    const q = await sync('main', { quick: true });
    expectOk(q);
    expect(q.flagged.b).toBeGreaterThan(0);
    const lf = await localFlags(local, 'Projects/2024');
    for (const flags of lf.values()) expect(flags).toContain('\\Answered');
    // The next run reads back what the last one changed; after that, nothing is even read.
    expectOk(await sync('main', { quick: true }));
    const nothing = await sync('main', { quick: true });
    expect(nothing.folders.every((f) => f.unchanged)).toBe(true);
  });

  it('one long-lived session (as in --watch) sees server changes in a folder its pooled connection has selected', async () => {
    const cfg = await loadSyncConfig(config);
    const session = openAccount(selectAccounts(cfg, config, ['main'])[0]!);
    try {
      const c0 = await imapClient(dc.port, 'test1');
      for (const k of ['keep1', 'keep2']) await c0.append('INBOX', simpleMessage(k));
      await c0.logout();
      expectOk(await session.run({}));
      for (let round = 1; round <= 2; round++) {
        const c = await imapClient(dc.port, 'test1');
        await c.append('INBOX', simpleMessage(`live${round}`));
        await c.mailboxOpen('INBOX');
        const [uid] = (await c.search({ subject: `keep${round}` }, { uid: true })) as number[];
        expect(uid).toBeGreaterThan(0);
        await c.messageFlagsAdd(String(uid), ['$Round' + round], { uid: true });
        await c.logout();
        // The session's pooled connection still has INBOX selected from the last run.
        const s = await session.run({});
        expectOk(s);
        expect(s.copied.a, `round ${round}`).toBe(1);
        expect(s.flagged.b, `round ${round}`).toBe(1);
        expect(maildirIdentities(local, 'INBOX')).toContain(identity(simpleMessage(`live${round}`)));
      }
      // An expunge on the server reaches the same session too (VANISHED on the reused connection).
      const c = await imapClient(dc.port, 'test1');
      await c.mailboxOpen('INBOX');
      const [gone] = (await c.search({ subject: 'live1' }, { uid: true })) as number[];
      await c.messageDelete(String(gone), { uid: true });
      await c.logout();
      const s = await session.run({});
      expectOk(s);
      expect(s.removed.b).toBe(1);
      expect(maildirIdentities(local, 'INBOX')).not.toContain(identity(simpleMessage('live1')));
      expect(maildirIdentities(local, 'INBOX')).toEqual((await imapIdentities(dc.port, 'test1', 'INBOX')).ids);
    } finally {
      await session.close();
    }
  });

  it('dry run reports the plan and changes nothing', async () => {
    const c = await imapClient(dc.port, 'test1');
    await c.append('INBOX', simpleMessage('dry1'));
    await c.logout();
    const before = maildirIdentities(local, 'INBOX');
    const d = await sync('main', { dryRun: true });
    expectOk(d);
    const inbox = d.folders.find((f) => f.folder === 'INBOX')!;
    expect(inbox.plan!.actions.filter((a) => a.kind === 'copy')).toHaveLength(1);
    expect(maildirIdentities(local, 'INBOX')).toEqual(before);
    expectOk(await sync());
    expect(maildirIdentities(local, 'INBOX')).toContain(identity(simpleMessage('dry1')));
  });
});

describe.runIf(enabled)('sync IMAP ↔ IMAP (two Dovecot users)', () => {
  let dc: Dovecot;
  let work: string;
  let config: string;

  beforeAll(async () => {
    dc = await startDovecot();
    work = tempDir();
    config = path.join(work, 'sync.toml');
    writeFileSync(
      config,
      `stateDir = "${work}/state"
[accounts.pair]
remote = { type = "imap", host = "127.0.0.1", port = ${dc.port}, tls = false, user = "test3", password = "pass" }
local = { type = "imap", host = "127.0.0.1", port = ${dc.port}, tls = false, user = "test4", password = "pass" }
`,
    );
  }, 60_000);

  afterAll(async () => {
    await dc?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const sync = async () => syncAccount(selectAccounts(await loadSyncConfig(config), config, ['pair'])[0]!);

  it('syncs messages, folders, flags and deletions between two accounts', async () => {
    const a = await imapClient(dc.port, 'test3');
    const b = await imapClient(dc.port, 'test4');
    for (let i = 0; i < 30; i++) await a.append('INBOX', simpleMessage(`a${i}`, 'x'.repeat(i * 500)), i % 3 ? [] : ['\\Seen', '$Label1']);
    await b.mailboxCreate('Only B');
    await b.append('Only B', simpleMessage('b1'), ['\\Flagged']);
    const s = await sync();
    expectOk(s);
    expect(s.copied).toEqual({ a: 30, b: 1 });
    for (const f of ['INBOX', 'Only B']) {
      const x = await imapIdentities(dc.port, 'test3', f);
      const y = await imapIdentities(dc.port, 'test4', f);
      expect(y.ids).toEqual(x.ids);
      expect([...y.flags.entries()].sort()).toEqual([...x.flags.entries()].sort());
    }
    // Changes on both sides, then a second sync.
    await a.mailboxOpen('INBOX');
    await a.messageFlagsAdd('1:5', ['\\Answered']);
    await a.messageDelete('30');
    await b.mailboxOpen('INBOX');
    await b.messageFlagsRemove('1:3', ['\\Seen']);
    await b.append('INBOX', simpleMessage('b-new'));
    await a.logout();
    await b.logout();
    const s2 = await sync();
    expectOk(s2);
    const x = await imapIdentities(dc.port, 'test3', 'INBOX');
    const y = await imapIdentities(dc.port, 'test4', 'INBOX');
    expect(x.ids.length).toBe(30);
    expect(y.ids).toEqual(x.ids);
    expect([...y.flags.entries()].sort()).toEqual([...x.flags.entries()].sort());
    expect(x.flags.get(identity(simpleMessage('a0', '')))).toEqual(['$Label1', '\\Answered']);
  });

  it('MULTIAPPEND with LITERAL+ returns the UIDs in order and stores the bytes unchanged', async () => {
    const ap = new ImapAppender({ host: '127.0.0.1', port: dc.port, tls: false, user: 'test5', password: async () => 'pass', label: 'test5', timeoutMs: 10_000 });
    const items = Array.from({ length: 25 }, (_, i) => ({ data: simpleMessage(`m${i}`, 'y'.repeat(i * 300)), flags: i % 2 ? ['\\Seen'] : [], internalDate: new Date(Date.UTC(2020, 0, 1 + i)) }));
    const r = await ap.append('INBOX', items, 10);
    await ap.close();
    expect(r.uids).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    const c = await imapClient(dc.port, 'test5');
    await c.mailboxOpen('INBOX');
    for await (const m of c.fetch('1:*', { source: true, flags: true, internalDate: true, uid: true })) {
      const i = m.uid - 1;
      expect(m.source!.equals(items[i]!.data)).toBe(true);
      expect(new Date(m.internalDate!).getTime()).toBe(items[i]!.internalDate.getTime());
      expect([...m.flags!].filter((f) => f !== '\\Recent')).toEqual(items[i]!.flags);
    }
    await c.logout();
    expect(existsSync(dc.maildir('test5'))).toBe(true);
  });
});
