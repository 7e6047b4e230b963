/**
 * Bad input against `imapkit serve`: every malformed command in a long list gets a tagged BAD (not
 * NO, not a disconnect) and the session goes on; a 2 GB literal is refused with [TOOBIG] without
 * the server's memory growing with it; a client that disconnects in the middle of APPEND leaves no
 * partial message behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { RawImapClient, fetchItems, type ImapString } from './helpers/raw-imap.js';
import { spawnImapkit, startImapkit, tempDir, writePasswdFile, type ImapkitProcess, type ImapkitServer } from './helpers/server-peers.js';

/** Malformed before login. */
const NOT_AUTHENTICATED = [
  'LOGIN',
  'LOGIN test1',
  'LOGIN "test1 pass',
  'LOGIN test1 pass extra',
  'AUTHENTICATE',
  'SELECT INBOX',
  'LIST "" *',
  'FETCH 1 FLAGS',
  'CAPABILITY now',
];

/** Malformed when authenticated, nothing selected. */
const AUTHENTICATED = ['FETCH 1 FLAGS', 'STORE 1 +FLAGS (\\Seen)', 'EXPUNGE', 'CLOSE', 'UNSELECT', 'UID SEARCH ALL', 'LOGIN test1 pass'];

/** Malformed with INBOX selected. */
const SELECTED = [
  'FETCH',
  'FETCH 1',
  'FETCH 1 (FLAGS',
  'FETCH 1 FLAGS)',
  'FETCH 0 FLAGS',
  'FETCH a:b FLAGS',
  'FETCH 1 (NOSUCHITEM)',
  'FETCH 1 BODY[',
  'FETCH 1 BODY[HEADER.FIELDS]',
  'FETCH 1 BODY[1.]',
  'FETCH 1 BODY[]<a>',
  'FETCH 1 BODY[]<1.0>',
  'FETCH 1 FLAGS extra',
  'FETCH 1 BODY[HEADER.FIELDS ()]',
  'FETCH 1 BINARY[1]<0.a>',
  'FETCH 1 (FLAGS) (CHANGEDSINCE)',
  'FETCH 1 BODY[NOSUCH]',
  'FETCH 1,,2 FLAGS',
  'FETCH 1: FLAGS',
  'FETCH -1 FLAGS',
  'FETCH 4294967296 FLAGS',
  'FETCH 1 BODY.PEEK[TEXT',
  'FETCH 1 RFC822.FOO',
  'UID FETCH',
  'UID',
  'UID FOO 1',
  'UID LOGIN a b',
  'UID EXPUNGE',
  'UID EXPUNGE x',
  'STORE 1 FLAGS',
  'STORE 1 +FLAGZ (\\Seen)',
  'STORE 1 +FLAGS (\\Seen',
  'STORE * FLAGS.SILENT',
  'STORE 1',
  'STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)',
  'SEARCH',
  'SEARCH FOO',
  'SEARCH SINCE notadate',
  'SEARCH BEFORE 32-Jan-2024',
  'SEARCH (SEEN',
  'SEARCH SEEN)',
  'SEARCH LARGER abc',
  'SEARCH HEADER Subject',
  'SEARCH CHARSET',
  'SEARCH OR SEEN',
  'SEARCH NOT',
  'SEARCH UID',
  'SEARCH KEYWORD',
  'SEARCH MODSEQ',
  'SEARCH RETURN (FOO) ALL',
  'SEARCH RETURN (MIN ALL',
  'SEARCH 1:a',
  'SEARCH YOUNGER x',
  'COPY',
  'COPY 1',
  'MOVE',
  'MOVE 1',
  'SORT (DATE) UTF-8',
  'SORT DATE UTF-8 ALL',
  'SORT () UTF-8 ALL',
  'SORT (NOSUCH) UTF-8 ALL',
  'THREAD',
  'THREAD REFERENCES',
  'THREAD NOSUCH UTF-8 ALL',
  'EXPUNGE extra',
  'NOOP extra',
  'CHECK now',
  'SELECT',
  'SELECT "INBOX',
  'SELECT INBOX (CONDSTORE',
  'EXAMINE',
  'CREATE',
  'DELETE',
  'RENAME a',
  'LIST ""',
  'LIST',
  'LIST "" (INBOX',
  'LIST "" "unterminated',
  'LSUB ""',
  'STATUS INBOX',
  'STATUS INBOX (MESSAGES',
  'STATUS INBOX (NOSUCH)',
  'STATUS INBOX ()',
  'APPEND',
  'APPEND INBOX',
  'APPEND INBOX (\\Seen',
  'SUBSCRIBE',
  'ENABLE',
  'ID',
  'ID (',
  'ID ("key")',
  'GETQUOTAROOT',
  'NAMESPACE extra',
  'LOGIN a b',
  'AUTHENTICATE PLAIN',
  'STARTTLS',
  'COMPRESS',
  'FOOBAR',
  'XYZZY 1 2 3',
  '',
  'LOGOUT now',
  'UNSELECT now',
  'IDLE now',
];

/** Send `line` under a fresh tag; the tagged answer must be BAD and a NOOP after it must be OK. */
async function expectBad(c: RawImapClient, line: string): Promise<{ line: string; status: string; noop: string }> {
  const tag = c.nextTag();
  c.sendRaw(`${tag} ${line}\r\n`);
  let status: string;
  try {
    status = (await c.collect(tag, [], 10_000)).status;
  } catch (err) {
    return { line, status: `no tagged answer (${(err as Error).message})`, noop: '-' };
  }
  let noop: string;
  try {
    noop = (await c.command('NOOP', { timeoutMs: 10_000 })).status;
  } catch (err) {
    noop = `failed (${(err as Error).message})`;
  }
  return { line, status, noop };
}

async function messageCount(port: number, user: string, mailbox = 'INBOX'): Promise<number> {
  const c = await RawImapClient.connect(port);
  try {
    await c.login(user, 'pass');
    const r = await c.command(`STATUS ${mailbox} (MESSAGES)`);
    const m = /MESSAGES (\d+)/.exec(r.untagged.map((u) => u.raw.toString('latin1')).join(''));
    if (!m) throw new Error(`no STATUS MESSAGES in ${r.raw.toString()}`);
    return Number(m[1]);
  } finally {
    await c.close();
  }
}

const sample = (n: number): Buffer => Buffer.from(`From: a@example.org\r\nSubject: sample ${n}\r\n\r\nbody ${n}\r\n`);

describe('malformed commands against imapkit serve', () => {
  let tmp: ReturnType<typeof tempDir>;
  let srv: ImapkitServer;
  beforeAll(async () => {
    tmp = tempDir('badinput');
    srv = await startImapkit(tmp.dir);
  });
  afterAll(async () => {
    await srv?.stop();
    tmp?.remove();
  });

  it(`answers each of ${NOT_AUTHENTICATED.length + AUTHENTICATED.length + SELECTED.length} malformed commands with a tagged BAD and goes on`, async () => {
    expect(NOT_AUTHENTICATED.length + AUTHENTICATED.length + SELECTED.length).toBeGreaterThanOrEqual(50);
    const c = await RawImapClient.connect(srv.port);
    const results: Array<{ line: string; status: string; noop: string }> = [];
    try {
      for (const line of NOT_AUTHENTICATED) results.push(await expectBad(c, line));
      await c.login('test1', 'pass');
      for (const line of AUTHENTICATED) results.push(await expectBad(c, line));
      for (const n of [1, 2, 3]) expect((await c.append('INBOX', sample(n))).status).toBe('OK');
      expect((await c.command('SELECT INBOX')).status).toBe('OK');
      for (const line of SELECTED) results.push(await expectBad(c, line));
      // the session is still selected and sane afterwards
      const f = await c.command('FETCH 1:* (UID)');
      expect(f.status).toBe('OK');
      expect(f.untagged).toHaveLength(3);
    } finally {
      await c.close();
    }
    const wrong = results.filter((r) => r.status !== 'BAD' || r.noop !== 'OK');
    expect(wrong).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(50);
  });

  it('refuses a synchronising 2 GB literal with [TOOBIG] before any continuation, and goes on', async () => {
    const c = await RawImapClient.connect(srv.port);
    try {
      await c.login('test2', 'pass');
      const before = await messageCount(srv.port, 'test2');
      const tag = c.nextTag();
      c.sendRaw(`${tag} APPEND INBOX {2147483648}\r\n`);
      const untagged: Array<{ raw: Buffer; values: never[] }> = [];
      const r = await c.collect(tag, untagged);
      expect(untagged.filter((u) => u.raw[0] === 0x2b)).toEqual([]);
      expect(['NO', 'BAD']).toContain(r.status);
      expect(r.code).toBe('TOOBIG');
      expect((await c.command('NOOP')).status).toBe('OK');
      expect(await messageCount(srv.port, 'test2')).toBe(before);
    } finally {
      await c.close();
    }
  });

  it('serves a message with bare LF line ends consistently: CRLF everywhere, RFC822.SIZE = BODY[] = HEADER + TEXT', async () => {
    // Malformed mail, not a malformed command: sections are already served with CRLF, so BODY[]
    // and RFC822.SIZE must be too (Dovecot does the same; see KNOWN_DIFFERENCES.md, MIME section).
    const lf = Buffer.from('From: a@example.org\nSubject: bare LF\n\nline one\nline two\n');
    const c = await RawImapClient.connect(srv.port);
    try {
      await c.login('test5', 'pass');
      expect((await c.append('INBOX', lf)).status).toBe('OK');
      await c.command('SELECT INBOX');
      const r = await c.command('FETCH 1 (RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT])');
      expect(r.status).toBe('OK');
      const items = fetchItems(r.untagged[0]!.values);
      const whole = (items.get('BODY[]') as ImapString).bytes;
      const header = (items.get('BODY[HEADER]') as ImapString).bytes;
      const body = (items.get('BODY[TEXT]') as ImapString).bytes;
      expect(header.toString('latin1')).toBe('From: a@example.org\r\nSubject: bare LF\r\n\r\n');
      expect(whole.toString('latin1')).toBe(lf.toString('latin1').replace(/\n/g, '\r\n'));
      expect(Number(items.get('RFC822.SIZE'))).toBe(whole.length);
      expect(whole.length).toBe(header.length + body.length);
    } finally {
      await c.close();
    }
  });

  it('leaves no partial message when the client disconnects in the middle of APPEND', async () => {
    const before = await messageCount(srv.port, 'test3');
    const message = Buffer.concat([sample(9), Buffer.alloc(20_000, 'x')]);

    // synchronising literal: half the bytes after the continuation, then the connection drops
    const a = await RawImapClient.connect(srv.port);
    await a.login('test3', 'pass');
    a.sendRaw(`A1 APPEND INBOX (\\Seen) {${message.length}}\r\n`);
    expect((await a.next()).toString('latin1')).toMatch(/^\+ /);
    a.sendRaw(message.subarray(0, message.length >> 1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    (a as unknown as { socket: net.Socket }).socket.destroy();

    // LITERAL+: the whole command line, part of the literal, then the connection drops
    const b = await RawImapClient.connect(srv.port);
    await b.login('test3', 'pass');
    b.sendRaw(Buffer.concat([Buffer.from(`A1 APPEND INBOX {${message.length}+}\r\n`), message.subarray(0, message.length - 10)]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    (b as unknown as { socket: net.Socket }).socket.destroy();

    // MULTIAPPEND: the first message complete, the second cut off; RFC 3502 says all or nothing
    const m = await RawImapClient.connect(srv.port);
    await m.login('test3', 'pass');
    m.sendRaw(Buffer.concat([Buffer.from(`A1 APPEND INBOX {${message.length}+}\r\n`), message, Buffer.from(` {${message.length}+}\r\n`), message.subarray(0, 100)]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    (m as unknown as { socket: net.Socket }).socket.destroy();

    // a session that was never told OK must not find any of it
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await messageCount(srv.port, 'test3')).toBe(before);
    // and the account still takes a complete APPEND
    const ok = await RawImapClient.connect(srv.port);
    await ok.login('test3', 'pass');
    expect((await ok.append('INBOX', message)).status).toBe('OK');
    await ok.close();
    expect(await messageCount(srv.port, 'test3')).toBe(before + 1);
  });
});

describe('a 2 GB non-synchronising literal against imapkit serve (child process)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let proc: ImapkitProcess;
  beforeAll(async () => {
    tmp = tempDir('toobig');
    writePasswdFile(path.join(tmp.dir, 'passwd'));
    proc = await spawnImapkit(['--store', 'memory', '--users', `passwd:${path.join(tmp.dir, 'passwd')}`, '--failed-login-delay-ms', '0']);
  });
  afterAll(async () => {
    await proc?.stop();
    tmp?.remove();
  });

  /** VmRSS and VmHWM (peak) of the server process, bytes. */
  const memory = (): { rss: number; peak: number } => {
    const status = readFileSync(`/proc/${proc.child.pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  };

  it('answers [TOOBIG], swallows or refuses the bytes without keeping them, and stores nothing', async () => {
    const before = await messageCount(proc.port, 'test4');
    const c = await RawImapClient.connect(proc.port);
    await c.login('test4', 'pass');
    const rssBefore = memory().rss;
    const tag = c.nextTag();
    const socket = (c as unknown as { socket: net.Socket }).socket;
    socket.write(`${tag} APPEND INBOX {2147483648+}\r\n`);
    const answer = c.collect(tag);
    // 256 MiB of the announced 2 GiB, written as fast as the server reads (or until it hangs up)
    const chunk = Buffer.alloc(1024 * 1024, 'y');
    let sent = 0;
    while (sent < 256 * chunk.length && !socket.destroyed && socket.writable) {
      if (!socket.write(chunk)) {
        const more = await new Promise<boolean>((resolve) => {
          const settle = (v: boolean) => (): void => {
            socket.off('drain', onDrain);
            socket.off('close', onClose);
            resolve(v);
          };
          const onDrain = settle(true);
          const onClose = settle(false);
          socket.once('drain', onDrain);
          socket.once('close', onClose);
        });
        if (!more) break;
      }
      sent += chunk.length;
    }
    const r = await answer;
    expect(['NO', 'BAD']).toContain(r.status);
    expect(r.code).toBe('TOOBIG');
    const grew = memory().peak - rssBefore;
    socket.destroy();
    expect(sent).toBeGreaterThan(0);
    // whatever was read was dropped: the peak grew by far less than what we sent
    expect(grew).toBeLessThan(64 * 1024 * 1024);
    expect(await messageCount(proc.port, 'test4')).toBe(before);
    expect(proc.child.exitCode).toBeNull();
  });
});
