/**
 * The maildir store against a real Dovecot on the same files (scripts/dovecot.sh): a Maildir Dovecot
 * filled is served by imapkit exactly as Dovecot serves it, one imapkit filled is served by Dovecot
 * exactly as imapkit serves it, and both serving one Maildir at once lose and duplicate no UID.
 * Both servers are read with the same IMAP client code, so "the same" means the same over IMAP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';
import { MaildirStore } from '../../src/store/maildir/store.js';
import { PasswdFileUserDb } from '../../src/auth/passwd-file.js';
import { ImapServer } from '../../src/server/server.js';
import { silentLogger } from '../../src/log/logger.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOVECOT = '/usr/sbin/dovecot';
const LDA = '/usr/lib/dovecot/dovecot-lda';

function dovecotInstalled(): boolean {
  if (existsSync(DOVECOT) && existsSync(LDA)) return true;
  if (process.env.CI === 'true') throw new Error('dovecot is not installed (CI=true: failing instead of skipping)');
  console.warn('\n########## dovecot is not installed: the Maildir/Dovecot compatibility checks are SKIPPED (run scripts/install-peers.sh) ##########\n');
  return false;
}
const haveDovecot = dovecotInstalled();

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** One message as an IMAP server reports it. */
interface Msg {
  uid: number;
  flags: string[];
  /** INTERNALDATE in whole seconds (IMAP's precision). */
  date: number;
  size: number;
  body: string;
}

/** One mailbox as an IMAP server reports it. */
interface Box {
  uidValidity: number;
  uidNext: number;
  subscribed: boolean;
  messages: Msg[];
}

function client(port: number, user: string): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: 'pass' }, logger: false, disableAutoIdle: true });
}

/** Everything a server reports of a user's selectable mailboxes. */
async function snapshot(port: number, user: string): Promise<Map<string, Box>> {
  const c = client(port, user);
  await c.connect();
  const out = new Map<string, Box>();
  try {
    const boxes = await c.list();
    for (const b of boxes) {
      if (b.flags.has('\\Noselect') || b.flags.has('\\NonExistent')) continue;
      const lock = await c.getMailboxLock(b.path, { readOnly: true });
      try {
        const mb = c.mailbox as { uidValidity: bigint; uidNext: number; exists: number };
        const messages: Msg[] = [];
        if (mb.exists > 0) {
          for await (const m of c.fetch('1:*', { uid: true, flags: true, internalDate: true, size: true, source: true })) {
            messages.push({
              uid: m.uid,
              flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort(),
              date: Math.floor(new Date(m.internalDate as Date).getTime() / 1000),
              size: m.size as number,
              body: (m.source as Buffer).toString('latin1'),
            });
          }
        }
        messages.sort((x, y) => x.uid - y.uid);
        out.set(b.path, { uidValidity: Number(mb.uidValidity), uidNext: mb.uidNext, subscribed: b.subscribed === true, messages });
      } finally {
        lock.release();
      }
    }
  } finally {
    await c.logout().catch(() => undefined);
  }
  return out;
}

function sortedEntries(m: Map<string, Box>): Array<[string, Box]> {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

const message = (i: number | string, extra = ''): string =>
  `From: Sender <s@example.org>\r\nTo: r@example.org\r\nSubject: message ${i}\r\nMessage-ID: <${i}@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nBody of ${i}${extra}\r\nsecond line\r\n`;

/**
 * dovecot-lda takes no INTERNALDATE: Dovecot caches the second its save began while the file's mtime
 * (what any other reader sees) is when the write ended, which under load is the next second. For
 * those messages only, check the dates are within 2 s of each other, then compare everything else.
 */
function alignLdaDates(view: Map<string, Box>, reference: Map<string, Box>): Map<string, Box> {
  for (const [name, box] of view) {
    const ref = reference.get(name);
    for (const m of box.messages) {
      const r = ref?.messages.find((x) => x.uid === m.uid);
      if (!r || !/Subject: (via lda|message lda-)/.test(m.body)) continue;
      expect(Math.abs(m.date - r.date)).toBeLessThanOrEqual(2);
      m.date = r.date;
    }
  }
  return view;
}

function deliverWithLda(conf: string, user: string, data: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(LDA, ['-c', conf, '-d', user], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`dovecot-lda exited ${code}: ${err}`))));
    p.stdin.end(data);
  });
}

describe.runIf(haveDovecot)('Maildir compatibility with Dovecot', () => {
  let dir: string;
  let dovecotPort: number;
  let imapkitPort: number;
  let server: ImapServer;
  let store: MaildirStore;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-maildir-dovecot-'));
    // Dovecot's auth and mail processes run as other users: they must be able to enter the directory.
    chmodSync(dir, 0o755);
    let started = false;
    for (let attempt = 0; attempt < 4 && !started; attempt++) {
      dovecotPort = await freePort();
      // The daemon keeps inherited pipes open: give it none, or the call never returns.
      started = spawnSync('bash', [path.join(ROOT, 'scripts/dovecot.sh'), 'start', dir, String(dovecotPort)], { stdio: 'ignore' }).status === 0;
    }
    if (!started) throw new Error('dovecot did not start');
    store = new MaildirStore({ path: path.join(dir, 'home', '%u', 'Maildir'), rescanIntervalMs: 500, warn: () => undefined });
    server = new ImapServer({ store, users: new PasswdFileUserDb(path.join(dir, 'passwd')), host: '127.0.0.1', port: 0, log: silentLogger() });
    imapkitPort = (await server.listen()).port;
  });

  afterAll(async () => {
    await server?.close();
    await store?.close();
    if (dir) {
      spawnSync('bash', [path.join(ROOT, 'scripts/dovecot.sh'), 'stop', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves a Maildir that Dovecot filled exactly as Dovecot does', async () => {
    const c = client(dovecotPort, 'test1');
    await c.connect();
    await c.mailboxCreate('Parent/Child');
    await c.mailboxCreate('Entwürfe');
    await c.mailboxSubscribe('Entwürfe');
    for (let i = 0; i < 12; i++) {
      const flags = [['\\Seen'], ['\\Seen', '$Label1'], ['Foo', '\\Flagged'], []][i % 4]!;
      await c.append(i % 3 === 2 ? 'Parent/Child' : 'INBOX', message(i), flags, new Date(Date.UTC(2023, 0, i + 1, 12, 30, 15)));
    }
    await c.append('Entwürfe', message('draft'), ['\\Draft'], new Date(Date.UTC(2022, 5, 6, 7, 8, 9)));
    // LF-only bytes, as an MDA writes them: served with CRLF by both.
    await deliverWithLda(path.join(dir, 'dovecot.conf'), 'test1', 'From: lda@example.org\nSubject: via lda\n\nhello\nworld\n');
    let lock = await c.getMailboxLock('INBOX');
    await c.messageFlagsAdd('1:3', ['\\Answered', 'Bar'], { uid: true });
    await c.messageFlagsRemove('2', ['$Label1'], { uid: true });
    await c.messageFlagsAdd('4', ['\\Deleted'], { uid: true });
    await c.messageDelete('4', { uid: true });
    lock.release();
    lock = await c.getMailboxLock('Parent/Child');
    await c.messageFlagsSet('1', ['\\Seen', 'Baz'], { uid: true });
    lock.release();
    await c.logout();

    const fromDovecot = await snapshot(dovecotPort, 'test1');
    const fromImapkit = alignLdaDates(await snapshot(imapkitPort, 'test1'), fromDovecot);
    expect(fromDovecot.get('INBOX')!.messages.length).toBeGreaterThanOrEqual(8);
    expect(fromDovecot.get('INBOX')!.messages.some((m) => m.body.includes('via lda'))).toBe(true);
    expect(fromDovecot.get('Parent/Child')!.messages[0]!.flags).toEqual(['Baz', '\\Seen']);
    expect(sortedEntries(fromImapkit)).toEqual(sortedEntries(fromDovecot));
  });

  it('a Maildir imapkit filled is served by Dovecot exactly as imapkit serves it', async () => {
    const c = client(imapkitPort, 'test2');
    await c.connect();
    await c.mailboxCreate('Archive/2023');
    await c.mailboxCreate('Ünïcode');
    await c.mailboxSubscribe('Archive/2023');
    for (let i = 0; i < 12; i++) {
      const flags = [['\\Seen', 'Work'], ['\\Flagged'], [], ['$Forwarded', 'Work', '\\Answered']][i % 4]!;
      await c.append(i % 4 === 3 ? 'Archive/2023' : 'INBOX', message(i, i % 2 ? '\nbare LF inside' : ''), flags, new Date(Date.UTC(2021, 2, i + 1, 1, 2, 3)));
    }
    await c.append('Ünïcode', message('u'), ['\\Draft', 'Entwurf']);
    let lock = await c.getMailboxLock('INBOX');
    await c.messageFlagsAdd('1:2', ['\\Answered', 'Later'], { uid: true });
    await c.messageFlagsRemove('1', ['Work'], { uid: true });
    await c.messageCopy('1:3', 'Archive/2023', { uid: true });
    await c.messageMove('5', 'Ünïcode', { uid: true });
    await c.messageFlagsAdd('6', ['\\Deleted'], { uid: true });
    await c.messageDelete('6', { uid: true });
    lock.release();
    lock = await c.getMailboxLock('Archive/2023');
    await c.messageFlagsSet('1', ['Only'], { uid: true });
    lock.release();
    await c.logout();

    // Dovecot's first login creates its auto mailboxes; take imapkit's view after that.
    const fromDovecot = await snapshot(dovecotPort, 'test2');
    const fromImapkit = await snapshot(imapkitPort, 'test2');
    expect(fromImapkit.get('Archive/2023')!.messages.length).toBe(6);
    expect(fromImapkit.get('Ünïcode')!.messages.length).toBe(2);
    expect(sortedEntries(fromDovecot)).toEqual(sortedEntries(fromImapkit));
    // And Dovecot can change what imapkit wrote (ownership and format allow it).
    const d = client(dovecotPort, 'test2');
    await d.connect();
    lock = await d.getMailboxLock('INBOX');
    await d.messageFlagsAdd('1:*', ['\\Seen', 'FromDovecot'], { uid: true });
    lock.release();
    await d.append('INBOX', message('dv'), ['\\Flagged'], new Date(Date.UTC(2021, 5, 1, 2, 3, 4)));
    await d.logout();
    expect(sortedEntries(await snapshot(imapkitPort, 'test2'))).toEqual(sortedEntries(await snapshot(dovecotPort, 'test2')));
  });

  it('Dovecot and imapkit serving one Maildir at once lose and duplicate no UID and agree', async () => {
    const conf = path.join(dir, 'dovecot.conf');
    const uidsBySubject = new Map<string, number[]>();
    const known: number[] = [];
    const record = (subject: string, uid: number | undefined): void => {
      if (uid === undefined) return;
      uidsBySubject.set(subject, [...(uidsBySubject.get(subject) ?? []), uid]);
      known.push(uid);
    };
    const pick = (i: number): string => String(known.length ? known[(i * 7919) % known.length] : 1);
    const FLAGS = ['\\Seen', '\\Flagged', '\\Answered', 'kw1', 'kw2', 'kw3'];

    const worker = async (port: number, tag: string, n: number): Promise<void> => {
      const c = client(port, 'test3');
      await c.connect();
      const lock = await c.getMailboxLock('INBOX');
      try {
        for (let i = 0; i < n; i++) {
          const subject = `${tag}-${i}`;
          // An explicit INTERNALDATE: without one Dovecot reports the second its save began, not the file's mtime.
          const r = await c.append('INBOX', message(subject), i % 2 ? [FLAGS[i % FLAGS.length]!] : [], new Date(Date.UTC(2020, 0, 1, 0, 0, i)));
          record(subject, r && typeof r === 'object' ? (r as { uid?: number }).uid : undefined);
          if (i % 2 === 0) await c.messageFlagsAdd(pick(i), [FLAGS[(i + 1) % FLAGS.length]!], { uid: true });
          else await c.messageFlagsRemove(pick(i + 3), [FLAGS[(i + 2) % FLAGS.length]!], { uid: true });
          // Whole-mailbox changes rename many files while the other side scans the directory.
          if (i % 8 === 4) await c.messageFlagsAdd('1:*', [`seen-by-${tag}`], { uid: true });
          if (i % 5 === 0) await c.noop();
        }
      } finally {
        lock.release();
        await c.logout().catch(() => undefined);
      }
    };
    const lda = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await deliverWithLda(conf, 'test3', message(`lda-${i}`));
    };
    await Promise.all([worker(dovecotPort, 'dovecot-a', 25), worker(dovecotPort, 'dovecot-b', 25), worker(imapkitPort, 'imapkit-a', 25), worker(imapkitPort, 'imapkit-b', 25), lda(6)]);

    const dovecotView = await snapshot(dovecotPort, 'test3');
    const fromDovecot = dovecotView.get('INBOX')!;
    const fromImapkit = alignLdaDates(await snapshot(imapkitPort, 'test3'), dovecotView).get('INBOX')!;
    const subjectOf = (m: Msg): string => /Subject: message (\S+)/.exec(m.body)?.[1] ?? '?';
    // Every message exactly once, under one UID.
    const subjects = fromDovecot.messages.map(subjectOf);
    expect(subjects.length).toBe(106);
    expect(new Set(subjects).size).toBe(106);
    expect(new Set(fromDovecot.messages.map((m) => m.uid)).size).toBe(106);
    // The UID each APPEND was told is the UID the message has.
    for (const m of fromDovecot.messages) {
      const told = uidsBySubject.get(subjectOf(m));
      if (told) expect(told).toEqual([m.uid]);
    }
    expect(uidsBySubject.size).toBe(100);
    expect(fromImapkit).toEqual(fromDovecot);
  });
});
