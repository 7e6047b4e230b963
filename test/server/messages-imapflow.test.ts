/** The message commands driven by a real client library (imapflow) against the server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImapFlow } from 'imapflow';
import { sampleMessage, startTestServer, type TestServer } from './helpers.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

function client(): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port: srv.port, secure: false, auth: { user: 'test1', pass: 'pass' }, logger: false });
}

const multipart = [
  'From: "Ann Example" <ann@example.org>',
  'To: bob@example.org',
  'Subject: =?UTF-8?Q?Caf=C3=A9?= menu',
  'Date: Tue, 02 Jan 2024 09:00:00 +0100',
  'Message-ID: <menu@example.org>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="B"',
  '',
  '--B',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Soup of the day',
  '--B',
  'Content-Type: application/octet-stream; name="a.bin"',
  'Content-Disposition: attachment; filename="a.bin"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from([1, 0, 2, 3]).toString('base64'),
  '--B--',
  '',
].join('\r\n');

describe('imapflow against imapkit', () => {
  it('fetches envelope, structure, sources and parts, searches, stores, copies, moves and expunges', async () => {
    const c = client();
    await c.connect();
    await c.mailboxCreate('flow');
    await c.append('flow', sampleMessage('First', 'One'));
    await c.append('flow', multipart, ['\\Flagged']);
    const lock = await c.getMailboxLock('flow');
    try {
      const all = [];
      for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true, bodyStructure: true, size: true, internalDate: true })) all.push(m);
      expect(all.map((m) => m.uid)).toEqual([1, 2]);
      expect(all[0].envelope?.subject).toBe('First');
      expect(all[1].envelope?.subject).toBe('Café menu');
      expect(all[1].envelope?.from?.[0]).toMatchObject({ name: 'Ann Example', address: 'ann@example.org' });
      expect([...(all[1].flags ?? [])]).toEqual(['\\Flagged']);
      expect(all[1].bodyStructure?.childNodes?.map((n) => n.type)).toEqual(['text/plain', 'application/octet-stream']);

      const src = await c.fetchOne('2', { source: true }, { uid: true });
      expect(src && src.source?.toString()).toBe(multipart);

      const part = await c.download('2', '2', { uid: true });
      const chunks: Buffer[] = [];
      expect(part.content).toBeDefined();
      for await (const ch of part.content!) chunks.push(ch as Buffer);
      expect(Buffer.concat(chunks)).toEqual(Buffer.from([1, 0, 2, 3]));

      expect(await c.search({ subject: 'café' }, { uid: true })).toEqual([2]);
      expect(await c.search({ body: 'soup' }, { uid: true })).toEqual([2]);
      expect(await c.search({ flagged: true })).toEqual([2]);

      expect(await c.messageFlagsAdd('1', ['\\Seen', 'Label'], { uid: true })).toBe(true);
      const one = await c.fetchOne('1', { flags: true }, { uid: true });
      expect(one && [...(one.flags ?? [])].sort()).toEqual(['Label', '\\Seen']);

      await c.mailboxCreate('flow-archive');
      const copied = await c.messageCopy('1:*', 'flow-archive', { uid: true });
      expect(copied && copied.uidMap?.size).toBe(2);
      const moved = await c.messageMove('1', 'flow-archive', { uid: true });
      expect(moved && [...(moved.uidMap?.entries() ?? [])]).toEqual([[1, 3]]);
      expect(await c.search({ all: true }, { uid: true })).toEqual([2]);

      await c.messageFlagsAdd('2', ['\\Deleted'], { uid: true });
      await c.messageDelete('2', { uid: true });
      expect(await c.search({ all: true })).toEqual([]);
    } finally {
      lock.release();
    }
    const status = await c.status('flow-archive', { messages: true });
    expect(status && status.messages).toBe(3);
    await c.logout();
  });
});
