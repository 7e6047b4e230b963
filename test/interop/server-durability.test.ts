/**
 * An APPEND answered OK is on disk: `imapkit serve --store sqlite:PATH` runs as a child process,
 * several clients APPEND a storm of messages into one mailbox, every OK (with its APPENDUID) is
 * recorded, the server is killed with SIGKILL in the middle of the storm and restarted on the same
 * file. Every acknowledged message must be there under its UID with its exact bytes, and no UID
 * handed out before the crash may be handed out again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { RawImapClient, fetchItems, type ImapString } from './helpers/raw-imap.js';
import { cliCommand, run, spawnImapkit, tempDir, type ImapkitProcess } from './helpers/server-peers.js';
import { generateCorpus } from '../fixtures/corpus.js';

const CLIENTS = 5;
/** SIGKILL once this many APPENDs have been acknowledged (the storm itself would go on far longer). */
const KILL_AFTER = 150;

interface Acked {
  uid: number;
  bytes: Buffer;
}

describe('SIGKILL during an APPEND storm (sqlite store)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let db: string;
  let proc: ImapkitProcess | undefined;
  beforeAll(async () => {
    tmp = tempDir('durability');
    db = path.join(tmp.dir, 'mail.sqlite');
    // The store's own user database, filled the way a script would: `imapkit user add` with the password on stdin.
    const cli = cliCommand();
    const r = await run(cli.command, [...cli.args, 'user', 'add', 'storm', '--store', `sqlite:${db}`], { input: 'pass\n', timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
  afterAll(async () => {
    await proc?.kill();
    tmp?.remove();
  });

  it('keeps every acknowledged message, byte for byte, under its UID', async () => {
    proc = await spawnImapkit(['--store', `sqlite:${db}`, '--failed-login-delay-ms', '0']);
    // Messages the store keeps byte for byte: bare LFs would be stored as CRLF, which is not what this test is about.
    const corpus = generateCorpus(60).filter((m) => m.raw.length < 64 * 1024 && !/(^|[^\r])\n/.test(m.raw.toString('latin1')));
    const acked: Acked[] = [];
    let uidValidity = '';
    let killed: Promise<void> | undefined;
    const server = proc;

    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        const c = await RawImapClient.connect(server.port);
        await c.login('storm', 'pass');
        return c;
      }),
    );
    const storm = clients.map(async (c, ci) => {
      for (let i = 0; ; i++) {
        const base = corpus[(ci * 7 + i) % corpus.length]!.raw;
        const bytes = Buffer.concat([Buffer.from(`X-Storm: client ${ci} message ${i}\r\n`), base]);
        let r;
        try {
          r = await c.append('INBOX', bytes, i % 3 === 0 ? ['\\Seen'] : [], { literalPlus: true });
        } catch {
          return; // the server is gone: this APPEND was never acknowledged
        }
        if (r.status !== 'OK') throw new Error(`APPEND refused: ${r.raw.toString()}`);
        const m = /^APPENDUID (\d+) (\d+)$/.exec(r.code ?? '');
        if (!m) throw new Error(`no APPENDUID in ${r.raw.toString()}`);
        uidValidity ||= m[1]!;
        expect(m[1]).toBe(uidValidity);
        acked.push({ uid: Number(m[2]), bytes });
        if (acked.length >= KILL_AFTER && !killed) killed = server.kill();
      }
    });
    await Promise.all(storm);
    await killed;
    expect(server.child.signalCode).toBe('SIGKILL');
    expect(acked.length).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(new Set(acked.map((a) => a.uid)).size).toBe(acked.length);

    // restart on the same file
    proc = await spawnImapkit(['--store', `sqlite:${db}`, '--failed-login-delay-ms', '0']);
    const c = await RawImapClient.connect(proc.port);
    try {
      await c.login('storm', 'pass');
      const sel = await c.command('SELECT INBOX');
      expect(sel.status).toBe('OK');
      const validity = sel.untagged.map((u) => /UIDVALIDITY (\d+)/.exec(u.raw.toString('latin1'))?.[1]).find(Boolean);
      expect(validity).toBe(uidValidity);

      const f = await c.command('UID FETCH 1:* (UID BODY.PEEK[])');
      expect(f.status).toBe('OK');
      const stored = new Map<number, Buffer>();
      for (const u of f.untagged) {
        const items = fetchItems(u.values);
        stored.set(Number(items.get('UID')), (items.get('BODY[]') as ImapString).bytes);
      }
      const missing = acked.filter((a) => !stored.has(a.uid)).map((a) => a.uid);
      expect(missing).toEqual([]);
      const different = acked.filter((a) => !stored.get(a.uid)!.equals(a.bytes)).map((a) => a.uid);
      expect(different).toEqual([]);

      // UIDs are never reused: a new message gets a UID above every one handed out before the crash
      const after = await c.append('INBOX', Buffer.from('Subject: after the crash\r\n\r\nstill here\r\n'));
      expect(after.status).toBe('OK');
      const newUid = Number(/APPENDUID \d+ (\d+)/.exec(after.code ?? '')?.[1]);
      expect(newUid).toBeGreaterThan(Math.max(...acked.map((a) => a.uid)));
    } finally {
      await c.close();
      for (const x of clients) await x.close().catch(() => undefined);
    }
  });
});
