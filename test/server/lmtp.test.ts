/**
 * The LMTP listener (RFC 2033) over real sockets on 127.0.0.1 (and a unix socket), storing into the
 * memory store that an IMAP server in the same process serves: per-recipient replies after DATA,
 * dot-unstuffing, pipelining, the limits, the trace headers, +detail folders, and an IDLE-ing IMAP
 * session told of the delivery.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LmtpServer, type LmtpServerOptions } from '../../src/server/lmtp/server.js';
import { StoreError, type MailStore, type UserMailStore } from '../../src/store/contract.js';
import { MemoryStore } from '../../src/store/memory/store.js';
import { startTestServer, TestClient, testStore, type TestServer } from './helpers.js';

let store: MemoryStore;
let imap: TestServer;
const servers: LmtpServer[] = [];
const clients: TestClient[] = [];
let dir: string;

beforeAll(async () => {
  store = await testStore();
  await store.users.addUser('carol@example.org', 'pass');
  imap = await startTestServer({ store });
  dir = await mkdtemp(join(tmpdir(), 'imapkit-lmtp-'));
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await imap.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** An LMTP server on 127.0.0.1 and a random port over `opts.store` (default: the shared memory store). */
async function startLmtp(opts: Partial<LmtpServerOptions> = {}): Promise<{ server: LmtpServer; port: number }> {
  const s = opts.store ?? store;
  const server = new LmtpServer({ store: s, users: s.users ?? store.users, listen: { kind: 'tcp', host: '127.0.0.1', port: 0 }, serverName: 'mx.test', ...opts });
  servers.push(server);
  const info = await server.listen();
  return { server, port: info.kind === 'tcp' ? info.port : -1 };
}

let shared: { server: LmtpServer; port: number } | undefined;
async function sharedLmtp(): Promise<number> {
  shared ??= await startLmtp();
  return shared.port;
}

/** Connect; returns the client and the greeting. */
async function lmtpClient(port: number): Promise<{ c: TestClient; greeting: string }> {
  const { client, greeting } = await TestClient.connect(port);
  clients.push(client);
  return { c: client, greeting };
}

/** One reply: its lines (a multi-line reply ends at the line with a space after the code). */
async function reply(c: TestClient): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await c.readLine();
    lines.push(line);
    if (line[3] !== '-') return lines;
  }
}

/** Send a line and return the single reply line. */
async function say(c: TestClient, line: string): Promise<string> {
  c.send(line);
  return (await reply(c)).join('\n');
}

/** Connect and LHLO. */
async function ready(port: number): Promise<TestClient> {
  const { c } = await lmtpClient(port);
  const r = await say(c, 'LHLO client.example');
  expect(r).toMatch(/^250 /m);
  return c;
}

/** The bytes of every message of a mailbox, by UID order. */
async function messages(user: string, mailbox = 'INBOX'): Promise<Buffer[]> {
  const u = await store.openUser(user);
  try {
    const h = await u.open(mailbox);
    const out: Buffer[] = [];
    for (const m of await h.list()) out.push((await h.read(m.uid))!);
    await h.close();
    return out;
  } finally {
    await u.close();
  }
}

/** Body of a message without the trace headers LMTP put on top (everything after Received's last line). */
function withoutTrace(data: Buffer): string {
  const text = data.toString('utf8');
  const m = /^Return-Path: [^\r\n]*\r\nDelivered-To: [^\r\n]*\r\nReceived: [^\r\n]*\r\n\t[^\r\n]*\r\n\t[^\r\n]*\r\n/.exec(text);
  if (!m) throw new Error(`no trace headers on: ${JSON.stringify(text.slice(0, 200))}`);
  return text.slice(m[0].length);
}

/** Wait until `check` holds (polling; no timing is asserted). */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const MSG = 'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\nSubject: lmtp test\r\nMessage-ID: <lmtp1@example.org>\r\n\r\nHello over LMTP.\r\n';

describe('LMTP greeting and LHLO', () => {
  it('greets with 220 and lists the extensions in a multi-line 250', async () => {
    const port = await sharedLmtp();
    const { c, greeting } = await lmtpClient(port);
    expect(greeting).toBe('220 mx.test imapkit LMTP ready');
    c.send('LHLO client.example');
    const lines = await reply(c);
    expect(lines[0]).toBe('250-mx.test');
    expect(lines.slice(1).map((l) => l.slice(4))).toEqual(['PIPELINING', 'ENHANCEDSTATUSCODES', '8BITMIME', `SIZE ${64 * 1024 * 1024}`]);
    expect(lines.at(-1)!.startsWith('250 ')).toBe(true);
    expect(lines.slice(0, -1).every((l) => l.startsWith('250-'))).toBe(true);
  });

  it('refuses HELO and EHLO (RFC 2033 4.1), and LHLO without a name', async () => {
    const { c } = await lmtpClient(await sharedLmtp());
    expect(await say(c, 'HELO client.example')).toMatch(/^500 5\.5\.1 /);
    expect(await say(c, 'EHLO client.example')).toMatch(/^500 5\.5\.1 /);
    expect(await say(c, 'LHLO')).toMatch(/^501 5\.5\.4 /);
    // Still not greeted: MAIL is out of sequence.
    expect(await say(c, 'MAIL FROM:<a@example.org>')).toMatch(/^503 5\.5\.1 /);
  });

  it('answers NOOP, RSET, VRFY, unknown commands and QUIT', async () => {
    const c = await ready(await sharedLmtp());
    expect(await say(c, 'NOOP')).toMatch(/^250 2\.0\.0/);
    expect(await say(c, 'VRFY test1')).toMatch(/^252 /);
    expect(await say(c, 'FROB x')).toMatch(/^500 5\.5\.2 /);
    expect(await say(c, 'MAIL FROM:<a@example.org>')).toMatch(/^250 /);
    expect(await say(c, 'RSET')).toMatch(/^250 /);
    // RSET ended the transaction.
    expect(await say(c, 'RCPT TO:<test1@example.org>')).toMatch(/^503 5\.5\.1 /);
    expect(await say(c, 'QUIT')).toMatch(/^221 2\.0\.0 /);
    await until(() => c.closed, 'the close after QUIT');
  });
});

describe('LMTP transactions', () => {
  it('answers DATA once per accepted recipient, in RCPT order, and stores for each', async () => {
    const before1 = (await messages('test1')).length;
    const before2 = (await messages('test2')).length;
    const c = await ready(await sharedLmtp());
    expect(await say(c, 'MAIL FROM:<alice@example.org> BODY=8BITMIME SIZE=200')).toMatch(/^250 2\.1\.0/);
    expect(await say(c, 'RCPT TO:<test2@example.org>')).toMatch(/^250 2\.1\.5/);
    expect(await say(c, 'RCPT TO:<nobody@example.org>')).toBe("550 5.1.1 <nobody@example.org> User doesn't exist");
    expect(await say(c, 'RCPT TO:<test1@example.org>')).toMatch(/^250 2\.1\.5/);
    expect(await say(c, 'DATA')).toMatch(/^354 /);
    c.sendRaw(`${MSG}.\r\n`);
    expect(await reply(c)).toEqual(['250 2.0.0 <test2@example.org> Saved']);
    expect(await reply(c)).toEqual(['250 2.0.0 <test1@example.org> Saved']);
    // Nothing else was answered: the next reply is NOOP's.
    expect(await say(c, 'NOOP')).toMatch(/^250 2\.0\.0 OK/);
    const m1 = await messages('test1');
    const m2 = await messages('test2');
    expect(m1.length).toBe(before1 + 1);
    expect(m2.length).toBe(before2 + 1);
    expect(withoutTrace(m1.at(-1)!)).toBe(MSG);
    expect(withoutTrace(m2.at(-1)!)).toBe(MSG);
  });

  it('prepends Return-Path, Delivered-To and Received, as dovecot-lmtp does', async () => {
    const c = await ready(await sharedLmtp());
    await say(c, 'MAIL FROM:<bounce+x@lists.example.org>');
    await say(c, 'RCPT TO:<carol@example.org>');
    await say(c, 'DATA');
    c.sendRaw(`${MSG}.\r\n`);
    expect(await reply(c)).toEqual(['250 2.0.0 <carol@example.org> Saved']);
    const text = (await messages('carol@example.org')).at(-1)!.toString('utf8');
    const lines = text.split('\r\n');
    expect(lines[0]).toBe('Return-Path: <bounce+x@lists.example.org>');
    expect(lines[1]).toBe('Delivered-To: carol@example.org');
    expect(lines[2]).toBe('Received: from client.example ([127.0.0.1])');
    expect(lines[3]).toMatch(/^\tby mx\.test \(imapkit\) with LMTP id [A-Za-z0-9_-]+$/);
    expect(lines[4]).toMatch(/^\tfor <carol@example\.org>; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000$/);
    expect(text.endsWith(MSG)).toBe(true);
  });

  it('writes the null sender as Return-Path: <>', async () => {
    const c = await ready(await sharedLmtp());
    await say(c, 'MAIL FROM:<>');
    await say(c, 'RCPT TO:<test2>');
    await say(c, 'DATA');
    c.sendRaw(`${MSG}.\r\n`);
    expect((await reply(c))[0]).toMatch(/^250 /);
    expect((await messages('test2')).at(-1)!.toString('utf8').startsWith('Return-Path: <>\r\nDelivered-To: test2\r\n')).toBe(true);
  });

  it('removes the stuffed dot of lines that start with one, and ends at a lone dot', async () => {
    const c = await ready(await sharedLmtp());
    await say(c, 'MAIL FROM:<a@example.org>');
    await say(c, 'RCPT TO:<test1@example.org>');
    await say(c, 'DATA');
    c.sendRaw('Subject: dots\r\n\r\n..x\r\n...\r\n. \r\n.\r\n');
    expect((await reply(c))[0]).toMatch(/^250 /);
    expect(withoutTrace((await messages('test1')).at(-1)!)).toBe('Subject: dots\r\n\r\n.x\r\n..\r\n \r\n');
  });

  it('answers a whole pipelined session sent in one write (RFC 2920), two transactions', async () => {
    const before = (await messages('test2')).length;
    const { c } = await lmtpClient(await sharedLmtp());
    c.sendRaw(
      'LHLO pipe.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<test2@example.org>\r\nRCPT TO:<ghost@example.org>\r\nDATA\r\n' +
        `Subject: one\r\n\r\nfirst\r\n.\r\n` +
        'MAIL FROM:<b@example.org>\r\nRCPT TO:<test2@example.org>\r\nDATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n',
    );
    const codes: string[] = [];
    for (let i = 0; i < 11; i++) codes.push((await reply(c)).at(-1)!.slice(0, 3));
    expect(codes).toEqual(['250', '250', '250', '550', '354', '250', '250', '250', '354', '250', '221']);
    await until(() => c.closed, 'the close after QUIT');
    const got = (await messages('test2')).slice(before).map(withoutTrace);
    expect(got).toEqual(['Subject: one\r\n\r\nfirst\r\n', 'Subject: two\r\n\r\nsecond\r\n']);
  });

  it('answers everything a client wrote before half-closing its side', async () => {
    const before = (await messages('test1')).length;
    const { c } = await lmtpClient(await sharedLmtp());
    c.sendRaw('LHLO half.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<test1>\r\nDATA\r\nSubject: half\r\n\r\nx\r\n.\r\n');
    c.socket.end();
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) codes.push((await reply(c)).at(-1)!.slice(0, 3));
    expect(codes).toEqual(['250', '250', '250', '354', '250']);
    expect((await messages('test1')).length).toBe(before + 1);
  });

  it('refuses commands out of sequence with 503 5.5.1', async () => {
    const c = await ready(await sharedLmtp());
    expect(await say(c, 'RCPT TO:<test1@example.org>')).toMatch(/^503 5\.5\.1 /);
    expect(await say(c, 'DATA')).toMatch(/^503 5\.5\.1 /);
    expect(await say(c, 'MAIL FROM:<a@example.org>')).toMatch(/^250 /);
    expect(await say(c, 'MAIL FROM:<a@example.org>')).toMatch(/^503 5\.5\.1 /);
    expect(await say(c, 'RCPT TO:<nobody@example.org>')).toMatch(/^550 5\.1\.1 /);
    // No recipient was accepted: no DATA.
    expect(await say(c, 'DATA')).toMatch(/^503 5\.5\.1 /);
  });

  it('refuses bad syntax and parameters it does not know', async () => {
    const c = await ready(await sharedLmtp());
    expect(await say(c, 'MAIL FROM:a@example.org')).toMatch(/^501 5\.5\.4 /);
    expect(await say(c, 'MAIL FROM:<a@example.org> SMTPUTF8')).toMatch(/^555 5\.5\.4 /);
    expect(await say(c, 'MAIL FROM:<a@example.org> BODY=BINARYMIME')).toMatch(/^501 5\.5\.4 /);
    expect(await say(c, 'MAIL FROM:<a@example.org>')).toMatch(/^250 /);
    expect(await say(c, 'RCPT TO:<>')).toMatch(/^501 5\.5\.4 /);
    expect(await say(c, 'RCPT TO:<test1> NOTIFY=NEVER')).toMatch(/^555 5\.5\.4 /);
  });

  it('limits the recipients of one transaction with 452 4.5.3', async () => {
    const { port } = await startLmtp({ maxRecipients: 2 });
    const c = await ready(port);
    await say(c, 'MAIL FROM:<a@example.org>');
    expect(await say(c, 'RCPT TO:<test1>')).toMatch(/^250 /);
    expect(await say(c, 'RCPT TO:<test2>')).toMatch(/^250 /);
    expect(await say(c, 'RCPT TO:<carol@example.org>')).toMatch(/^452 4\.5\.3 /);
  });
});

describe('LMTP limits', () => {
  it('refuses a message over the size limit with 552 5.3.4 per recipient and stores nothing', async () => {
    const { port } = await startLmtp({ maxMessageSize: 1000 });
    const before1 = (await messages('test1')).length;
    const before2 = (await messages('test2')).length;
    const c = await ready(port);
    expect(await say(c, 'MAIL FROM:<a@example.org> SIZE=5000')).toMatch(/^552 5\.3\.4 /);
    expect(await say(c, 'MAIL FROM:<a@example.org>')).toMatch(/^250 /);
    await say(c, 'RCPT TO:<test1>');
    await say(c, 'RCPT TO:<test2>');
    await say(c, 'DATA');
    c.sendRaw(`Subject: big\r\n\r\n${'0123456789abcdef'.repeat(40)}\r\n${'x'.repeat(700)}\r\n.\r\n`);
    expect(await reply(c)).toEqual(['552 5.3.4 <test1> Message too big']);
    expect(await reply(c)).toEqual(['552 5.3.4 <test2> Message too big']);
    // The connection is still in step.
    expect(await say(c, 'NOOP')).toMatch(/^250 /);
    expect((await messages('test1')).length).toBe(before1);
    expect((await messages('test2')).length).toBe(before2);
  });

  it('answers a command line that is too long with 500 5.5.2 and stays in step', async () => {
    const c = await ready(await sharedLmtp());
    // Sent in pieces, so the limit holds before any line end arrives.
    c.sendRaw(`NOOP ${'x'.repeat(3000)}`);
    c.sendRaw(`${'y'.repeat(3000)}\r\nNOOP\r\n`);
    expect(await reply(c)).toEqual(['500 5.5.2 Line too long']);
    // The NOOP after it, in the same write, is answered on its own.
    expect(await reply(c)).toEqual(['250 2.0.0 OK']);
    c.sendRaw(`MAIL FROM:<${'z'.repeat(2100)}@example.org>\r\n`);
    expect(await reply(c)).toEqual(['500 5.5.2 Line too long']);
    expect(await say(c, 'RSET')).toMatch(/^250 /);
  });

  it('stores nothing when the connection drops in the middle of DATA', async () => {
    const { server, port } = await startLmtp();
    const before = (await messages('test1')).length;
    const c = await ready(port);
    await say(c, 'MAIL FROM:<a@example.org>');
    await say(c, 'RCPT TO:<test1>');
    await say(c, 'DATA');
    c.sendRaw('Subject: cut\r\n\r\nhalf a mess');
    await new Promise((r) => setTimeout(r, 50));
    c.close();
    await until(() => server.connections === 0, 'the server to see the close');
    expect((await messages('test1')).length).toBe(before);
  });

  it('closes an idle connection with 421 4.4.2', async () => {
    const { port } = await startLmtp({ idleTimeoutMs: 100 });
    const c = await ready(port);
    expect(await reply(c)).toEqual(['421 4.4.2 mx.test Idle timeout, closing connection']);
    await until(() => c.closed, 'the close');
  });

  it('says 421 4.3.2 to connected clients when the server shuts down', async () => {
    const { server, port } = await startLmtp();
    const c = await ready(port);
    const closing = server.close();
    expect(await reply(c)).toEqual(['421 4.3.2 mx.test Shutting down']);
    await closing;
    await until(() => c.closed, 'the close');
  });
});

describe('LMTP recipients', () => {
  it('maps full addresses and local parts to users, any case, and +detail to an existing folder', async () => {
    const u = await store.openUser('test1');
    await u.createMailbox('lists');
    await u.close();
    const beforeLists = (await messages('test1', 'lists')).length;
    const beforeInbox = (await messages('test1')).length;
    const c = await ready(await sharedLmtp());
    await say(c, 'MAIL FROM:<a@example.org>');
    expect(await say(c, 'RCPT TO:<test1+lists@example.org>')).toMatch(/^250 /);
    expect(await say(c, 'RCPT TO:<test1+nosuchfolder@example.org>')).toMatch(/^250 /);
    expect(await say(c, 'RCPT TO:<TEST1@Example.ORG>')).toMatch(/^250 /);
    expect(await say(c, 'RCPT TO:<Carol@EXAMPLE.org>')).toMatch(/^250 /);
    expect(await say(c, 'RCPT TO:<carol+x@other.example>')).toMatch(/^550 /);
    await say(c, 'DATA');
    c.sendRaw(`${MSG}.\r\n`);
    for (let i = 0; i < 4; i++) expect((await reply(c))[0]).toMatch(/^250 2\.0\.0 /);
    const lists = await messages('test1', 'lists');
    expect(lists.length).toBe(beforeLists + 1);
    expect(lists.at(-1)!.toString('utf8')).toContain('Delivered-To: test1+lists@example.org\r\n');
    const inbox = await messages('test1');
    expect(inbox.length).toBe(beforeInbox + 2);
    expect(inbox.at(-2)!.toString('utf8')).toContain('Delivered-To: test1+nosuchfolder@example.org\r\n');
    expect(inbox.at(-1)!.toString('utf8')).toContain('Delivered-To: TEST1@Example.ORG\r\n');
  });

  it('maps store errors: quota 452 4.2.2 (retried, as deliver does), too big 552 5.3.4, anything else 451 4.3.0', async () => {
    const failing: Record<string, Error> = {
      test1: new StoreError('OVERQUOTA', 'quota exceeded'),
      test2: new StoreError('TOOBIG', 'too big'),
      'carol@example.org': new Error('EIO: disk on fire'),
    };
    const broken: MailStore = {
      kind: 'broken',
      users: store.users,
      openUser: async (user: string): Promise<UserMailStore> => {
        const real = await store.openUser(user);
        return Object.assign(Object.create(real) as UserMailStore, {
          append: async () => {
            throw failing[user]!;
          },
        });
      },
      close: async () => undefined,
    };
    const { port } = await startLmtp({ store: broken, users: store.users });
    const c = await ready(port);
    await say(c, 'MAIL FROM:<a@example.org>');
    for (const r of ['test1', 'test2', 'carol@example.org']) expect(await say(c, `RCPT TO:<${r}>`)).toMatch(/^250 /);
    await say(c, 'DATA');
    c.sendRaw(`${MSG}.\r\n`);
    expect(await reply(c)).toEqual(['452 4.2.2 <test1> Mailbox is full, try again later']);
    expect(await reply(c)).toEqual(['552 5.3.4 <test2> Message too big']);
    expect(await reply(c)).toEqual(['451 4.3.0 <carol@example.org> Temporary failure, try again later']);
  });

  it('answers 451 4.3.0 at RCPT when the user database cannot be read', async () => {
    const { port } = await startLmtp({
      users: {
        listUsers: async () => {
          throw new Error('passwd-file unreadable');
        },
      },
    });
    const c = await ready(port);
    await say(c, 'MAIL FROM:<a@example.org>');
    expect(await say(c, 'RCPT TO:<test1>')).toMatch(/^451 4\.3\.0 /);
  });
});

describe('LMTP and IMAP in one process', () => {
  it('an IMAP session in IDLE hears EXISTS as soon as LMTP has stored', async () => {
    const u = await store.openUser('test2');
    await u.createMailbox('Idle');
    await u.close();
    const { client: imapClient } = await TestClient.connect(imap.port);
    clients.push(imapClient);
    await imapClient.login('test2');
    const sel = await imapClient.command('SELECT Idle');
    expect(sel.untagged).toContain('* 0 EXISTS');
    imapClient.send('I1 IDLE');
    expect(await imapClient.readLine()).toMatch(/^\+ /);
    const c = await ready(await sharedLmtp());
    await say(c, 'MAIL FROM:<a@example.org>');
    await say(c, 'RCPT TO:<test2+Idle@example.org>');
    await say(c, 'DATA');
    c.sendRaw(`${MSG}.\r\n`);
    expect((await reply(c))[0]).toMatch(/^250 /);
    // Still in IDLE (no DONE sent): the update can only come from the store's change notification.
    expect(await imapClient.readLine()).toBe('* 1 EXISTS');
    expect(await imapClient.readLine()).toBe('* 1 RECENT');
    imapClient.send('DONE');
    expect(await imapClient.readLine()).toMatch(/^I1 OK/);
  });
});

describe('LMTP on a unix socket', () => {
  it('listens on a 0660 socket, replacing a stale one, delivers, and removes it on close', async () => {
    const path = join(dir, 'lmtp.sock');
    const live = new LmtpServer({ store, users: store.users, listen: { kind: 'unix', path } });
    await live.listen();
    const server = new LmtpServer({ store, users: store.users, listen: { kind: 'unix', path }, serverName: 'mx.test' });
    // Someone answers on the path: it must not be taken over.
    await expect(server.listen()).rejects.toThrow(/another process is listening/);
    await live.close();
    // A stale socket file, as a killed process leaves it: nobody answers, so it is replaced.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect((await stat(path)).isSocket()).toBe(true);
    servers.push(server);
    await server.listen();
    expect((await stat(path)).mode & 0o777).toBe(0o660);
    const before = (await messages('test1')).length;
    const c = new TestClient(netConnect(path));
    clients.push(c);
    expect(await c.readLine()).toBe('220 mx.test imapkit LMTP ready');
    await say(c, 'LHLO local.example');
    await say(c, 'MAIL FROM:<a@example.org>');
    await say(c, 'RCPT TO:<test1@example.org>');
    await say(c, 'DATA');
    c.sendRaw(`${MSG}.\r\n`);
    expect((await reply(c))[0]).toMatch(/^250 /);
    const got = (await messages('test1')).slice(before);
    expect(got.length).toBe(1);
    expect(got[0]!.toString('utf8')).toContain('Received: from local.example (local)\r\n');
    c.close();
    await server.close();
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a path that is not a socket', async () => {
    const path = join(dir, 'not-a-socket');
    writeFileSync(path, 'x');
    const server = new LmtpServer({ store, users: store.users, listen: { kind: 'unix', path } });
    await expect(server.listen()).rejects.toThrow(/not a socket/);
  });
});
