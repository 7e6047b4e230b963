/**
 * The small parts of sync: Message-ID and hash of message bytes, UID sets, password sources
 * (netrc, command, file, env), the state database (lock, intents, seen window), user interfaces.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { contentHash, crlfSize, messageIdOf } from '../../src/sync/message.js';
import { normalizeFingerprint, uidSet } from '../../src/sync/imap-repository.js';
import { expandUidSet, imapDateTime } from '../../src/sync/imap-append.js';
import { CredentialError, netrcLookup, resolvePassword } from '../../src/sync/credentials.js';
import { SyncState, StateLockedError } from '../../src/sync/state.js';
import { createUi } from '../../src/sync/ui.js';
import type { AccountSummary } from '../../src/sync/engine.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-sync-parts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('message identity', () => {
  it('finds the Message-ID, folded or not, only in the header', () => {
    expect(messageIdOf(Buffer.from('Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody'))).toBe('<a@b>');
    expect(messageIdOf(Buffer.from('message-id:\r\n  <folded@x.y>\r\nTo: z\r\n\r\n'))).toBe('<folded@x.y>');
    expect(messageIdOf(Buffer.from('Subject: x\n\nMessage-ID: <in-body@x>\n'))).toBeNull();
    expect(messageIdOf(Buffer.from('Message-ID: \r\n\r\n'))).toBeNull();
    expect(messageIdOf(Buffer.from('Message-Id: no-brackets@x\r\n\r\n'))).toBe('no-brackets@x');
  });

  it('hashes CRLF and LF copies alike, and counts RFC822.SIZE with CRLF', () => {
    expect(contentHash(Buffer.from('a\r\nb\r\n'))).toBe(contentHash(Buffer.from('a\nb\n')));
    expect(contentHash(Buffer.from('a\r\nb'))).not.toBe(contentHash(Buffer.from('a\r\nc')));
    expect(crlfSize(Buffer.from('a\nb\r\n'))).toBe(6);
  });
});

describe('IMAP helpers', () => {
  it('compresses and expands UID sets', () => {
    expect(uidSet([5, 1, 2, 3, 9, 10, 12])).toBe('1:3,5,9:10,12');
    expect(expandUidSet('4:6,9')).toEqual([4, 5, 6, 9]);
    expect(expandUidSet('7:5')).toEqual([5, 6, 7]);
  });

  it('normalises fingerprints and formats dates', () => {
    const hex = 'ab'.repeat(32);
    expect(normalizeFingerprint(`sha256:${hex}`)).toBe(Array(32).fill('AB').join(':'));
    expect(() => normalizeFingerprint('abcd')).toThrow(/64 hex digits/);
    expect(imapDateTime(new Date(Date.UTC(2024, 1, 3, 4, 5, 6)))).toBe('"03-Feb-2024 04:05:06 +0000"');
  });
});

describe('password sources', () => {
  it('reads ~/.netrc entries by machine and login, with a default', () => {
    const text = 'machine mail.example.org login alice password "s3 cret"\nmachine mail.example.org login bob password bobpw\ndefault login any password dflt\n';
    expect(netrcLookup(text, 'mail.example.org', 'bob')).toEqual({ login: 'bob', password: 'bobpw' });
    expect(netrcLookup(text, 'MAIL.example.org')?.password).toBe('s3 cret');
    expect(netrcLookup(text, 'other.example.org')?.password).toBe('dflt');
  });

  it('runs a password command (first line), reads a file and an environment variable', async () => {
    expect(await resolvePassword({ kind: 'command', command: 'printf "pw1\\nsecond"' })).toBe('pw1');
    expect(await resolvePassword({ kind: 'command', command: ['/bin/echo', 'pw2'] })).toBe('pw2');
    const f = path.join(dir, 'pw');
    writeFileSync(f, 'filepw\n');
    expect(await resolvePassword({ kind: 'file', path: f })).toBe('filepw');
    process.env.SYNC_PARTS_PW = 'envpw';
    expect(await resolvePassword({ kind: 'env', name: 'SYNC_PARTS_PW' })).toBe('envpw');
    const nf = path.join(dir, 'netrc');
    writeFileSync(nf, 'machine h login u password np\n');
    expect(await resolvePassword({ kind: 'netrc', file: nf, host: 'h', user: 'u' })).toBe('np');
  });

  it('says where a password could not come from, never what it is', async () => {
    await expect(resolvePassword({ kind: 'command', command: 'echo oops >&2; exit 3' })).rejects.toThrow(/passwordCommand "echo oops >&2; exit 3" failed \(exit status 3\): oops/);
    await expect(resolvePassword({ kind: 'env', name: 'SYNC_PARTS_MISSING' })).rejects.toBeInstanceOf(CredentialError);
    await expect(resolvePassword({ kind: 'file', path: path.join(dir, 'nope') })).rejects.toThrow(/cannot read \(ENOENT\)/);
  });
});

describe('state database', () => {
  const setLock = (f: string, owner: string) => {
    const raw = SyncState.open(f, { lock: false });
    (raw as unknown as { db: { prepare: (q: string) => { run: (...a: unknown[]) => void } } }).db.prepare("INSERT INTO meta (key, value) VALUES ('lock', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(owner);
    raw.close();
  };

  it('takes over the lock of a process that died (SIGKILL leaves it behind)', () => {
    const f = path.join(dir, 'lock.sqlite');
    const dead = spawnSync('true').pid!;
    setLock(f, `${os.hostname()}:${dead}`);
    const s = SyncState.open(f);
    s.close();
    // close() released it: another opener gets it at once.
    SyncState.open(f).close();
  });

  it('refuses a lock held by another live process', () => {
    const f = path.join(dir, 'lock2.sqlite');
    // pid 1 is always alive.
    setLock(f, `${os.hostname()}:1`);
    expect(() => SyncState.open(f)).toThrow(StateLockedError);
  });

  it('keeps intents, pairs and a pruned seen window', () => {
    const s = SyncState.memory();
    const f = s.folder('INBOX', 'INBOX');
    const [i1] = s.addIntents(f.id, [{ from: 'a', srcUid: 3, messageId: '<m@x>', size: 10, hash: 'h', flags: ['\\Seen'], targetMinUid: 7 }]);
    expect(s.intents(f.id)).toEqual([{ id: i1, from: 'a', srcUid: 3, messageId: '<m@x>', size: 10, hash: 'h', flags: ['\\Seen'], targetMinUid: 7 }]);
    const [p1] = s.writePairs(f.id, [{ aUid: 3, bUid: 9, flags: ['\\Seen'], messageId: '<m@x>', size: 10, hash: 'h' }], [i1!], { scope: 'fwd', keys: ['<m@x>'] });
    expect(s.intents(f.id)).toEqual([]);
    expect(s.pairs(f.id)).toEqual([{ id: p1, aUid: 3, bUid: 9, flags: ['\\Seen'], messageId: '<m@x>', size: 10, hash: 'h' }]);
    s.uidValidityChanged(f.id, 'a', 99);
    expect(s.pairs(f.id)[0]!.aStale).toBe(true);
    expect(s.folderById(f.id)!.a.uidValidity).toBe(99);
    expect(s.seenHas('fwd', '<m@x>')).toBe(true);
    s.seenAdd('fwd', [{ key: 'old', at: new Date(Date.now() - 40 * 86400_000) }]);
    expect(s.seenPrune(new Date(Date.now() - 31 * 86400_000), 'fwd')).toBe(1);
    expect(s.seenHas('fwd', 'old')).toBe(false);
    expect(s.seenHas('fwd', '<m@x>')).toBe(true);
    expect(s.integrityCheck()).toBe('ok');
  });
});

describe('user interfaces', () => {
  const summary: AccountSummary = {
    account: 'work',
    ok: false,
    folders: [],
    errors: [{ kind: 'auth', message: 'imaps://u@h:993: login failed', advice: 'check the user name and password of account work' }],
    copied: { a: 3, b: 1 },
    flagged: { a: 0, b: 2 },
    removed: { a: 0, b: 0 },
    bytes: 2048,
    durationMs: 1200,
    dryRun: false,
  };
  const collect = () => {
    const out = new PassThrough();
    const err = new PassThrough();
    let o = '';
    let e = '';
    out.on('data', (d: Buffer) => (o += d.toString()));
    err.on('data', (d: Buffer) => (e += d.toString()));
    return { out, err, text: () => ({ o, e }) };
  };

  it('json: one object per event, bigints as strings', () => {
    const c = collect();
    const ui = createUi('json', { out: c.out, err: c.err });
    ui.onEvent({ type: 'folder-start', account: 'work', folder: 'INBOX' });
    ui.finish([summary]);
    const lines = c.text().o.trim().split('\n').map((l) => JSON.parse(l) as { type: string; ok?: boolean });
    expect(lines.map((l) => l.type)).toEqual(['folder-start', 'done']);
    expect(lines[1]!.ok).toBe(false);
  });

  it('quiet: errors only, with the account and what to do', () => {
    const c = collect();
    const ui = createUi('quiet', { out: c.out, err: c.err });
    ui.onEvent({ type: 'folder-start', account: 'work', folder: 'INBOX' });
    ui.finish([summary]);
    expect(c.text().o).toBe('');
    expect(c.text().e).toContain('imapkit sync: account work: imaps://u@h:993: login failed\n  what to do: check the user name and password of account work');
  });

  it('plain: a line per account with totals', () => {
    const c = collect();
    const ui = createUi('plain', { out: c.out, err: c.err });
    ui.finish([summary]);
    expect(c.text().o).toMatch(/^work: copied 3 → local, 1 → remote; flags 2 local, 0 remote/);
  });

  it('tty falls back to plain when the output is not a terminal', () => {
    const c = collect();
    const ui = createUi('tty', { out: c.out, err: c.err });
    ui.finish([summary]);
    expect(c.text().o).toMatch(/^work: copied/);
  });
});
