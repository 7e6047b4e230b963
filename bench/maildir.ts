/**
 * `npm run bench -- maildir`: imapkit's maildir store against Dovecot on the same Maildir of 10,000
 * messages, in one run: the first SELECT after a cold start (no index or cache files), a second
 * SELECT, `FETCH 1:* (FLAGS ENVELOPE)`, and the delivery rate of `imapkit deliver` against
 * dovecot-lda. Both servers are timed by the same raw IMAP client in this process; imapkit's server
 * and deliver run as their own processes (bundled with esbuild, as a built install would start).
 * Options: --messages N (default 10000), --deliveries N (default 200), --rounds N (default 3).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LDA = '/usr/lib/dovecot/dovecot-lda';

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

// ---- test data ----

/** A deterministic PRNG (mulberry32), so every run measures the same Maildir. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = 'the of and to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part'.split(' ');

/** One realistic message (LF line ends, as an MDA stores it) and its date. */
function makeMessage(i: number, r: () => number): { data: Buffer; date: Date } {
  const words = (n: number) => Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]).join(' ');
  const date = new Date(Date.UTC(2020, 0, 1) + i * 3_600_000 + Math.floor(r() * 3_600_000));
  const from = `${WORDS[i % WORDS.length]}.${WORDS[(i * 7) % WORDS.length]}@example.${['org', 'com', 'net'][i % 3]}`;
  const head = [
    `Return-Path: <${from}>`,
    `Received: from mx${i % 5}.example.org (mx${i % 5}.example.org [192.0.2.${i % 250}])\n\tby mail.example.net with ESMTPS id ${i.toString(36)}\n\tfor <user@example.net>; ${date.toUTCString()}`,
    `From: "${words(2)}" <${from}>`,
    `To: User <user@example.net>${i % 4 === 0 ? ', Other <other@example.net>' : ''}`,
    ...(i % 3 === 0 ? ['Cc: team@example.net'] : []),
    `Subject: ${i % 5 === 0 ? 'Re: ' : ''}${words(3 + (i % 6))} #${i}`,
    `Date: ${date.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${i}.${i.toString(36)}@example.org>`,
    ...(i % 5 === 0 ? [`In-Reply-To: <${i - 1}.${(i - 1).toString(36)}@example.org>`] : []),
    'MIME-Version: 1.0',
  ];
  const text = Array.from({ length: 5 + Math.floor(r() * 40) }, () => words(8 + Math.floor(r() * 8))).join('\n');
  let body: string;
  if (i % 5 === 1) {
    head.push('Content-Type: multipart/alternative; boundary="b1"');
    body = `--b1\nContent-Type: text/plain; charset=utf-8\n\n${text}\n--b1\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>${text.replace(/\n/g, '</p><p>')}</p></body></html>\n--b1--\n`;
  } else if (i % 20 === 2) {
    head.push('Content-Type: multipart/mixed; boundary="b2"');
    const att = randomBytes(3000).toString('base64').replace(/(.{76})/g, '$1\n');
    body = `--b2\nContent-Type: text/plain; charset=utf-8\n\n${text}\n--b2\nContent-Type: application/octet-stream; name="f${i}.bin"\nContent-Disposition: attachment; filename="f${i}.bin"\nContent-Transfer-Encoding: base64\n\n${att}\n--b2--\n`;
  } else {
    head.push('Content-Type: text/plain; charset=utf-8');
    body = text + '\n';
  }
  return { data: Buffer.from(head.join('\n') + '\n\n' + body), date };
}

/** Fill a Maildir the way Dovecot leaves one: files in cur/ with S=/W=, flags, a dovecot-uidlist and keywords. */
export async function fillMaildir(root: string, n: number): Promise<void> {
  for (const sub of ['cur', 'new', 'tmp']) await fs.mkdir(path.join(root, sub), { recursive: true });
  const r = rng(42);
  const lines = [`3 V1600000000 N${n + 1} G${randomBytes(16).toString('hex')}`];
  for (let i = 0; i < n; i++) {
    const { data, date } = makeMessage(i, r);
    const vsize = data.length + (data.toString('latin1').match(/\n/g)?.length ?? 0);
    const base = `${Math.floor(date.getTime() / 1000)}.M${i}P1.bench,S=${data.length},W=${vsize}`;
    const flags = (i % 3 ? 'S' : '') + (i % 17 === 0 ? 'F' : '') + (i % 11 === 0 ? 'R' : '') + (i % 13 === 0 ? 'a' : '');
    const file = path.join(root, 'cur', `${base}:2,${[...flags].sort().join('')}`);
    await fs.writeFile(file, data);
    await fs.utimes(file, date, date);
    lines.push(`${i + 1} :${base}`);
  }
  await fs.writeFile(path.join(root, 'dovecot-uidlist'), lines.join('\n') + '\n');
  await fs.writeFile(path.join(root, 'dovecot-keywords'), '0 $Important\n');
}

// ---- a raw IMAP client that times commands ----

class Raw {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private n = 0;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async connect(port: number): Promise<Raw> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const c = new Raw(sock);
    await c.until(() => c.buf.indexOf('\r\n') >= 0);
    c.buf = Buffer.alloc(0);
    return c;
  }

  private until(done: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done()) resolve();
        else this.waiters.push(check);
      };
      this.sock.once('close', () => reject(new Error('connection closed')));
      check();
    });
  }

  /** Send one command; resolves with the elapsed ms, the response bytes and the status. */
  async run(command: string): Promise<{ ms: number; bytes: number; status: string; text: string }> {
    const tag = `T${++this.n}`;
    this.buf = Buffer.alloc(0);
    const needle = Buffer.from(`\r\n${tag} `);
    const t0 = process.hrtime.bigint();
    this.sock.write(`${tag} ${command}\r\n`);
    let at = -1;
    await this.until(() => {
      if (this.buf.subarray(0, tag.length + 1).toString() === `${tag} `) at = 0;
      else {
        const i = this.buf.indexOf(needle);
        if (i >= 0) at = i + 2;
      }
      return at >= 0 && this.buf.indexOf('\r\n', at) >= 0;
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const line = this.buf.subarray(at, this.buf.indexOf('\r\n', at)).toString();
    const text = this.buf.toString('latin1');
    return { ms, bytes: this.buf.length, status: line.split(' ')[1] ?? '', text };
  }

  close(): void {
    this.sock.destroy();
  }
}

async function login(port: number, user: string): Promise<Raw> {
  const c = await Raw.connect(port);
  const r = await c.run(`LOGIN ${user} pass`);
  if (r.status !== 'OK') throw new Error(`login failed on port ${port}: ${r.text}`);
  return c;
}

/** Cold SELECT, second SELECT (new connection), FETCH 1:* (FLAGS ENVELOPE) twice. */
export async function measure(port: number, user: string, expectMessages: number): Promise<{ cold: number; warm: number; fetch: number; fetchAgain: number; fetchBytes: number }> {
  const a = await login(port, user);
  const cold = await a.run('SELECT INBOX');
  if (cold.status !== 'OK' || !cold.text.includes(`* ${expectMessages} EXISTS`)) throw new Error(`unexpected SELECT: ${cold.text.slice(0, 300)}`);
  a.close();
  const b = await login(port, user);
  const warm = await b.run('SELECT INBOX');
  const fetch = await b.run('FETCH 1:* (FLAGS ENVELOPE)');
  if (fetch.status !== 'OK') throw new Error(`FETCH failed: ${fetch.text.slice(-300)}`);
  const again = await b.run('FETCH 1:* (FLAGS ENVELOPE)');
  b.close();
  return { cold: cold.ms, warm: warm.ms, fetch: fetch.ms, fetchAgain: again.ms, fetchBytes: fetch.bytes };
}

// ---- the imapkit side as processes ----

/** Bundle an entry point with esbuild into .tmp/ (dependencies stay in node_modules). */
async function bundle(name: string, source: string): Promise<string> {
  const dir = path.join(ROOT, '.tmp', 'bench-maildir');
  await fs.mkdir(dir, { recursive: true });
  const entry = path.join(dir, `${name}.entry.ts`);
  await fs.writeFile(entry, source);
  const out = path.join(dir, `${name}.mjs`);
  const esbuild = (await import('esbuild')) as typeof import('esbuild');
  await esbuild.build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', outfile: out, logLevel: 'error' });
  return out;
}

function startImapkit(serverJs: string, maildirs: string, passwd: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [serverJs, maildirs, passwd], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`imapkit server exited (${code})`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

function runDelivery(cmd: string, args: string[], input: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err}`))));
    p.stdin!.end(input);
  });
}

async function deliveryRate(n: number, one: (data: Buffer) => Promise<void>): Promise<number> {
  const r = rng(7);
  const msgs = Array.from({ length: n }, (_, i) => makeMessage(100_000 + i, r).data);
  const t0 = process.hrtime.bigint();
  for (const m of msgs) await one(m);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return n / s;
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await fs.chown(dir, uid, gid);
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await fs.chown(p, uid, gid);
  }
}

/** Run the benchmark; returns the figures (bench/run.ts saves them). */
export default async function run(args: string[]): Promise<unknown> {
  const messages = arg(args, 'messages', 10_000);
  const deliveries = arg(args, 'deliveries', 200);
  const rounds = arg(args, 'rounds', 3);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imapkit-bench-maildir-'));
  chmodSync(dir, 0o755);
  const dovecotPort = await freePort();
  const started = spawnSync('bash', [path.join(ROOT, 'scripts/dovecot.sh'), 'start', dir, String(dovecotPort)], { stdio: 'ignore' });
  if (started.status !== 0) throw new Error('dovecot did not start (scripts/dovecot.sh); is it installed?');
  const conf = path.join(dir, 'dovecot.conf');
  const passwd = path.join(dir, 'passwd');
  const owner = await fs.stat(path.join(dir, 'home', 'test1'));
  const maildirs = path.join(dir, 'home', '%u', 'Maildir');
  let server: { child: ChildProcess; port: number } | undefined;
  try {
    console.log(`filling a Maildir with ${messages} messages ...`);
    const root = path.join(dir, 'home', 'test1', 'Maildir');
    await fillMaildir(root, messages);
    await chownTree(path.join(dir, 'home', 'test1'), owner.uid, owner.gid);
    const serverJs = await bundle(
      'server',
      `import { MaildirStore } from ${JSON.stringify(path.join(ROOT, 'src/store/maildir/store.ts'))};\n` +
        `import { PasswdFileUserDb } from ${JSON.stringify(path.join(ROOT, 'src/auth/passwd-file.ts'))};\n` +
        `import { ImapServer } from ${JSON.stringify(path.join(ROOT, 'src/server/server.ts'))};\n` +
        `import { silentLogger } from ${JSON.stringify(path.join(ROOT, 'src/log/logger.ts'))};\n` +
        `const store = new MaildirStore({ path: process.argv[2] });\n` +
        `const server = new ImapServer({ store, users: new PasswdFileUserDb(process.argv[3]), host: '127.0.0.1', port: 0, log: silentLogger() });\n` +
        `const info = await server.listen();\nconsole.log('port ' + info.port);\n` +
        `process.on('SIGTERM', async () => { await server.close(); await store.close(); process.exit(0); });\n`,
    );
    const deliverJs = await bundle(
      'deliver',
      `import { Command } from 'commander';\nimport { register } from ${JSON.stringify(path.join(ROOT, 'src/cli/deliver.ts'))};\n` +
        `const p = new Command(); register(p); await p.parseAsync(process.argv);\n`,
    );

    const dv: Array<Awaited<ReturnType<typeof measure>>> = [];
    const ik: Array<Awaited<ReturnType<typeof measure>>> = [];
    for (let round = 0; round < rounds; round++) {
      // Cold: no Dovecot index files, no imapkit cache, a freshly started imapkit server.
      for (const f of await fs.readdir(root)) if (f.startsWith('dovecot.index') || f.startsWith('dovecot.list.index') || f.startsWith('imapkit-cache')) await fs.rm(path.join(root, f), { force: true });
      dv.push(await measure(dovecotPort, 'test1', messages));
      for (const f of await fs.readdir(root)) if (f.startsWith('imapkit-cache')) await fs.rm(path.join(root, f), { force: true });
      server = await startImapkit(serverJs, maildirs, passwd);
      ik.push(await measure(server.port, 'test1', messages));
      await stopChild(server.child);
      server = undefined;
      console.log(`round ${round + 1}: dovecot ${JSON.stringify(dv.at(-1))}\n         imapkit ${JSON.stringify(ik.at(-1))}`);
    }

    console.log(`delivering ${deliveries} messages with each ...`);
    const ldaRate = await deliveryRate(deliveries, (m) => runDelivery(LDA, ['-c', conf, '-d', 'test2'], m));
    const ikRate = await deliveryRate(deliveries, (m) => runDelivery(process.execPath, [deliverJs, 'deliver', 'test3', '--store', `maildir:${maildirs}`, '--users', `passwd:${passwd}`], m));
    // The store alone (one process, one append per message, fsync each): what deliver costs without process start-up.
    const { MaildirStore } = await import('../src/store/maildir/store.js');
    const inproc = new MaildirStore({ path: maildirs });
    const u4 = await inproc.openUser('test4');
    const storeRate = await deliveryRate(deliveries, async (m) => {
      await u4.append('INBOX', [{ data: m }]);
    });
    await inproc.close();
    const nodeStart = await deliveryRate(20, () => runDelivery(process.execPath, ['-e', 'process.stdin.resume(); process.stdin.on("end", () => {})'], Buffer.from('x')));

    const med = (xs: Array<Awaited<ReturnType<typeof measure>>>, k: 'cold' | 'warm' | 'fetch' | 'fetchAgain') => Math.round(median(xs.map((x) => x[k])) * 10) / 10;
    const result = {
      messages,
      rounds,
      dovecot: { coldSelectMs: med(dv, 'cold'), secondSelectMs: med(dv, 'warm'), fetchFlagsEnvelopeMs: med(dv, 'fetch'), fetchAgainMs: med(dv, 'fetchAgain'), deliveriesPerSec: Math.round(ldaRate * 10) / 10 },
      imapkit: {
        coldSelectMs: med(ik, 'cold'),
        secondSelectMs: med(ik, 'warm'),
        fetchFlagsEnvelopeMs: med(ik, 'fetch'),
        fetchAgainMs: med(ik, 'fetchAgain'),
        deliveriesPerSec: Math.round(ikRate * 10) / 10,
        storeAppendsPerSec: Math.round(storeRate * 10) / 10,
        bareNodeProcessesPerSec: Math.round(nodeStart * 10) / 10,
      },
      // > 1 means imapkit is slower (times) or delivers fewer per second (rate).
      ratios: {} as Record<string, number>,
      samples: { dovecot: dv, imapkit: ik },
      load: os.loadavg(),
    };
    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    result.ratios = {
      coldSelect: ratio(result.imapkit.coldSelectMs, result.dovecot.coldSelectMs),
      secondSelect: ratio(result.imapkit.secondSelectMs, result.dovecot.secondSelectMs),
      fetchFlagsEnvelope: ratio(result.imapkit.fetchFlagsEnvelopeMs, result.dovecot.fetchFlagsEnvelopeMs),
      fetchAgain: ratio(result.imapkit.fetchAgainMs, result.dovecot.fetchAgainMs),
      delivery: ratio(result.dovecot.deliveriesPerSec, result.imapkit.deliveriesPerSec),
    };
    const row = (label: string, d: number, i: number, unit: string, r: number) => `${label.padEnd(30)} ${`${d} ${unit}`.padStart(14)} ${`${i} ${unit}`.padStart(14)}   x${r}`;
    console.log(`\n${'maildir, ' + messages + ' messages'.padEnd(21)} ${'dovecot'.padStart(14)} ${'imapkit'.padStart(14)}   imapkit/dovecot (time; >1 = slower)`);
    console.log(row('first SELECT (cold)', result.dovecot.coldSelectMs, result.imapkit.coldSelectMs, 'ms', result.ratios.coldSelect));
    console.log(row('second SELECT', result.dovecot.secondSelectMs, result.imapkit.secondSelectMs, 'ms', result.ratios.secondSelect));
    console.log(row('FETCH 1:* (FLAGS ENVELOPE)', result.dovecot.fetchFlagsEnvelopeMs, result.imapkit.fetchFlagsEnvelopeMs, 'ms', result.ratios.fetchFlagsEnvelope));
    console.log(row('same FETCH again', result.dovecot.fetchAgainMs, result.imapkit.fetchAgainMs, 'ms', result.ratios.fetchAgain));
    console.log(row('delivery (process per message)', result.dovecot.deliveriesPerSec, result.imapkit.deliveriesPerSec, 'msg/s', result.ratios.delivery));
    console.log(`imapkit store alone: ${result.imapkit.storeAppendsPerSec} appends/s; a bare node process: ${result.imapkit.bareNodeProcessesPerSec}/s; load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    return result;
  } finally {
    if (server) await stopChild(server.child);
    spawnSync('bash', [path.join(ROOT, 'scripts/dovecot.sh'), 'stop', dir], { stdio: 'ignore' });
    await fs.rm(dir, { recursive: true, force: true });
  }
}
