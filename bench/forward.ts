/**
 * `npm run bench -- forward`: latency of `imapkit forward` from APPEND on the source to the
 * message being visible on the target, over 200 messages, with IDLE and with polling at the
 * default interval. Source and target are private Dovecots on loopback; imapkit runs as its own
 * process, as in production. Options: --messages N, --poll-interval SECONDS, --skip-poll.
 *
 * The observer polls the target with NOOP every 10 ms (Dovecot reports new mail at the end of each
 * command) and reads the Message-IDs of new messages, so the figures include up to ~10 ms of
 * observation delay. Dovecot itself delays IDLE notifications by about half a second after a
 * change (it batches inotify events), which is a floor for any IDLE client of Dovecot.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
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

/** A minimal line-oriented IMAP client (commands without literals, except APPEND). */
class Imap {
  private buf = '';
  private waiters: Array<() => void> = [];
  private tag = 0;
  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('latin1');
    sock.setNoDelay(true);
    sock.on('data', (d: string) => {
      this.buf += d;
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static async connect(port: number, user: string): Promise<Imap> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((r, j) => {
      sock.once('connect', r);
      sock.once('error', j);
    });
    const c = new Imap(sock);
    await c.until(() => c.buf.includes('\r\n'));
    c.buf = '';
    // Right after start Dovecot's auth process may not answer yet ([UNAVAILABLE]): try again.
    for (let i = 0; ; i++) {
      try {
        await c.cmd(`LOGIN ${user} pass`);
        return c;
      } catch (err) {
        if (i > 50 || !/UNAVAILABLE/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  private until(check: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const test = (): void => {
        if (check()) resolve();
        else this.waiters.push(test);
      };
      test();
    });
  }
  /** Run a command; returns everything the server sent up to the tagged reply. */
  async cmd(text: string, literal?: Buffer): Promise<string> {
    const t = `b${++this.tag}`;
    if (literal) {
      this.sock.write(`${t} ${text} {${literal.length}+}\r\n`);
      this.sock.write(literal);
      this.sock.write('\r\n');
    } else this.sock.write(`${t} ${text}\r\n`);
    const re = new RegExp(`(^|\\r\\n)${t} (OK|NO|BAD)[^\\r]*\\r\\n`);
    await this.until(() => re.test(this.buf));
    const m = re.exec(this.buf)!;
    const out = this.buf.slice(0, m.index + m[0].length);
    this.buf = this.buf.slice(m.index + m[0].length);
    if (m[2] !== 'OK') throw new Error(`${text.split(' ')[0]}: ${out.slice(-200)}`);
    return out;
  }
  close(): void {
    this.sock.destroy();
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

interface Peers {
  dir: string;
  src: number;
  dst: number;
  stop(): void;
}

/** Run scripts/dovecot.sh with its output in a file: Dovecot keeps inherited pipes open, which would hang a pipe reader. */
function dovecotScript(args: string[], logFile: string): void {
  const fd = openSync(logFile, 'a');
  try {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts/dovecot.sh'), ...args], { stdio: ['ignore', fd, fd] });
    if (r.status !== 0) throw new Error(`dovecot.sh ${args.join(' ')} failed:\n${readFileSync(logFile, 'utf8').slice(-1500)}`);
  } finally {
    closeSync(fd);
  }
}

async function startPeers(): Promise<Peers> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-bench-forward-'));
  // Dovecot's unprivileged auth process must reach the passwd file below.
  chmodSync(dir, 0o755);
  const script = path.join(ROOT, 'scripts/dovecot.sh');
  const src = await freePort();
  const dst = await freePort();
  dovecotScript(['start', path.join(dir, 'src'), String(src)], path.join(dir, 'dovecot-script.log'));
  dovecotScript(['start', path.join(dir, 'dst'), String(dst)], path.join(dir, 'dovecot-script.log'));
  return {
    dir,
    src,
    dst,
    stop: () => {
      spawnSync('bash', [script, 'stop', path.join(dir, 'src')]);
      spawnSync('bash', [script, 'stop', path.join(dir, 'dst')]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function entry(): string {
  // The built command line, as users run it (bench/run.ts builds dist/ first).
  return path.join(ROOT, 'dist/cli/main.js');
}

/** One scenario: start imapkit forward, append `n` messages at random gaps, time each to the target. */
async function scenario(name: string, n: number, opts: { idle: boolean; pollSeconds?: number; gapMs: [number, number] }): Promise<Record<string, number | string>> {
  const peers = await startPeers();
  const user = 'test1';
  const cfg = path.join(peers.dir, 'forward.toml');
  writeFileSync(
    cfg,
    [
      `stateDir = "${path.join(peers.dir, 'state')}"`,
      '[[forward]]',
      'name = "bench"',
      `idle = ${opts.idle}`,
      ...(opts.pollSeconds !== undefined ? [`pollInterval = ${opts.pollSeconds}`] : []),
      '[forward.source]',
      `host = "127.0.0.1"\nport = ${peers.src}\ntls = false\nuser = "${user}"\npassword = "pass"`,
      '[forward.target]',
      `host = "127.0.0.1"\nport = ${peers.dst}\ntls = false\nuser = "${user}"\npassword = "pass"`,
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  const src = await Imap.connect(peers.src, user);
  const dst = await Imap.connect(peers.dst, user);
  try {
    child = spawn(process.execPath, [entry(), 'forward', '--config', cfg, '--log', path.join(peers.dir, 'forward.log')], { stdio: 'ignore', cwd: ROOT });
    const statusFile = path.join(peers.dir, 'state', 'forward-bench.status.json');
    for (let i = 0; ; i++) {
      if (existsSync(statusFile) && /"state": "(idle|polling)"/.test(readFileSync(statusFile, 'utf8'))) break;
      if (i > 300) throw new Error('imapkit forward did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    await dst.cmd('SELECT INBOX');
    const sentAt = new Map<string, number>();
    const seenAt = new Map<string, number>();
    let exists = 0;
    let observing = true;
    let lastSent = performance.now();
    const observer = (async () => {
      while (observing || seenAt.size < sentAt.size) {
        const out = await dst.cmd('NOOP');
        const m = /\* (\d+) EXISTS/g;
        let count = exists;
        let x: RegExpExecArray | null;
        while ((x = m.exec(out)) !== null) count = Number(x[1]);
        if (count > exists) {
          const now = performance.now();
          const f = await dst.cmd(`FETCH ${exists + 1}:${count} (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])`);
          for (const id of f.match(/<bench-[^>]+>/g) ?? []) if (!seenAt.has(id)) seenAt.set(id, now);
          exists = count;
        }
        if (!observing && performance.now() - lastSent > 5 * 60_000) break;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    process.stdout.write(`${name}: `);
    for (let i = 0; i < n; i++) {
      const id = `<bench-${name}-${i}-${process.pid}@imapkit.test>`;
      const msg = Buffer.from(`From: bench@imapkit.test\r\nTo: user@imapkit.test\r\nSubject: latency ${i}\r\nMessage-ID: ${id}\r\nDate: ${new Date().toUTCString()}\r\n\r\nmessage ${i}\r\n`);
      const t0 = performance.now();
      await src.cmd('APPEND INBOX', msg);
      // From the server's OK: the message exists on the source from then on.
      sentAt.set(id, t0 + (performance.now() - t0));
      lastSent = performance.now();
      if (i % 20 === 19) process.stdout.write('.');
      const [lo, hi] = opts.gapMs;
      await new Promise((r) => setTimeout(r, lo + Math.random() * (hi - lo)));
    }
    observing = false;
    await observer;
    process.stdout.write('\n');
    const lat = [...sentAt].map(([id, t]) => (seenAt.has(id) ? seenAt.get(id)! - t : NaN));
    const missing = lat.filter((x) => Number.isNaN(x)).length;
    const sorted = lat.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
    const r = {
      messages: n,
      forwarded: sorted.length,
      missing,
      medianMs: Math.round(percentile(sorted, 50)),
      p90Ms: Math.round(percentile(sorted, 90)),
      p99Ms: Math.round(percentile(sorted, 99)),
      maxMs: Math.round(sorted.at(-1) ?? NaN),
      minMs: Math.round(sorted[0] ?? NaN),
    };
    console.log(`  ${name}: median ${r.medianMs} ms, p90 ${r.p90Ms} ms, p99 ${r.p99Ms} ms, min ${r.minMs} ms, max ${r.maxMs} ms (${r.forwarded}/${n} forwarded, ${missing} missing)`);
    return r;
  } finally {
    child?.kill('SIGTERM');
    src.close();
    dst.close();
    await new Promise((r) => setTimeout(r, 500));
    peers.stop();
  }
}

/** Run the benchmark; the result is saved by bench/run.ts. */
export default async function run(args: string[]): Promise<unknown> {
  const n = Number(arg(args, '--messages') ?? 200);
  const poll = Number(arg(args, '--poll-interval') ?? 60);
  const idle = await scenario('idle', n, { idle: true, gapMs: [150, 650] });
  const out: Record<string, unknown> = {
    what: 'latency from APPEND on the source to visible on the target (ms), imapkit forward as a child process, two private Dovecots on loopback',
    idle,
    target: 'p99 < 1000 ms with IDLE',
    idleTargetMet: Number(idle.p99Ms) < 1000,
  };
  if (!args.includes('--skip-poll')) out.polling = { intervalSeconds: poll, ...(await scenario('polling', n, { idle: false, pollSeconds: poll, gapMs: [150, 650] })) };
  return out;
}
