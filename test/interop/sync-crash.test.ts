/**
 * The crash test: `imapkit sync` (a child process) against a private Dovecot and a local Maildir
 * is killed with SIGKILL at 50 random moments while both sides keep changing (new messages, flag
 * changes, deletions on either side), and re-run each time. At the end both sides must hold
 * exactly the same messages by Message-ID and body hash: none lost, none twice. The state
 * database must pass SQLite's integrity check, and the Maildir must open in Dovecot and in mbsync.
 */
import { spawn } from 'node:child_process';
import { cpSync, chownSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { MaildirStore } from '../../src/store/maildir/index.js';
import { generateCorpus, Rng } from '../fixtures/corpus.js';
import { bundledCli, havePeer, identity, imapClient, imapIdentities, maildirIdentities, run, startDovecot, tempDir, type Dovecot } from './sync-helpers.js';

const KILLS = 50;
const FOLDERS = ['INBOX', 'Work'];
const enabled = havePeer('dovecot', 'sync crash test');

describe.runIf(enabled)('sync crash safety against Dovecot', () => {
  let dc: Dovecot;
  let work: string;
  let local: string;
  let statePath: string;
  let cli: { command: string; args: string[] };
  const seed = Number(process.env.SYNC_CRASH_SEED ?? Date.now() % 100000);
  const rng = new Rng(seed);
  // Messages that must be on both sides at the end, by identity.
  const expected = new Set<string>();
  let counter = 0;

  const fresh = (): Buffer => {
    counter++;
    // Every fifth has no Message-ID: those are matched by their hash.
    const mid = counter % 5 === 0 ? '' : `Message-ID: <new-${counter}-${seed}@crash.test>\r\n`;
    return Buffer.from(`From: x@example.org\r\nSubject: new ${counter}\r\n${mid}\r\nbody ${counter} ${'x'.repeat(rng.int(10, 3000))}\r\n`);
  };

  beforeAll(async () => {
    dc = await startDovecot();
    work = tempDir();
    local = path.join(work, 'Mail');
    statePath = path.join(work, 'state.sqlite');
    cli = await bundledCli();
    // Messages every peer takes as they are: no NUL bytes, a header that ends (mbsync skips others).
    const corpus = generateCorpus(160, 11).filter((m) => !m.raw.includes(0) && m.raw.includes('\r\n\r\n'));
    const c = await imapClient(dc.port, 'test1');
    await c.mailboxCreate('Work');
    for (const [i, m] of corpus.entries()) {
      const folder = i % 4 === 0 ? 'Work' : 'INBOX';
      await c.append(folder, m.raw, i % 3 === 0 ? ['\\Seen'] : []);
    }
    await c.logout();
    for (const f of FOLDERS) for (const id of (await imapIdentities(dc.port, 'test1', f)).ids) expected.add(`${f} ${id}`);
  }, 120_000);

  afterAll(async () => {
    await dc?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /**
   * Hashes of messages the state database records as synced on both sides. Only those are deleted
   * by the test: a copy whose sync was interrupted before it was recorded may be made again after
   * the user deleted it (the sync cannot tell "never landed" from "landed, then deleted").
   */
  function confirmed(): Set<string> {
    if (!existsSync(statePath)) return new Set();
    const db = new Database(statePath, { readonly: true });
    try {
      const rows = db.prepare('SELECT hash FROM pair WHERE a_uid IS NOT NULL AND b_uid IS NOT NULL AND hash IS NOT NULL').all() as Array<{ hash: string }>;
      return new Set(rows.map((r) => r.hash.slice(0, 16)));
    } finally {
      db.close();
    }
  }
  const deletable = (id: string, synced: Set<string>) => synced.has(id.split(' ')[1]!);

  /** Random changes on both sides between runs. */
  async function mutate(): Promise<void> {
    const synced = confirmed();
    const c = await imapClient(dc.port, 'test1');
    try {
      for (const f of FOLDERS) {
        const mb = await c.mailboxOpen(f);
        for (let k = rng.int(0, 6); k > 0; k--) {
          const raw = fresh();
          await c.append(f, raw, rng.chance(0.5) ? ['\\Flagged'] : []);
          expected.add(`${f} ${identity(raw)}`);
        }
        if (mb.exists > 3) {
          for (let k = 0; k < 3; k++) {
            const seq = rng.int(1, mb.exists);
            const flag = rng.pick(['\\Seen', '\\Flagged', '$Label1']);
            if (rng.chance(0.5)) await c.messageFlagsAdd(String(seq), [flag]);
            else await c.messageFlagsRemove(String(seq), [flag]);
          }
          if (rng.chance(0.3)) {
            const seq = rng.int(1, mb.exists);
            const m = await c.fetchOne(String(seq), { source: true });
            if (m && m.source && deletable(identity(m.source), synced)) {
              await c.messageDelete(String(seq));
              expected.delete(`${f} ${identity(m.source)}`);
            }
          }
        }
      }
    } finally {
      await c.logout().catch(() => undefined);
    }
    // The local side, as a mail client would change it (the Maildir may not exist before the first run).
    if (!readdirSafe(local).includes('cur')) return;
    const store = new MaildirStore({ path: local });
    const u = await store.openUser('local');
    try {
      for (const f of FOLDERS) {
        if (!(await u.listMailboxes()).some((m) => m.name === f)) continue;
        for (let k = rng.int(0, 3); k > 0; k--) {
          const raw = fresh();
          await u.append(f, [{ data: raw, flags: rng.chance(0.5) ? ['\\Seen'] : [] }]);
          expected.add(`${f} ${identity(raw)}`);
        }
        const h = await u.open(f);
        const list = await h.list();
        if (list.length > 3) {
          for (let k = 0; k < 3; k++) {
            const m = list[rng.int(0, list.length - 1)]!;
            await h.updateFlags([m.uid], { action: rng.chance(0.5) ? 'add' : 'remove', flags: [rng.pick(['\\Seen', '\\Answered', '$Label2'])] });
          }
          if (rng.chance(0.3)) {
            const m = list[rng.int(0, list.length - 1)]!;
            const data = await h.read(m.uid);
            if (data && deletable(identity(data), synced)) {
              await h.updateFlags([m.uid], { action: 'add', flags: ['\\Deleted'] });
              await h.expunge([m.uid]);
              expected.delete(`${f} ${identity(data)}`);
            }
          }
        }
        await h.close();
      }
    } finally {
      await u.close();
      await store.close();
    }
  }

  function readdirSafe(d: string): string[] {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  }

  const syncArgs = () => [...cli.args, 'sync', `imap://test1@127.0.0.1:${dc.port}?tls=false`, `maildir:${local}`, '--ui', 'json', '--state', statePath];
  const env = () => ({ ...process.env, IMAPKIT_PASSWORD: 'pass', XDG_DATA_HOME: path.join(work, 'xdg') });

  /** Start a sync and SIGKILL it at a random moment; true when it was still running then. */
  function syncAndKill(): Promise<boolean> {
    return new Promise((resolve) => {
      const child = spawn(cli.command, syncArgs(), { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let exited = false;
      let killed = false;
      let lines = 0;
      const byEvent = rng.chance(0.6);
      const atLine = rng.int(1, 14);
      const kill = () => {
        if (exited || killed) return;
        killed = true;
        child.kill('SIGKILL');
      };
      // Half the kills come after a number of progress events (inside the work), the rest at a random time.
      if (byEvent) {
        child.stdout.on('data', (d: Buffer) => {
          lines += d.toString().split('\n').length - 1;
          if (lines >= atLine) setTimeout(kill, rng.int(0, 20));
        });
      } else {
        child.stdout.resume();
        setTimeout(kill, rng.int(30, 700));
      }
      child.stderr.resume();
      child.on('exit', () => {
        exited = true;
        resolve(killed);
      });
    });
  }

  it(
    `survives ${KILLS} SIGKILLs during two-way syncs: no message lost, none twice`,
    async () => {
      let killedRunning = 0;
      for (let i = 0; i < KILLS; i++) {
        await mutate();
        if (await syncAndKill()) killedRunning++;
      }
      // Then to completion: every change is on both sides, and a second run has nothing to do.
      const done = await run(cli.command, syncArgs(), { env: env(), timeoutMs: 120_000 });
      expect(done.code, done.stderr + done.stdout.slice(-2000)).toBe(0);
      const again = await run(cli.command, syncArgs(), { env: env(), timeoutMs: 120_000 });
      expect(again.code, again.stderr).toBe(0);
      const last = JSON.parse(again.stdout.trim().split('\n').filter((l) => l.includes('"account-done"')).pop()!) as { summary: { copied: { a: number; b: number } } };
      expect(last.summary.copied).toEqual({ a: 0, b: 0 });

      for (const f of FOLDERS) {
        const remote = (await imapIdentities(dc.port, 'test1', f)).ids;
        const localIds = maildirIdentities(local, f);
        const want = [...expected].filter((e) => e.startsWith(`${f} `)).map((e) => e.slice(f.length + 1)).sort();
        expect(new Set(remote).size, `duplicates on the server in ${f} (seed ${seed})`).toBe(remote.length);
        expect(new Set(localIds).size, `duplicates in the Maildir in ${f} (seed ${seed})`).toBe(localIds.length);
        expect(localIds, `local ${f} equals remote (seed ${seed})`).toEqual(remote);
        expect(remote, `nothing lost in ${f} (seed ${seed})`).toEqual(want);
      }
      // Most kills hit a running sync (not one that had already finished).
      expect(killedRunning).toBeGreaterThanOrEqual(KILLS * 0.7);
      const db = new Database(statePath, { readonly: true });
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect((db.prepare('SELECT count(*) AS n FROM intent').get() as { n: number }).n).toBe(0);
      db.close();
    },
    300_000,
  );

  it('leaves a Maildir that Dovecot serves as it is', async () => {
    const home = dc.maildir('test2');
    const owner = statSync(path.dirname(home));
    cpSync(local, home, { recursive: true });
    const chown = (p: string) => {
      chownSync(p, owner.uid, owner.gid);
      if (statSync(p).isDirectory()) for (const e of readdirSync(p)) chown(path.join(p, e));
    };
    if (process.getuid?.() === 0) chown(home);
    for (const f of FOLDERS) {
      const served = await imapIdentities(dc.port, 'test2', f);
      expect(served.ids).toEqual(maildirIdentities(local, f));
    }
    const log = readFileSync(path.join(dc.dir, 'dovecot.log'), 'utf8');
    expect(log.split('\n').filter((l) => /test2.*(Error|Warning|Panic|corrupt)/i.test(l))).toEqual([]);
  });

  it.runIf(havePeer('mbsync', 'mbsync reading the synced Maildir'))('leaves a Maildir that mbsync reads without complaint', async () => {
    // mbsync renames files it syncs, so it reads a copy; it pulls everything into an empty Maildir.
    const copy = path.join(work, 'copy');
    const into = path.join(work, 'into');
    cpSync(local, copy, { recursive: true });
    const rc = path.join(work, 'mbsyncrc');
    writeFileSync(
      rc,
      [
        'MaildirStore ours',
        `Inbox ${copy}`,
        'SubFolders Maildir++',
        '',
        'MaildirStore fresh',
        `Inbox ${into}`,
        'SubFolders Maildir++',
        '',
        'Channel check',
        'Far :ours:',
        'Near :fresh:',
        'Patterns *',
        'Create Near',
        'Sync Pull',
        `SyncState ${work}/mbsync-state/`,
        '',
      ].join('\n'),
    );
    const r = await run('mbsync', ['-c', rc, '-a'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/error|corrupt|cannot|warning/i);
    for (const f of FOLDERS) expect(maildirIdentities(into, f, true)).toEqual(maildirIdentities(local, f));
  });
});
