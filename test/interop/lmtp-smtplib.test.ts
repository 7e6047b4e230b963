/**
 * Python's smtplib.LMTP (stdlib) delivers to `imapkit serve --lmtp` running as a real process, over
 * TCP (sqlite store) and over a unix socket (maildir store), to two users with an unknown one in
 * between; then Python's imaplib reads every message back and the test compares it byte for byte
 * with what was sent, below the three trace header fields the delivery put on top.
 * smtplib's LMTP class reads one reply after DATA; RFC 2033 sends one per accepted recipient, so
 * the script reads the rest itself (as an LMTP client must).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCorpus } from '../fixtures/corpus.js';
import { cliCommand, freePort, havePeer, ROOT, run, tempDir, writePasswdFile } from './helpers/server-peers.js';

const havePython = havePeer('python3', "the smtplib.LMTP deliveries to imapkit serve --lmtp are");

/**
 * `node dist/cli/main.js` when the build is newer than every source it runs (as `npx imapkit` would
 * start it); otherwise the sources through tsx, so a stale dist/ never tests old code.
 */
function imapkitCommand(): { command: string; args: string[] } {
  const dist = path.join(ROOT, 'dist/cli/main.js');
  const built = path.join(ROOT, 'dist/server/lmtp/server.js');
  if (!existsSync(dist) || !existsSync(built)) return cliCommand();
  const builtAt = statSync(built).mtimeMs;
  const sources = [path.join(ROOT, 'src/cli/serve.ts'), path.join(ROOT, 'src/server/config.ts'), ...readdirSync(path.join(ROOT, 'src/server/lmtp')).map((f) => path.join(ROOT, 'src/server/lmtp', f))];
  if (sources.some((f) => statSync(f).mtimeMs > builtAt)) return cliCommand();
  return { command: process.execPath, args: [dist] };
}

interface Serve {
  child: ChildProcess;
  imapPort: number;
  startLine: string;
  stop(): Promise<void>;
}

/** Start `imapkit serve --lmtp ADDRESS` and wait for its start-up line. */
async function startServe(dir: string, store: string, lmtp: string): Promise<Serve> {
  const imapPort = await freePort();
  const passwd = path.join(dir, 'passwd');
  writePasswdFile(passwd);
  const cli = imapkitCommand();
  const child = spawn(
    cli.command,
    [...cli.args, 'serve', '--host', '127.0.0.1', '--port', String(imapPort), '--store', store, '--users', `passwd:${passwd}`, '--lmtp', lmtp, '--log-level', 'warn', '--failed-login-delay-ms', '0'],
    { cwd: ROOT, env: { ...process.env, XDG_DATA_HOME: path.join(dir, 'xdg') }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const startLine = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`imapkit serve did not start: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('imapkit serving'));
      if (line !== undefined && out.includes('\n')) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`imapkit serve exited (${code}) before listening: ${err}`));
    });
  });
  return {
    child,
    imapPort,
    startLine,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

const SCRIPT = String.raw`
import base64, imaplib, json, smtplib, sys
target, imap_port, msgdir, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
out = {'deliveries': [], 'read': {}}
lmtp = smtplib.LMTP(target) if target.startswith('/') else smtplib.LMTP('127.0.0.1', int(target))
code, lhlo = lmtp.ehlo('python.example')
out['lhlo'] = [code, lhlo.decode()]
out['features'] = sorted(lmtp.esmtp_features.keys())
for i in range(count):
    data = open('%s/%d.eml' % (msgdir, i), 'rb').read()
    c, m = lmtp.mail('sender%d@example.org' % i, ['BODY=8BITMIME', 'SIZE=%d' % len(data)])
    d = {'mail': [c, m.decode()], 'rcpt': [], 'data': []}
    accepted = []
    for r in ['test1@example.org', 'nobody@example.org', 'test2@example.org']:
        c, m = lmtp.rcpt(r)
        d['rcpt'].append([c, m.decode()])
        if c == 250: accepted.append(r)
    # One reply per accepted recipient after the data (RFC 2033 4.2): smtplib reads the first.
    c, m = lmtp.data(data)
    d['data'].append([c, m.decode()])
    for _ in accepted[1:]:
        c, m = lmtp.getreply()
        d['data'].append([c, m.decode()])
    out['deliveries'].append(d)
out['quit'] = list(lmtp.quit())[0]
for user in ['test1', 'test2']:
    M = imaplib.IMAP4('127.0.0.1', imap_port)
    M.login(user, 'pass')
    M.select('INBOX', readonly=True)
    typ, ids = M.search(None, 'ALL')
    got = []
    for n in ids[0].split():
        typ, data = M.fetch(n, '(BODY.PEEK[])')
        got.append(base64.b64encode(data[0][1]).decode())
    out['read'][user] = got
    M.logout()
print(json.dumps(out))
`;

/** The messages sent: corpus messages that are already clean CRLF text (so they must come back unchanged), and one full of dots. */
function messagesToSend(): Buffer[] {
  const clean = generateCorpus(64)
    .map((m) => m.raw)
    .filter((raw) => {
      const s = raw.toString('latin1');
      return s.endsWith('\r\n') && !/[^\r]\n/.test(s) && !/\r[^\n]/.test(s) && !s.startsWith('\n');
    })
    .slice(0, 12);
  const dots = Buffer.from('From: Dot <dot@example.org>\r\nSubject: dots\r\n\r\n.\r\n..\r\n.hidden\r\n. \r\nend\r\n');
  return [...clean, dots];
}

/** The message without the Return-Path, Delivered-To and (three-line) Received the delivery added. */
function stripTrace(data: Buffer, rcpt: string): Buffer {
  const text = data.toString('latin1');
  const m = /^Return-Path: <([^>\r\n]*)>\r\nDelivered-To: ([^\r\n]*)\r\nReceived: from python\.example \(([^)\r\n]*)\)\r\n\tby [^\r\n]* \(imapkit\) with LMTP id [^\r\n]*\r\n\tfor <([^>\r\n]*)>; [^\r\n]*\r\n/.exec(text);
  if (!m) throw new Error(`no trace header fields on ${JSON.stringify(text.slice(0, 300))}`);
  expect(m[2]).toBe(rcpt);
  expect(m[4]).toBe(rcpt);
  return data.subarray(Buffer.byteLength(m[0], 'latin1'));
}

describe.runIf(havePython)("Python's smtplib.LMTP delivers to imapkit serve --lmtp", () => {
  let tmp: ReturnType<typeof tempDir>;
  const sent = messagesToSend();
  beforeAll(() => {
    tmp = tempDir('lmtp-smtplib');
    const msgdir = path.join(tmp.dir, 'msgs');
    mkdirSync(msgdir);
    sent.forEach((m, i) => writeFileSync(path.join(msgdir, `${i}.eml`), m));
  });
  afterAll(() => tmp?.remove());

  async function deliverAndRead(store: string, lmtp: string, target: (serve: Serve) => string): Promise<void> {
    const sub = path.join(tmp.dir, store.split(':')[0]!);
    mkdirSync(sub, { recursive: true });
    const serve = await startServe(sub, store.replace('DIR', sub), lmtp.replace('DIR', sub));
    try {
      expect(serve.startLine).toContain(`LMTP on ${lmtp.replace('DIR', sub)}`);
      const r = await run('python3', ['-c', SCRIPT, target(serve), String(serve.imapPort), path.join(tmp.dir, 'msgs'), String(sent.length)], { timeoutMs: 60_000 });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as {
        lhlo: [number, string];
        features: string[];
        deliveries: Array<{ mail: [number, string]; rcpt: Array<[number, string]>; data: Array<[number, string]> }>;
        quit: number;
        read: Record<string, string[]>;
      };
      expect(out.lhlo[0]).toBe(250);
      expect(out.features).toEqual(expect.arrayContaining(['8bitmime', 'enhancedstatuscodes', 'pipelining', 'size']));
      expect(out.deliveries.length).toBe(sent.length);
      for (const d of out.deliveries) {
        expect(d.mail[0]).toBe(250);
        expect(d.rcpt.map((x) => x[0])).toEqual([250, 550, 250]);
        expect(d.rcpt[1]![1]).toMatch(/^5\.1\.1 /);
        expect(d.data).toEqual([
          [250, '2.0.0 <test1@example.org> Saved'],
          [250, '2.0.0 <test2@example.org> Saved'],
        ]);
      }
      expect(out.quit).toBe(221);
      for (const user of ['test1', 'test2']) {
        const got = out.read[user]!.map((b64) => stripTrace(Buffer.from(b64, 'base64'), `${user}@example.org`));
        expect(got.length).toBe(sent.length);
        got.forEach((g, i) => expect(g.equals(sent[i]!), `message ${i} for ${user}`).toBe(true));
      }
    } finally {
      await serve.stop();
    }
  }

  it('over TCP into the sqlite store', async () => {
    const port = await freePort();
    await deliverAndRead('sqlite:DIR/imapkit.db', `127.0.0.1:${port}`, () => String(port));
  });

  it('over a unix socket into the maildir store', async () => {
    await deliverAndRead('maildir:DIR/mail/%u/Maildir', 'DIR/lmtp.sock', () => path.join(tmp.dir, 'maildir', 'lmtp.sock'));
    // stop() removed the socket.
    expect(existsSync(path.join(tmp.dir, 'maildir', 'lmtp.sock'))).toBe(false);
  });
});
