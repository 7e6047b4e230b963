/**
 * `npm run bench -- lmtp`: delivery rate over LMTP (RFC 2033) into `imapkit serve --lmtp` (sqlite
 * store, then maildir store) and into Dovecot's own LMTP (dovecot-lmtp, Maildir, mail_fsync=always),
 * side by side: N messages of the test corpus (generateCorpus), one at a time, first with one
 * connection per message (connect, LHLO, MAIL/RCPT/DATA pipelined, QUIT: what an MTA does without
 * connection caching), then all N over one connection (MAIL/RCPT/DATA pipelined per transaction).
 * For context it also times `imapkit deliver` (one process per message, maildir store) against
 * dovecot-lda. Every delivery must be answered 250 and the INBOX counts are checked over IMAP.
 * imapkit runs as `node dist/cli/main.js serve` (bench/run.ts builds dist/ first), logging at info level as a
 * production server would (stderr discarded; Dovecot logs to its file).
 * Options: --messages N (default 1000), --deliveries N (default 50).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCorpus } from '../test/fixtures/corpus.js';
import { freePort, run } from '../test/interop/helpers/server-peers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LDA = '/usr/lib/dovecot/dovecot-lda';

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

/** A message as it goes over the wire after DATA: CRLF lines, dots stuffed, the end line added. */
export function toWire(raw: Buffer): Buffer {
  let s = raw.toString('latin1').replace(/\r?\n/g, '\r\n');
  if (!s.endsWith('\r\n')) s += '\r\n';
  // Only a dot after a line end (LF) starts a line; a bare CR does not.
  s = (s.startsWith('.') ? '.' : '') + s.replace(/\n\./g, '\n..');
  return Buffer.from(`${s}.\r\n`, 'latin1');
}

/** A lean LMTP client: writes what it is told, counts complete replies. */
class LmtpClient {
  private buf = '';
  private replies: string[] = [];
  private waiter: (() => void) | undefined;
  private closed = false;

  private constructor(private readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      let nl: number;
      let start = 0;
      while ((nl = this.buf.indexOf('\r\n', start)) >= 0) {
        const line = this.buf.slice(start, nl);
        start = nl + 2;
        if (line[3] !== '-') this.replies.push(line);
      }
      this.buf = this.buf.slice(start);
      this.waiter?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    sock.on('error', () => undefined);
  }

  /** Connect, read the greeting and say LHLO. */
  static async open(port: number): Promise<LmtpClient> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const c = new LmtpClient(sock);
    c.expect(await c.read(1), ['220']);
    c.sock.write('LHLO bench.example\r\n');
    c.expect(await c.read(1), ['250']);
    return c;
  }

  private async read(n: number): Promise<string[]> {
    while (this.replies.length < n) {
      if (this.closed) throw new Error(`connection closed; replies ${JSON.stringify(this.replies)}`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
    }
    return this.replies.splice(0, n);
  }

  private expect(got: string[], codes: string[]): void {
    if (got.some((r, i) => !r.startsWith(codes[i]!))) throw new Error(`expected ${codes.join(' ')}, got ${JSON.stringify(got)}`);
  }

  /** One transaction, MAIL/RCPT/DATA pipelined (RFC 2920); resolves when the recipient's reply is 250. */
  async deliver(from: string, rcpt: string, wire: Buffer): Promise<void> {
    this.sock.write(`MAIL FROM:<${from}>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n`);
    this.expect(await this.read(3), ['250', '250', '354']);
    this.sock.write(wire);
    this.expect(await this.read(1), ['250']);
  }

  async quit(): Promise<void> {
    this.sock.write('QUIT\r\n');
    this.expect(await this.read(1), ['221']);
    this.sock.destroy();
  }
}

/** Messages per second for N deliveries, one connection each. */
async function perConnection(port: number, rcpt: string, wires: Buffer[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < wires.length; i++) {
    const c = await LmtpClient.open(port);
    await c.deliver(`sender${i}@example.org`, rcpt, wires[i]!);
    await c.quit();
  }
  return wires.length / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** Messages per second for N deliveries over one connection. */
async function oneConnection(port: number, rcpt: string, wires: Buffer[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  const c = await LmtpClient.open(port);
  for (let i = 0; i < wires.length; i++) await c.deliver(`sender${i}@example.org`, rcpt, wires[i]!);
  await c.quit();
  return wires.length / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** INBOX message count of a user over IMAP (LOGIN, STATUS). */
async function inboxCount(port: number, user: string): Promise<number> {
  const sock = net.connect(port, '127.0.0.1');
  let text = '';
  const done = new Promise<string>((resolve, reject) => {
    sock.on('data', (d: Buffer) => {
      text += d.toString();
      if (/\r\nb (OK|NO|BAD)[^\r\n]*\r\n/.test(text)) resolve(text);
    });
    sock.on('error', reject);
  });
  sock.write('a LOGIN ' + user + ' pass\r\nb STATUS INBOX (MESSAGES)\r\n');
  const out = await done;
  sock.destroy();
  const m = /\(MESSAGES (\d+)\)/.exec(out);
  if (!m) throw new Error(`no STATUS for ${user}: ${out}`);
  return Number(m[1]);
}

/** `imapkit serve --lmtp` as a process; resolves once it prints its start-up line. */
async function startImapkit(dir: string, store: string, passwd: string): Promise<{ child: ChildProcess; imap: number; lmtp: number }> {
  const imap = await freePort();
  const lmtp = await freePort();
  const child = spawn(
    process.execPath,
    [path.join(ROOT, 'dist/cli/main.js'), 'serve', '--host', '127.0.0.1', '--port', String(imap), '--store', store, '--users', `passwd:${passwd}`, '--lmtp', String(lmtp), '--failed-login-delay-ms', '0'],
    { cwd: dir, env: { ...process.env, XDG_DATA_HOME: path.join(dir, 'xdg') }, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('LMTP on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`imapkit serve exited (${code})`)));
  });
  return { child, imap, lmtp };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** Processes per second of one delivery program fed one message each on stdin. */
async function processRate(messages: Buffer[], command: string, args: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (const m of messages) {
    const r = await run(command, args, { input: m, timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`${command} exited ${r.code}: ${r.stderr}`);
  }
  return messages.length / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;

/** Run the benchmark; returns the figures (bench/run.ts saves them). */
export default async function runBench(args: string[]): Promise<unknown> {
  const n = arg(args, 'messages', 1000);
  const deliveries = arg(args, 'deliveries', 50);
  const corpus = generateCorpus(n);
  const wires = corpus.map((m) => toWire(m.raw));
  const bytes = corpus.reduce((s, m) => s + m.raw.length, 0);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-bench-lmtp-'));
  chmodSync(dir, 0o755);
  const passwd = path.join(dir, 'imapkit.passwd');
  writeFileSync(passwd, ['test1', 'test2', 'test3', 'test4', 'test5'].map((u) => `${u}:{PLAIN}pass`).join('\n') + '\n');
  const dovecotDir = path.join(dir, 'dovecot');
  const dovecotImap = await freePort();
  const dovecotLmtp = await freePort();
  const children: ChildProcess[] = [];
  console.log(`lmtp bench: ${n} corpus messages (${(bytes / 1e6).toFixed(1)} MB), one recipient each, sequential`);
  try {
    const started = await run('bash', [path.join(ROOT, 'scripts/dovecot.sh'), 'start', dovecotDir, String(dovecotImap)], { env: { DOVECOT_LMTP_PORT: String(dovecotLmtp) }, timeoutMs: 30_000 });
    if (started.code !== 0) throw new Error(`dovecot.sh start failed: ${started.stderr}${started.stdout}`);

    const rates: Record<string, { perConnection: number; oneConnection: number }> = {};
    const measure = async (name: string, lmtpPort: number, imapPort: number): Promise<void> => {
      const a = await perConnection(lmtpPort, 'test1@example.org', wires);
      const b = await oneConnection(lmtpPort, 'test2@example.org', wires);
      const counts = [await inboxCount(imapPort, 'test1'), await inboxCount(imapPort, 'test2')];
      if (counts[0] !== n || counts[1] !== n) throw new Error(`${name}: INBOX counts ${counts.join(', ')}, expected ${n} each`);
      rates[name] = { perConnection: round1(a), oneConnection: round1(b) };
      console.log(`  ${name.padEnd(16)} one connection per message ${round1(a)} msg/s, one connection for all ${round1(b)} msg/s`);
    };

    for (const [name, store] of [
      ['imapkit sqlite', `sqlite:${path.join(dir, 'imapkit.db')}`],
      ['imapkit maildir', `maildir:${path.join(dir, 'ik-maildir', '%u', 'Maildir')}`],
    ] as const) {
      const s = await startImapkit(dir, store, passwd);
      children.push(s.child);
      await measure(name, s.lmtp, s.imap);
      await stop(s.child);
    }
    await measure('dovecot', dovecotLmtp, dovecotImap);

    // Context: one process per message (maildir store against dovecot-lda on its Maildir).
    const few = corpus.slice(0, deliveries).map((m) => m.raw);
    const ik = await processRate(few, process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'deliver', 'test5', '--store', `maildir:${path.join(dir, 'ik-maildir', '%u', 'Maildir')}`, '--users', `passwd:${passwd}`]);
    const lda = await processRate(few, LDA, ['-c', path.join(dovecotDir, 'dovecot.conf'), '-d', 'test5']);

    const d = rates['dovecot']!;
    const result = {
      messages: n,
      megabytes: Math.round(bytes / 1e4) / 100,
      lmtp: rates,
      // > 1: imapkit delivers more messages per second than Dovecot.
      ratios: {
        sqlitePerConnection: ratio(rates['imapkit sqlite']!.perConnection, d.perConnection),
        sqliteOneConnection: ratio(rates['imapkit sqlite']!.oneConnection, d.oneConnection),
        maildirPerConnection: ratio(rates['imapkit maildir']!.perConnection, d.perConnection),
        maildirOneConnection: ratio(rates['imapkit maildir']!.oneConnection, d.oneConnection),
        deliverVsLda: ratio(ik, lda),
      },
      processPerMessage: { deliveries, imapkitDeliver: round1(ik), dovecotLda: round1(lda) },
      load: os.loadavg(),
    };
    const row = (label: string, ikRate: number, dv: number) => `${label.padEnd(44)} ${`${ikRate}`.padStart(9)} ${`${dv}`.padStart(9)}   x${ratio(ikRate, dv)}`;
    console.log(`\n${'messages/s (sequential)'.padEnd(44)} ${'imapkit'.padStart(9)} ${'dovecot'.padStart(9)}   imapkit/dovecot (>1 = faster)`);
    for (const store of ['sqlite', 'maildir'] as const) {
      const r = rates[`imapkit ${store}`]!;
      console.log(row(`LMTP ${store}, one connection per message`, r.perConnection, d.perConnection));
      console.log(row(`LMTP ${store}, one connection for all`, r.oneConnection, d.oneConnection));
    }
    console.log(row(`deliver vs dovecot-lda, process per message`, round1(ik), round1(lda)));
    console.log(`load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    return result;
  } finally {
    for (const c of children) await stop(c);
    await run('bash', [path.join(ROOT, 'scripts/dovecot.sh'), 'stop', dovecotDir], { timeoutMs: 30_000 });
    rmSync(dir, { recursive: true, force: true });
  }
}
