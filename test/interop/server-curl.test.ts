/**
 * curl's IMAP client against `imapkit serve`: upload (APPEND) with -T, list mailboxes, fetch a
 * message by UID and a section, search, a custom request (-X 'EXAMINE INBOX'), a refused login.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { havePeer, run, startImapkit, tempDir, which, type ImapkitServer } from './helpers/server-peers.js';

const haveCurl = havePeer('curl', "curl's IMAP session against imapkit serve is");

describe.runIf(haveCurl)("curl's IMAP client against imapkit serve", () => {
  let tmp: ReturnType<typeof tempDir>;
  let srv: ImapkitServer;
  let base: string;
  const curl = (...args: string[]) => run(which('curl')!, ['-sS', '--max-time', '30', ...args], { timeoutMs: 40_000 });
  const message = Buffer.from(
    'From: Curl <curl@example.org>\r\nTo: you@example.org\r\nSubject: uploaded by curl\r\nDate: Thu, 04 Apr 2024 10:00:00 +0000\r\n' +
      'Message-ID: <curl1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello from curl.\r\nSecond line.\r\n',
  );

  beforeAll(async () => {
    tmp = tempDir('curl');
    srv = await startImapkit(tmp.dir);
    base = `imap://127.0.0.1:${srv.port}`;
  });
  afterAll(async () => {
    await srv?.stop();
    tmp?.remove();
  });

  it('uploads with -T (APPEND) and fetches the message back by UID, byte for byte', async () => {
    const file = path.join(tmp.dir, 'upload.eml');
    writeFileSync(file, message);
    const up = await curl(`${base}/INBOX`, '-u', 'test1:pass', '-T', file);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    const again = await curl(`${base}/INBOX`, '-u', 'test1:pass', '-T', file);
    expect(again.code).toBe(0);

    const got = await curl(`${base}/INBOX;UID=1`, '-u', 'test1:pass');
    expect(got.code).toBe(0);
    expect(got.stdoutBytes.equals(message)).toBe(true);
    const byIndex = await curl(`${base}/INBOX;MAILINDEX=2`, '-u', 'test1:pass');
    expect(byIndex.code).toBe(0);
    expect(byIndex.stdoutBytes.equals(message)).toBe(true);
    const section = await curl(`${base}/INBOX;UID=1;SECTION=TEXT`, '-u', 'test1:pass');
    expect(section.stdout).toBe('Hello from curl.\r\nSecond line.\r\n');
    const missing = await curl(`${base}/INBOX;UID=99`, '-u', 'test1:pass');
    expect(missing.code).not.toBe(0);
  });

  it('lists mailboxes', async () => {
    const mk = await curl(`${base}/`, '-u', 'test1:pass', '-X', 'CREATE "Curl Box"');
    expect(mk.code).toBe(0);
    const r = await curl(`${base}/`, '-u', 'test1:pass');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split(/\r?\n/).sort();
    expect(lines).toEqual(['* LIST (\\HasNoChildren) "/" "Curl Box"', '* LIST (\\HasNoChildren) "/" INBOX']);
  });

  it('runs a custom request (-X EXAMINE INBOX) and a search', async () => {
    const r = await curl(`${base}/`, '-u', 'test1:pass', '-X', 'EXAMINE INBOX');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\* 2 EXISTS\r?$/m);
    expect(r.stdout).toMatch(/^\* OK \[UIDVALIDITY \d+\]/m);
    expect(r.stdout).toMatch(/^\* OK \[UIDNEXT 3\]/m);
    expect(r.stdout).toMatch(/^\* FLAGS \(/m);
    const s = await curl(`${base}/INBOX?SUBJECT%20curl`, '-u', 'test1:pass');
    expect(s.code).toBe(0);
    expect(s.stdout.trim()).toBe('* SEARCH 1 2');
    const none = await curl(`${base}/INBOX?SUBJECT%20nothing`, '-u', 'test1:pass');
    expect(none.stdout.trim()).toBe('* SEARCH');
  });

  it('is refused with a wrong password (curl exit 67, login denied)', async () => {
    const r = await curl(`${base}/`, '-u', 'test1:wrong');
    expect(r.code).toBe(67);
  });
});
