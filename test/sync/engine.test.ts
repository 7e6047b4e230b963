/**
 * The engine end to end on two in-memory stores (StoreRepository over MemoryStore) and an
 * in-memory state database: copies both ways, the flag conflict rule, deletion policies, new
 * folders on either side, name translation, UIDVALIDITY changes, crashes between APPEND and
 * record, incremental runs, dry runs and the append-only (forward) mode.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/store/index.js';
import type { UserMailStore } from '../../src/store/index.js';
import { SyncSession, type SessionSpec } from '../../src/sync/engine.js';
import { SyncState } from '../../src/sync/state.js';
import { StoreRepository } from '../../src/sync/store-repository.js';
import { nameTranslator } from '../../src/sync/config.js';
import type { AppendItem, AppendResult, Repository, SnapshotOptions } from '../../src/sync/repository.js';
import { MaildirStore } from '../../src/store/maildir/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function msg(id: string, body = 'hello'): Buffer {
  return Buffer.from(`Message-ID: <${id}@test>\r\nSubject: ${id}\r\nFrom: a@example.org\r\n\r\n${body}\r\n`);
}

interface Side {
  store: MemoryStore;
  user: UserMailStore;
  repo: StoreRepository;
}

async function side(label: string): Promise<Side> {
  const store = new MemoryStore({ scryptLn: 1 });
  const user = await store.openUser('u');
  return { store, user, repo: new StoreRepository(store, { label, user: 'u' }) };
}

async function ids(s: Side, folder = 'INBOX'): Promise<string[]> {
  const h = await s.user.open(folder);
  const out: string[] = [];
  for (const m of await h.list()) {
    const data = (await h.read(m.uid))!.toString();
    out.push(/Message-ID: <([^@]+)@/.exec(data)![1]!);
  }
  await h.close();
  return out.sort();
}

async function flagsOf(s: Side, id: string, folder = 'INBOX'): Promise<string[]> {
  const h = await s.user.open(folder);
  for (const m of await h.list()) {
    if ((await h.read(m.uid))!.toString().includes(`<${id}@`)) {
      await h.close();
      return [...m.flags].sort();
    }
  }
  await h.close();
  throw new Error(`no ${id}`);
}

async function setFlags(s: Side, id: string, action: 'add' | 'remove', flags: string[], folder = 'INBOX'): Promise<void> {
  const h = await s.user.open(folder);
  for (const m of await h.list()) if ((await h.read(m.uid))!.toString().includes(`<${id}@`)) await h.updateFlags([m.uid], { action, flags });
  await h.close();
}

async function remove(s: Side, id: string, folder = 'INBOX'): Promise<void> {
  const h = await s.user.open(folder);
  for (const m of await h.list()) {
    if ((await h.read(m.uid))!.toString().includes(`<${id}@`)) {
      await h.updateFlags([m.uid], { action: 'add', flags: ['\\Deleted'] });
      await h.expunge([m.uid]);
    }
  }
  await h.close();
}

const sessions: SyncSession[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close();
});

function session(a: Repository, b: Repository, state: SyncState, extra: Partial<SessionSpec> = {}): SyncSession {
  const s = new SyncSession({ name: 'test', a, b, state, owns: false, ...extra });
  sessions.push(s);
  return s;
}

describe('sync engine on memory stores', () => {
  it('copies new messages both ways, then has nothing to do', async () => {
    const A = await side('A');
    const B = await side('B');
    await A.user.append('INBOX', [{ data: msg('a1') }, { data: msg('a2'), flags: ['\\Seen'] }]);
    await B.user.append('INBOX', [{ data: msg('b1'), flags: ['\\Flagged', '$Work'] }]);
    const state = SyncState.memory();
    const s = session(A.repo, B.repo, state);
    const r1 = await s.run();
    expect(r1.ok).toBe(true);
    expect(r1.copied).toEqual({ a: 2, b: 1 });
    expect(await ids(A)).toEqual(['a1', 'a2', 'b1']);
    expect(await ids(B)).toEqual(['a1', 'a2', 'b1']);
    expect(await flagsOf(A, 'b1')).toEqual(['$Work', '\\Flagged']);
    expect(await flagsOf(B, 'a2')).toEqual(['\\Seen']);
    const r2 = await s.run();
    expect(r2.copied).toEqual({ a: 0, b: 0 });
    expect(r2.flagged).toEqual({ a: 0, b: 0 });
    // The third run finds both sides unchanged by their counters alone.
    const r3 = await s.run();
    expect(r3.folders.every((f) => f.unchanged)).toBe(true);
  });

  it('merges conflicting flag changes: additions win, a removal beats unchanged', async () => {
    const A = await side('A');
    const B = await side('B');
    await A.user.append('INBOX', [{ data: msg('m1'), flags: ['\\Seen', '$x'] }]);
    const state = SyncState.memory();
    const s = session(A.repo, B.repo, state);
    await s.run();
    await setFlags(A, 'm1', 'remove', ['\\Seen']);
    await setFlags(B, 'm1', 'add', ['\\Flagged']);
    const r = await s.run();
    expect(r.ok).toBe(true);
    expect(await flagsOf(A, 'm1')).toEqual(['$x', '\\Flagged']);
    expect(await flagsOf(B, 'm1')).toEqual(['$x', '\\Flagged']);
  });

  it('follows the deletion policy of each side', async () => {
    const A = await side('A');
    const B = await side('B');
    await A.user.append('INBOX', [{ data: msg('d1') }, { data: msg('d2') }, { data: msg('d3') }]);
    const state = SyncState.memory();
    const s = session(A.repo, B.repo, state, { deletions: { a: 'never', b: 'trash' } });
    await s.run();
    // Deleted on A: B moves it to its trash. Deleted on B: A keeps it (never), and it is not copied back.
    await remove(A, 'd1');
    await remove(B, 'd2');
    const r = await s.run();
    expect(r.ok).toBe(true);
    expect(await ids(B)).toEqual(['d3']);
    expect(await ids(B, 'Trash')).toEqual(['d1']);
    expect(await ids(A)).toEqual(['d2', 'd3']);
    await s.run();
    expect(await ids(B)).toEqual(['d3']);
  });

  it('creates new folders on either side, with translated names', async () => {
    const A = await side('A');
    const B = await side('B');
    await A.user.createMailbox('Sent Items');
    await A.user.append('Sent Items', [{ data: msg('s1') }]);
    await B.user.createMailbox('Projects/x');
    await B.user.append('Projects/x', [{ data: msg('p1') }]);
    const state = SyncState.memory();
    const s = session(A.repo, B.repo, state, { names: nameTranslator({ nameMap: { 'Sent Items': 'Sent' } }) });
    const r = await s.run();
    expect(r.ok).toBe(true);
    expect(await ids(B, 'Sent')).toEqual(['s1']);
    expect(await ids(A, 'Projects/x')).toEqual(['p1']);
    const names = (await A.user.listMailboxes()).map((m) => m.name);
    expect(names).not.toContain('Sent');
  });

  it('refuses a translation that is not reversible on the folders seen', async () => {
    const A = await side('A');
    const B = await side('B');
    await A.user.createMailbox('Sent Items');
    await A.user.createMailbox('Sent');
    const s = session(A.repo, B.repo, SyncState.memory(), { names: nameTranslator({ nameMap: { 'Sent Items': 'Sent' } }) });
    const r = await s.run();
    expect(r.ok).toBe(false);
    expect(r.errors[0]!.kind).toBe('config');
    expect(r.errors[0]!.message).toMatch(/not reversible.*"Sent"/);
    expect((await B.user.listMailboxes()).map((m) => m.name)).toEqual(['INBOX']);
  });

  it('re-matches by Message-ID after a UIDVALIDITY change: no duplicates, no losses', async () => {
    const A = await side('A');
    const B = await side('B');
    await A.user.createMailbox('F');
    await A.user.append('F', [{ data: msg('u1') }, { data: msg('u2'), flags: ['\\Seen'] }, { data: Buffer.from('Subject: no id\r\n\r\nbody\r\n') }]);
    const state = SyncState.memory();
    const s = session(A.repo, B.repo, state);
    await s.run();
    // Recreate F on A: same messages, new UIDVALIDITY and UIDs (flags lost), plus a new one.
    await A.user.deleteMailbox('F');
    await A.user.createMailbox('F');
    await A.user.append('F', [{ data: msg('u2') }, { data: Buffer.from('Subject: no id\r\n\r\nbody\r\n') }, { data: msg('u1') }, { data: msg('u3') }]);
    const r = await s.run();
    expect(r.errors).toEqual([]);
    const hb = await B.user.open('F');
    expect((await hb.list()).length).toBe(4);
    await hb.close();
    const ha = await A.user.open('F');
    expect((await ha.list()).length).toBe(4);
    await ha.close();
    // Flags were not lost: the union after a re-match keeps B's \Seen.
    expect(await flagsOf(A, 'u2', 'F')).toEqual(['\\Seen']);
  });

  it('resumes after a crash between APPEND and its record without copying twice', async () => {
    const A = await side('A');
    const B = await side('B');
    await A.user.append('INBOX', [{ data: msg('c1') }, { data: msg('c2') }]);
    const state = SyncState.memory();
    // B's append stores the messages, then "crashes" before the applier can record them.
    await B.repo.open();
    const crashing: Repository = Object.create(B.repo) as Repository;
    crashing.append = async (folder: string, items: AppendItem[]): Promise<AppendResult> => {
      await B.repo.append(folder, items);
      throw new Error('simulated crash after APPEND');
    };
    const s1 = session(A.repo, crashing, state);
    const r1 = await s1.run();
    expect(r1.ok).toBe(false);
    const f = state.folders()[0]!;
    expect(state.intents(f.id).length).toBe(2);
    const s2 = session(A.repo, B.repo, state);
    const r2 = await s2.run();
    expect(r2.ok).toBe(true);
    expect(r2.copied).toEqual({ a: 0, b: 0 });
    expect(await ids(B)).toEqual(['c1', 'c2']);
    expect(state.intents(f.id)).toEqual([]);
    expect(state.pairs(f.id).length).toBe(2);
  });

  it('a full disk on the target ends the account with advice and a consistent state', async () => {
    const A = await side('A');
    const B = await side('B');
    await A.user.append('INBOX', [{ data: msg('f1') }, { data: msg('f2') }]);
    await B.repo.open();
    const full: Repository = Object.create(B.repo) as Repository;
    full.append = async (): Promise<AppendResult> => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    const state = SyncState.memory();
    const r = await session(A.repo, full, state).run();
    expect(r.ok).toBe(false);
    expect(r.errors[0]!.kind).toBe('full');
    expect(r.errors[0]!.advice).toMatch(/free disk space/);
    expect(state.integrityCheck()).toBe('ok');
    // The intents wait for the next run, which finds nothing landed and copies once.
    const r2 = await session(A.repo, B.repo, state).run();
    expect(r2.ok).toBe(true);
    expect(await ids(B)).toEqual(['f1', 'f2']);
  });

  it('quick mode without mod-sequences: a folder with unchanged counts is skipped, a full run sees its flag changes', async () => {
    const A = await side('A');
    const B = await side('B');
    await A.user.append('INBOX', [{ data: msg('q1') }]);
    // Side a as a server without CONDSTORE: no HIGHESTMODSEQ, no changesSince.
    await A.repo.open();
    const plain: Repository = Object.create(A.repo) as Repository;
    plain.capabilities = () => ({ ...A.repo.capabilities(), condstore: false, qresync: false });
    plain.status = async (f: string) => {
      const st = await A.repo.status(f);
      delete st.highestModSeq;
      return st;
    };
    const state = SyncState.memory();
    const s = session(plain, B.repo, state);
    expect((await s.run()).ok).toBe(true);
    expect((await s.run()).ok).toBe(true);
    await setFlags(A, 'q1', 'add', ['\\Flagged']);
    const quick = await s.run({ quick: true });
    expect(quick.folders.find((f) => f.folder === 'INBOX')!.unchanged).toBe(true);
    expect(await flagsOf(B, 'q1')).toEqual([]);
    const full = await s.run();
    expect(full.flagged.b).toBe(1);
    expect(await flagsOf(B, 'q1')).toEqual(['\\Flagged']);
  });

  it('a Maildir side whose directories did not change is not read at all, and a change is still seen', async () => {
    const A = await side('A');
    await A.user.append('INBOX', [{ data: msg('t1') }]);
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'imapkit-sync-token-'));
    const root = path.join(tmp, 'Mail');
    const store = new MaildirStore({ path: root });
    const B = new StoreRepository(store, { label: 'maildir', maildir: { root } });
    let reads = 0;
    const counting: Repository = Object.create(B) as Repository;
    counting.status = async (f: string) => {
      reads++;
      return B.status(f);
    };
    counting.snapshot = async (f: string, o?: SnapshotOptions) => {
      reads++;
      return B.snapshot(f, o);
    };
    await B.open();
    const state = SyncState.memory();
    const s = session(A.repo, counting, state);
    expect((await s.run()).ok).toBe(true);
    // Let the directory times age past the file system's timestamp tick.
    await new Promise((r) => setTimeout(r, 120));
    await s.run();
    await new Promise((r) => setTimeout(r, 120));
    reads = 0;
    const quiet = await s.run();
    expect(quiet.folders.every((f) => f.unchanged)).toBe(true);
    expect(reads).toBe(0);
    // Another program adds a message to the Maildir: the token changes and the message is copied.
    const other = new MaildirStore({ path: root });
    const u = await other.openUser('x');
    await u.append('INBOX', [{ data: msg('t2') }]);
    await u.close();
    await other.close();
    await new Promise((r) => setTimeout(r, 120));
    const r = await s.run();
    expect(r.copied.b).toBe(1);
    expect(await ids(A)).toEqual(['t1', 't2']);
    await B.close();
    await store.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('dry run plans without changing anything', async () => {
    const A = await side('A');
    const B = await side('B');
    await A.user.createMailbox('New');
    await A.user.append('New', [{ data: msg('n1') }]);
    const state = SyncState.memory();
    const s = session(A.repo, B.repo, state);
    const r = await s.run({ dryRun: true });
    const f = r.folders.find((x) => x.folder === 'New')!;
    expect(f.created).toBe('b');
    expect(f.plan!.actions.map((x) => x.kind)).toEqual(['copy']);
    expect((await B.user.listMailboxes()).map((m) => m.name)).toEqual(['INBOX']);
    expect(state.pairs(state.folder('New', 'New').id)).toEqual([]);
  });

  it('append-only: forwards new messages once, skips old and already-seen ones', async () => {
    const A = await side('A');
    const B = await side('B');
    const old = new Date('2020-01-01T00:00:00Z');
    await A.user.append('INBOX', [{ data: msg('old'), internalDate: old }, { data: msg('f1') }]);
    const state = SyncState.memory();
    state.seenAdd('fwd', [{ key: '<seen@test>' }]);
    const s = session(A.repo, B.repo, state, { appendOnly: true, direction: 'a-to-b', selector: (n) => n === 'INBOX' });
    const since = new Date('2024-01-01T00:00:00Z');
    const copied: string[] = [];
    const r1 = await s.run({ since, dedupeScope: 'fwd', onCopied: (_f, m) => void copied.push(m.messageId ?? '') });
    expect(r1.ok).toBe(true);
    expect(await ids(B)).toEqual(['f1']);
    expect(copied).toEqual(['<f1@test>']);
    await A.user.append('INBOX', [{ data: msg('seen') }, { data: msg('f2') }]);
    await setFlags(A, 'f1', 'add', ['\\Seen']);
    const r2 = await s.run({ since, dedupeScope: 'fwd' });
    expect(r2.ok).toBe(true);
    expect(await ids(B)).toEqual(['f1', 'f2']);
    // No flag sync in append-only mode, and the high-water mark keeps the pair table small.
    expect(await flagsOf(B, 'f1')).toEqual([]);
    const f = state.folders()[0]!;
    expect(f.a.maxUid).toBe(4);
    expect(state.pairs(f.id)).toEqual([]);
    expect(state.seenHas('fwd', '<f2@test>')).toBe(true);
  });
});
