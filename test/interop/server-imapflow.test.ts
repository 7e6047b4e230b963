/**
 * imapflow (the reference Node.js client) drives a full mailbox life against `imapkit serve` with
 * the default store (SQLite): create, append, select, fetch (envelope, bodystructure, source,
 * flags), search, store, copy, move, expunge, IDLE woken by a second client, rename, delete.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { generateCorpus } from '../fixtures/corpus.js';
import { startImapkit, tempDir, type ImapkitServer } from './helpers/server-peers.js';

let tmp: ReturnType<typeof tempDir>;
let srv: ImapkitServer;

beforeAll(async () => {
  tmp = tempDir('flow');
  srv = await startImapkit(tmp.dir, `sqlite:${path.join(tmp.dir, 'mail.sqlite')}`);
});
afterAll(async () => {
  await srv?.stop();
  tmp?.remove();
});

function client(user = 'test1'): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port: srv.port, secure: false, auth: { user, pass: 'pass' }, logger: false, disableAutoIdle: true });
}

const plain = (subject: string, body: string): Buffer =>
  Buffer.from(
    `From: Alice Example <alice@example.org>\r\nTo: Bob <bob@example.org>, carol@example.net\r\nCc: "Dave, D." <dave@example.com>\r\n` +
      `Subject: ${subject}\r\nDate: Tue, 02 Jan 2024 09:30:00 +0100\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n` +
      `In-Reply-To: <parent@example.org>\r\n\r\n${body}\r\n`,
  );

describe('imapflow against imapkit serve (sqlite store)', () => {
  it('lives a full mailbox life', async () => {
    const corpus = generateCorpus(8);
    const mixed = corpus.find((m) => m.name.endsWith('mixed-attachments'))!;
    const c = client();
    await c.connect();
    try {
      expect(c.capabilities.has('IMAP4rev1')).toBe(true);
      expect(c.capabilities.has('IDLE')).toBe(true);

      // create (with a child) and append
      await c.mailboxCreate('Projects');
      await c.mailboxCreate(['Projects', 'Old']);
      const listed = (await c.list()).map((m) => m.path).sort();
      expect(listed).toEqual(expect.arrayContaining(['INBOX', 'Projects', 'Projects/Old']));
      const a1 = await c.append('Projects', plain('Quarterly budget', 'The zanzibar meeting moves to Friday.'), ['\\Seen'], new Date('2024-01-02T08:30:00Z'));
      const a2 = await c.append('Projects', mixed.raw, ['\\Flagged', '$Important']);
      const a3 = await c.append('Projects', plain('Release notes', 'Nothing about money here.'));
      expect(a1 && a1.uid).toBe(1);
      expect(a2 && a2.uid).toBe(2);
      expect(a3 && a3.uid).toBe(3);
      expect(a1 && a1.uidValidity).toBeDefined();

      // select and fetch everything a client normally asks for
      const box = await c.mailboxOpen('Projects');
      expect(box.exists).toBe(3);
      expect(box.uidNext).toBe(4);
      const fetched = [];
      for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true, bodyStructure: true, source: true, size: true, internalDate: true })) fetched.push(m);
      expect(fetched.map((m) => m.uid)).toEqual([1, 2, 3]);
      const [m1, m2, m3] = fetched;
      expect(m1!.envelope!.subject).toBe('Quarterly budget');
      expect(m1!.envelope!.from).toEqual([{ name: 'Alice Example', address: 'alice@example.org' }]);
      expect(m1!.envelope!.to!.map((a) => a.address)).toEqual(['bob@example.org', 'carol@example.net']);
      expect(m1!.envelope!.cc).toEqual([expect.objectContaining({ name: 'Dave, D.', address: 'dave@example.com' })]);
      expect(m1!.envelope!.messageId).toBe('<Quarterlybudget@example.org>');
      expect(m1!.envelope!.inReplyTo).toBe('<parent@example.org>');
      expect(new Date(m1!.envelope!.date!).toISOString()).toBe('2024-01-02T08:30:00.000Z');
      expect(new Date(m1!.internalDate as Date).toISOString()).toBe('2024-01-02T08:30:00.000Z');
      expect([...m1!.flags!]).toEqual(['\\Seen']);
      expect(m1!.bodyStructure!.type).toBe('text/plain');
      expect(m1!.source!.equals(plain('Quarterly budget', 'The zanzibar meeting moves to Friday.'))).toBe(true);
      expect(m2!.source!.equals(mixed.raw)).toBe(true);
      expect(m2!.size).toBe(mixed.raw.length);
      expect(new Set(m2!.flags)).toEqual(new Set(['\\Flagged', '$Important']));
      expect(m2!.bodyStructure!.type).toBe('multipart/mixed');
      expect(m2!.bodyStructure!.childNodes!.length).toBeGreaterThanOrEqual(2);
      expect(m3!.flags!.size).toBe(0);

      // a part by its section number, decoded the way the bodystructure says
      const part = await c.download('2', '1');
      const chunks: Buffer[] = [];
      for await (const chunk of part.content!) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).length).toBeGreaterThan(0);

      // search
      expect(await c.search({ body: 'zanzibar' }, { uid: true })).toEqual([1]);
      expect(await c.search({ seen: false }, { uid: true })).toEqual([2, 3]);
      expect(await c.search({ flagged: true })).toEqual([2]);
      expect(await c.search({ subject: 'release' })).toEqual([3]);
      expect(await c.search({ keyword: '$Important' })).toEqual([2]);

      // store
      expect(await c.messageFlagsAdd('3', ['\\Answered', 'Later'])).toBe(true);
      expect(await c.messageFlagsRemove('2', ['\\Flagged'])).toBe(true);
      const flags = new Map<number, string[]>();
      for await (const m of c.fetch('1:*', { uid: true, flags: true })) flags.set(m.uid, [...m.flags!].sort());
      expect(flags).toEqual(
        new Map([
          [1, ['\\Seen']],
          [2, ['$Important']],
          [3, ['Later', '\\Answered']],
        ]),
      );

      // copy and move report the new UIDs
      const copied = await c.messageCopy('1:2', 'Projects/Old');
      expect(copied && [...copied.uidMap!.entries()]).toEqual([
        [1, 1],
        [2, 2],
      ]);
      const moved = await c.messageMove('3', 'Projects/Old', { uid: true });
      expect(moved && [...moved.uidMap!.entries()]).toEqual([[3, 3]]);
      expect(c.mailbox && c.mailbox.exists).toBe(2);

      // expunge
      expect(await c.messageDelete('1', { uid: true })).toBe(true);
      expect(c.mailbox && c.mailbox.exists).toBe(1);
      const left = [];
      for await (const m of c.fetch('1:*', { uid: true })) left.push(m.uid);
      expect(left).toEqual([2]);

      const old = await c.status('Projects/Old', { messages: true, uidNext: true, unseen: true });
      expect(old && { messages: old.messages, uidNext: old.uidNext, unseen: old.unseen }).toEqual({ messages: 3, uidNext: 4, unseen: 2 });
      await c.mailboxClose();

      // rename (the child follows) and delete
      await c.mailboxRename('Projects', 'Archive');
      let names = (await c.list()).map((m) => m.path).sort();
      expect(names).toContain('Archive');
      expect(names).toContain('Archive/Old');
      expect(names).not.toContain('Projects');
      const renamed = await c.status('Archive/Old', { messages: true });
      expect(renamed && renamed.messages).toBe(3);
      await c.mailboxDelete('Archive/Old');
      await c.mailboxDelete('Archive');
      names = (await c.list()).map((m) => m.path);
      expect(names).toEqual(['INBOX']);
    } finally {
      await c.logout().catch(() => undefined);
    }
  });

  it('wakes an IDLE client when a second client appends, flags and expunges', async () => {
    const watcher = client('test2');
    const writer = client('test2');
    await watcher.connect();
    await writer.connect();
    try {
      await writer.append('INBOX', plain('Before', 'first'));
      await watcher.mailboxOpen('INBOX');
      expect(watcher.mailbox && watcher.mailbox.exists).toBe(1);

      const exists = new Promise<number>((resolve) => watcher.once('exists', (d: { count: number }) => resolve(d.count)));
      const idling = watcher.idle();
      await writer.append('INBOX', plain('Wake up', 'second'));
      expect(await exists).toBe(2);

      // still idling: a flag change by the other client arrives as an untagged FETCH
      const flagged = new Promise<{ uid?: number; flags: Set<string> }>((resolve) => watcher.once('flags', resolve));
      await writer.mailboxOpen('INBOX');
      await writer.messageFlagsAdd('2', ['\\Flagged']);
      const f = await flagged;
      expect([...f.flags]).toContain('\\Flagged');

      const expunged = new Promise<number>((resolve) => watcher.once('expunge', (d: { seq: number }) => resolve(d.seq)));
      await writer.messageDelete('1');
      expect(await expunged).toBe(1);

      await watcher.noop();
      await idling;
      expect(watcher.mailbox && watcher.mailbox.exists).toBe(1);
      const subjects = [];
      for await (const m of watcher.fetch('1:*', { envelope: true })) subjects.push(m.envelope!.subject);
      expect(subjects).toEqual(['Wake up']);
    } finally {
      await watcher.logout().catch(() => undefined);
      await writer.logout().catch(() => undefined);
    }
  });
});
