/**
 * Real clients through imapkit proxy in front of a real Dovecot: imapflow, Python's imaplib, curl
 * and mbsync must see exactly what they see when talking to Dovecot directly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { ProxyServer } from '../../src/proxy/server.js';
import { Router } from '../../src/proxy/router.js';
import { parseBackendUrl } from '../../src/proxy/backend.js';
import { peer, run, startDovecot, TestClient, type Dovecot } from '../proxy/helpers.js';

const haveDovecot = peer('dovecot');
let dovecot: Dovecot | undefined;
let proxy: ProxyServer | undefined;
let direct = 0;
let proxied = 0;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imapkit-proxy-clients-'));

function message(i: number): string {
  return [
    `From: Sender ${i} <sender${i}@example.com>`,
    'To: test1@example.com',
    `Subject: message number ${i} =?UTF-8?B?w6TDtsO8?=`,
    `Message-ID: <m${i}@example.com>`,
    'Date: Mon, 02 Jan 2023 10:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Body of message ${i}.`,
    'A line that says: x LOGOUT',
    '',
  ].join('\r\n');
}

beforeAll(async () => {
  if (!haveDovecot) return;
  dovecot = await startDovecot({ DOVECOT_USERS: 'tricky:p"a\\s{1}% utf8:pässwörd' });
  direct = dovecot.port;
  const c = new ImapFlow({ host: '127.0.0.1', port: direct, secure: false, auth: { user: 'test1', pass: 'pass' }, logger: false });
  await c.connect();
  for (let i = 1; i <= 5; i++) await c.append('INBOX', message(i), i % 2 ? ['\\Seen'] : []);
  await c.mailboxCreate('Archive/2023');
  await c.logout();
  proxy = new ProxyServer({ router: new Router({ defaultBackend: parseBackendUrl(`imap://127.0.0.1:${direct}`) }), listen: { host: '127.0.0.1', port: 0 } });
  await proxy.start();
  proxied = proxy.ports().plain;
});

afterAll(async () => {
  await proxy?.stop();
  dovecot?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('clients through imapkit proxy (Dovecot backend)', () => {
  it('imapflow sees the same mailboxes, messages and flags', async () => {
    if (!haveDovecot) return;
    const snapshot = async (port: number) => {
      const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user: 'test1', pass: 'pass' }, logger: false });
      await c.connect();
      const list = (await c.list()).map((m) => m.path).sort();
      const lock = await c.getMailboxLock('INBOX');
      const msgs: Array<{ uid: number; subject?: string; flags: string[]; source: string }> = [];
      try {
        for await (const m of c.fetch('1:*', { uid: true, envelope: true, flags: true, source: true })) {
          // \Recent belongs to the first session that sees a message, whichever that is.
          const flags = [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort();
          msgs.push({ uid: m.uid, subject: m.envelope?.subject, flags, source: m.source?.toString('latin1') ?? '' });
        }
        const found = await c.search({ body: 'number 3' }, { uid: true });
        msgs.push({ uid: -1, flags: (found || []).map(String), source: '' });
      } finally {
        lock.release();
      }
      await c.logout();
      return { list, msgs };
    };
    const viaDirect = await snapshot(direct);
    const viaProxy = await snapshot(proxied);
    expect(viaDirect.msgs.filter((m) => m.uid > 0)).toHaveLength(5);
    expect(viaDirect.msgs[0].subject).toBe('message number 1 äöü');
    expect(viaProxy).toEqual(viaDirect);
  });

  it("Python's imaplib gets the same answers", async () => {
    if (!haveDovecot || !peer('python3')) return;
    const script = `
import imaplib, json, sys
port = int(sys.argv[1])
m = imaplib.IMAP4('127.0.0.1', port)
out = {'login': m.login('test1', 'pass')[0]}
out['select'] = m.select('INBOX')[1][0].decode()
typ, data = m.fetch('1:*', '(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
out['fetch'] = [(d.decode('latin1') if isinstance(d, bytes) else [x.decode('latin1') for x in d]) for d in data]
out['fetch'] = json.loads(json.dumps(out['fetch']).replace('\\\\Recent', '').replace('( ', '(').replace(' )', ')'))
out['search'] = m.search(None, 'SUBJECT', '"number 2"')[1][0].decode()
out['list'] = sorted(x.decode() for x in m.list()[1])
out['status'] = m.status('INBOX', '(MESSAGES UNSEEN)')[1][0].decode()
out['logout'] = m.logout()[0]
print(json.dumps(out))
`;
    const a = JSON.parse(await run('python3', ['-c', script, String(direct)]));
    const b = JSON.parse(await run('python3', ['-c', script, String(proxied)]));
    expect(a.fetch).toHaveLength(10);
    expect(a.fetch[0][1]).toContain('Subject: message number 1');
    expect(a.search).toBe('2');
    expect(b).toEqual(a);
    expect(b.logout).toBe('BYE');
  });

  it('curl lists and fetches a message by UID the same way', async () => {
    if (!haveDovecot || !peer('curl')) return;
    const curl = (port: number, url: string): Promise<string> => run('curl', ['-s', '--max-time', '20', `imap://127.0.0.1:${port}${url}`, '-u', 'test1:pass']);
    const listDirect = await curl(direct, '/INBOX');
    expect(listDirect).toContain('INBOX');
    expect(await curl(proxied, '/INBOX')).toBe(listDirect);
    const msg = await curl(proxied, '/INBOX;UID=1');
    expect(msg).toBe(await curl(direct, '/INBOX;UID=1'));
    expect(msg).toContain('Subject: message number 1');
    expect(msg).toContain('x LOGOUT');
    expect(await curl(proxied, '/')).toBe(await curl(direct, '/'));
  });

  it('mbsync syncs the same Maildir through the proxy as directly', async () => {
    if (!haveDovecot || !peer('mbsync')) return;
    const sync = async (port: number, name: string): Promise<string[]> => {
      const dir = path.join(tmp, name);
      const rc = path.join(tmp, `${name}.mbsyncrc`);
      writeFileSync(
        rc,
        `IMAPAccount remote
Host 127.0.0.1
Port ${port}
User test1
Pass pass
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account remote

MaildirStore local
Path ${dir}/
Inbox ${dir}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Near
SyncState *
`,
      );
      mkdirSync(dir, { recursive: true });
      await run('mbsync', ['-c', rc, '-a', '-q'], { env: { HOME: tmp } });
      const files: string[] = [];
      const walk = (d: string): void => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) walk(p);
          // mbsync stamps each copy with a random X-TUID header.
          else if (/\/(cur|new)\//.test(p)) files.push(`${path.relative(dir, path.dirname(path.dirname(p)))}: ${readFileSync(p, 'latin1').replace(/^X-TUID: .*\r?\n/m, '')}`);
        }
      };
      walk(dir);
      return files.sort();
    };
    const a = await sync(direct, 'direct');
    const b = await sync(proxied, 'proxied');
    expect(a.filter((f) => f.startsWith('INBOX:'))).toHaveLength(5);
    expect(b).toEqual(a);
  });

  it('passes awkward passwords through: quoted specials, literals, 8-bit', async () => {
    if (!haveDovecot) return;
    for (const port of [direct, proxied]) {
      const a = await TestClient.connect(port);
      expect((await a.cmd('LOGIN tricky "p\\"a\\\\s{1}%"')).status).toBe('OK');
      a.close();
      const b = await TestClient.connect(port);
      const pw = Buffer.from('pässwörd', 'utf8');
      b.send(`u1 LOGIN utf8 {${pw.length}}\r\n`);
      await b.waitFor(/^\+/);
      b.send(Buffer.concat([pw, Buffer.from('\r\n')]));
      expect((await b.reply('u1')).status, `port ${port}`).toBe('OK');
      b.close();
    }
  });
});
