/**
 * SEARCH TEXT looks at the whole message (RFC 3501 6.4.4: "in the header or body"), so it must find
 * text in MIME part headers (an attachment's file name) and in the header of an attached
 * message/rfc822, which are part of the body. BODY is checked alongside. The same searches run
 * against Dovecot, the reference, when it is installed; imapkit must give the same answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { RawImapClient } from './helpers/raw-imap.js';
import { startDovecot, startImapkit, tempDir, which, type DovecotServer, type ImapkitServer } from './helpers/server-peers.js';

const MESSAGES = [
  // 1: the word only in the Subject of a forwarded message (a message/rfc822 part)
  'From: a@example.org\r\nSubject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n' +
    '--b1\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\n' +
    'From: c@example.org\r\nSubject: zebrafish results\r\n\r\ninner text\r\n--b1--\r\n',
  // 2: the word only in an attachment's file name (a part header)
  'From: a@example.org\r\nSubject: file\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b2"\r\n\r\n' +
    '--b2\r\nContent-Type: text/plain\r\n\r\nattached\r\n--b2\r\nContent-Type: application/octet-stream; name="zebrafish-42.bin"\r\n' +
    'Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b2--\r\n',
  // 3: the word in the top-level Subject only (TEXT finds it, BODY must not)
  'From: a@example.org\r\nSubject: zebrafish\r\n\r\nnothing here\r\n',
  // 4: no match anywhere
  'From: a@example.org\r\nSubject: other\r\n\r\nplain text\r\n',
];

const SEARCHES = ['TEXT zebrafish', 'BODY zebrafish', 'TEXT zebrafish-42', 'BODY "inner text"'];

async function answers(port: number, user: string): Promise<Record<string, string>> {
  const c = await RawImapClient.connect(port);
  try {
    await c.login(user, 'pass');
    for (const m of MESSAGES) expect((await c.append('INBOX', Buffer.from(m))).status).toBe('OK');
    await c.command('SELECT INBOX');
    const out: Record<string, string> = {};
    for (const s of SEARCHES) {
      const r = await c.command(`SEARCH ${s}`);
      out[s] = `${r.status} ${r.untagged.map((u) => u.raw.toString('latin1').trim()).join(' ')}`;
    }
    return out;
  } finally {
    await c.close();
  }
}

describe('SEARCH TEXT covers part headers and attached messages', () => {
  let tmp: ReturnType<typeof tempDir>;
  let imapkit: ImapkitServer;
  let dovecot: DovecotServer | undefined;
  beforeAll(async () => {
    tmp = tempDir('search');
    imapkit = await startImapkit(tmp.dir);
    // Dovecot only confirms the expectation; the assertions on imapkit hold without it.
    if (which('dovecot')) dovecot = await startDovecot(path.join(tmp.dir, 'dovecot'));
  });
  afterAll(async () => {
    await dovecot?.stop();
    await imapkit?.stop();
    tmp?.remove();
  });

  const expected = {
    'TEXT zebrafish': 'OK * SEARCH 1 2 3',
    // Dovecot reads BODY as the decoded text of the parts, without any header (RFC 3501 leaves room for both)
    'BODY zebrafish': 'OK * SEARCH',
    'TEXT zebrafish-42': 'OK * SEARCH 2',
    'BODY "inner text"': 'OK * SEARCH 1',
  };

  it('finds text in part headers and in an attached message header, as Dovecot does', async () => {
    if (dovecot) expect(await answers(dovecot.port, 'test1')).toEqual(expected);
    expect(await answers(imapkit.port, 'test1')).toEqual(expected);
  });
});
