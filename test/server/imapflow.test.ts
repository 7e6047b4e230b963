/** imapflow drives a full mailbox life against the server: the reference client library as a peer. */
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleMessage, startTestServer, type TestServer } from './helpers.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

function client(user = 'test1'): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port: srv.port, secure: false, auth: { user, pass: 'pass' }, logger: false, disableAutoIdle: true });
}

describe('imapflow', () => {
  it('create, append, select, fetch, search, store, copy, move, expunge, rename, delete', async () => {
    const c = client();
    await c.connect();
    expect(c.capabilities.has('IMAP4rev2')).toBe(true);
    await c.mailboxCreate('Life');
    await c.mailboxCreate('Life/Archive');
    const appended = await c.append('Life', sampleMessage('First', 'alpha body'), ['\\Seen']);
    expect(appended && appended.uid).toBe(1);
    await c.append('Life', sampleMessage('Second', 'beta body'));

    const lock = await c.getMailboxLock('Life');
    try {
      expect(c.mailbox && c.mailbox.exists).toBe(2);
      const subjects: string[] = [];
      for await (const msg of c.fetch('1:*', { envelope: true, flags: true, uid: true })) subjects.push(msg.envelope?.subject ?? '');
      expect(subjects).toEqual(['First', 'Second']);
      const unseen = await c.search({ seen: false }, { uid: true });
      expect(unseen).toEqual([2]);
      await c.messageFlagsAdd({ uid: '2' }, ['\\Flagged'], { uid: true });
      const flagged = await c.search({ flagged: true });
      expect(flagged).toEqual([2]);
      const copied = await c.messageCopy('1', 'Life/Archive');
      expect(copied && copied.uidMap && [...copied.uidMap.values()]).toEqual([1]);
      const moved = await c.messageMove('2', 'Life/Archive');
      expect(moved && moved.uidMap && [...moved.uidMap.values()]).toEqual([2]);
      expect(c.mailbox && c.mailbox.exists).toBe(1);
      await c.messageDelete('1');
      expect(c.mailbox && c.mailbox.exists).toBe(0);
    } finally {
      lock.release();
    }
    const status = await c.status('Life/Archive', { messages: true, unseen: true });
    expect(status && status.messages).toBe(2);
    await c.mailboxRename('Life', 'Lived');
    const names = (await c.list()).map((m) => m.path).sort();
    expect(names).toEqual(['INBOX', 'Lived', 'Lived/Archive']);
    await c.mailboxDelete('Lived/Archive');
    await c.mailboxDelete('Lived');
    expect((await c.list()).map((m) => m.path)).toEqual(['INBOX']);
    await c.logout();
  });

  it('hears a new message during IDLE', async () => {
    const watcher = client('test2');
    const writer = client('test2');
    await watcher.connect();
    await writer.connect();
    await watcher.mailboxOpen('INBOX');
    const before = watcher.mailbox ? watcher.mailbox.exists : -1;
    const exists = new Promise<number>((resolve) => watcher.on('exists', (data: { count: number }) => resolve(data.count)));
    const idling = watcher.idle();
    await writer.append('INBOX', sampleMessage('Ping'));
    expect(await exists).toBe(before + 1);
    await watcher.noop();
    await idling;
    await watcher.logout();
    await writer.logout();
  });
});
