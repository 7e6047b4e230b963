/**
 * Idle-connection memory: N connections that LOGIN, SELECT INBOX and IDLE, against `imapkit serve`
 * (one process: its RSS and PSS) and a private Dovecot (one imap process per connection: the sum
 * of Pss over all its processes, from /proc/PID/smaps_rollup), at 1,000 and 10,000 connections.
 * `npm run bench -- load-idle` runs it alone; bench/server.ts runs it as part of the server
 * benchmark. Also home of BenchClient, the lean raw-socket client both benchmarks use: it frames
 * responses (lines and literals) without parsing them, so the client is never the bottleneck.
 */
import net from 'node:net';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { generateCorpus } from '../test/fixtures/corpus.js';
import { spawnImapkit, startDovecot, tempDir, writePasswdFile, USERS, type DovecotServer, type ImapkitProcess } from '../test/interop/helpers/server-peers.js';

const MB = 1024 * 1024;

/** A tagged response as BenchClient saw it. */
export interface Tagged {
  status: string;
  line: string;
  /** Untagged responses since the previous tagged one. */
  untagged: number;
  /** The last `* SEARCH` / `* SORT` line among them, if any. */
  search?: string;
}

/**
 * A raw IMAP connection that only frames: it skips literal bytes, counts untagged responses and
 * resolves waiters on tagged lines. Tags must be unique per connection.
 */
export class BenchClient {
  private partial: Buffer[] = [];
  private skip = 0;
  /** The current response continues after a literal (its next line is not a new response). */
  private cont = false;
  private untagged = 0;
  private lastSearch: string | undefined;
  private waiters = new Map<string, (t: Tagged) => void>();
  private continuation: ((text: string) => void) | undefined;
  private closedError: Error | undefined;
  private greeted: Promise<void>;
  /** Resolves `greeted` at the first line (the server's greeting). */
  private onGreeting: (() => void) | undefined;
  /** Bytes received. */
  bytes = 0;

  private constructor(readonly socket: net.Socket) {
    this.greeted = new Promise((resolve) => (this.onGreeting = resolve));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (err: Error): void => {
      this.closedError ??= err;
      for (const [tag, w] of this.waiters) w({ status: 'CLOSED', line: `${tag} connection closed: ${err.message}`, untagged: 0 });
      this.waiters.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('closed')));
  }

  /** Connect and wait for the greeting. */
  static async connect(port: number): Promise<BenchClient> {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new BenchClient(socket);
    await c.greeted;
    return c;
  }

  private onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      const lf = chunk.indexOf(10, pos);
      if (lf < 0) {
        this.partial.push(chunk.subarray(pos));
        break;
      }
      let line = chunk.subarray(pos, lf + 1);
      if (this.partial.length) {
        line = Buffer.concat([...this.partial, line]);
        this.partial = [];
      }
      pos = lf + 1;
      this.onLine(line);
    }
  }

  private onLine(line: Buffer): void {
    const tail = line.toString('latin1', Math.max(0, line.length - 24));
    const lit = /~?\{(\d+)\+?\}\r?\n$/.exec(tail);
    const continued = this.cont;
    this.cont = lit !== null;
    if (lit) this.skip = Number(lit[1]);
    if (continued) return;
    if (this.onGreeting) {
      const greet = this.onGreeting;
      this.onGreeting = undefined;
      greet();
      return;
    }
    const first = line[0];
    if (first === 0x2a) {
      this.untagged++;
      if (line.length < 200_000 && /^\* (SEARCH|SORT|ESEARCH)\b/.test(line.toString('latin1', 0, 10))) this.lastSearch = line.toString('latin1').trimEnd();
      return;
    }
    if (first === 0x2b) {
      const c = this.continuation;
      this.continuation = undefined;
      c?.(line.toString('latin1', 1).trim());
      return;
    }
    const text = line.toString('latin1').trimEnd();
    const sp = text.indexOf(' ');
    const tag = text.slice(0, sp);
    const status = text.slice(sp + 1, text.indexOf(' ', sp + 1) < 0 ? undefined : text.indexOf(' ', sp + 1)).toUpperCase();
    const w = this.waiters.get(tag);
    const t: Tagged = { status, line: text, untagged: this.untagged, search: this.lastSearch };
    this.untagged = 0;
    this.lastSearch = undefined;
    if (w) {
      this.waiters.delete(tag);
      w(t);
    }
  }

  /** Resolves at the tagged response for `tag` (register before sending, so no answer is missed). */
  expect(tag: string): Promise<Tagged> {
    if (this.closedError) return Promise.resolve({ status: 'CLOSED', line: this.closedError.message, untagged: 0 });
    return new Promise((resolve) => this.waiters.set(tag, resolve));
  }

  /** Resolves at the next `+` continuation, with its text. */
  expectContinuation(): Promise<string> {
    return new Promise((resolve) => (this.continuation = resolve));
  }

  /** Write, waiting for the socket to drain when its buffer is full. */
  async write(data: Buffer | string): Promise<void> {
    if (!this.socket.write(data)) await new Promise<void>((resolve) => this.socket.once('drain', resolve));
  }

  /** Send `TAG command` and wait for its tagged response. */
  async command(tag: string, command: string): Promise<Tagged> {
    const done = this.expect(tag);
    await this.write(`${tag} ${command}\r\n`);
    return done;
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * APPEND every message with LITERAL+, pipelined: all commands go out as fast as the server reads
 * them, the answers are collected as they come. Throws unless all are OK.
 */
export async function appendAll(c: BenchClient, mailbox: string, messages: Buffer[], tagPrefix: string, flags = ''): Promise<void> {
  const answers: Array<Promise<Tagged>> = [];
  for (let i = 0; i < messages.length; i++) {
    const tag = `${tagPrefix}${i}`;
    answers.push(c.expect(tag));
    await c.write(Buffer.concat([Buffer.from(`${tag} APPEND ${mailbox}${flags ? ` (${flags})` : ''} {${messages[i]!.length}+}\r\n`), messages[i]!, Buffer.from('\r\n')]));
  }
  const results = await Promise.all(answers);
  const bad = results.filter((r) => r.status !== 'OK');
  if (bad.length) throw new Error(`${bad.length} APPENDs failed, first: ${bad[0]!.line}`);
}

/** Memory of a set of processes, bytes. */
export interface ProcessMemory {
  processes: number;
  rss: number;
  pss: number;
}

/** Sum VmRSS (status) and Pss (smaps_rollup) over `pids`; processes that vanished are skipped. */
export function memoryOf(pids: number[]): ProcessMemory {
  let rss = 0;
  let pss = 0;
  let processes = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      rss += Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
      pss += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
      processes++;
    } catch {
      // exited meanwhile
    }
  }
  return { processes, rss, pss };
}

/** `root` and every process below it (from /proc/PID/stat parent links). */
export function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}

/** CPU seconds (user + system) used so far by `pids`, including reaped children they waited for. */
export function cpuSeconds(pids: number[]): number {
  const hz = 100; // USER_HZ on Linux
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'latin1').slice(0).split(') ')[1]!.split(' ');
      // fields after "(comm) ": state=0, utime=11, stime=12, cutime=13, cstime=14
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks / hz;
}

const salted = new Map<string, Buffer>();

/**
 * AUTHENTICATE SCRAM-SHA-256 with SASL-IR (RFC 5802, RFC 7677). The client's PBKDF2 result is
 * cached per salt, as real clients do, so a thousand logins cost the client almost nothing.
 */
export async function scramLogin(c: BenchClient, user: string, password: string, tag = 'l'): Promise<Tagged> {
  const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
  const cnonce = randomBytes(18).toString('base64');
  const bare = `n=${user},r=${cnonce}`;
  const done = c.expect(tag);
  const step = <T>(p: Promise<T>): Promise<T> =>
    Promise.race([p, done.then((t) => Promise.reject(new Error(`AUTHENTICATE ended early: ${t.line}`)))]);
  let cont = c.expectContinuation();
  await c.write(`${tag} AUTHENTICATE SCRAM-SHA-256 ${Buffer.from(`n,,${bare}`).toString('base64')}\r\n`);
  const serverFirst = Buffer.from(await step(cont), 'base64').toString('utf8');
  const attrs = new Map(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)] as [string, string]));
  const nonce = attrs.get('r') ?? '';
  if (!nonce.startsWith(cnonce)) throw new Error(`SCRAM: bad server nonce in ${serverFirst}`);
  const key = `${attrs.get('s')}:${attrs.get('i')}:${password}`;
  let saltedPassword = salted.get(key);
  if (!saltedPassword) {
    saltedPassword = pbkdf2Sync(password, Buffer.from(attrs.get('s') ?? '', 'base64'), Number(attrs.get('i')), 32, 'sha256');
    salted.set(key, saltedPassword);
  }
  const clientKey = hmac(saltedPassword, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${nonce}`;
  const signature = hmac(storedKey, `${bare},${serverFirst},${withoutProof}`);
  const proof = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ signature[i]!;
  cont = c.expectContinuation();
  await c.write(`${Buffer.from(`${withoutProof},p=${proof.toString('base64')}`).toString('base64')}\r\n`);
  await step(cont); // server-final (v=...): acknowledged with an empty response
  await c.write('\r\n');
  return done;
}

/** How idle connections authenticate: LOGIN, or SCRAM-SHA-256 where LOGIN is deliberately slow. */
export type AuthStyle = 'login' | 'scram';

/** A server under test: how to reach it and how to weigh it. */
export interface ServerUnderTest {
  name: string;
  port: number;
  /** The server's processes right now. */
  pids(): number[];
  auth: AuthStyle;
}

/** Open `count` connections that LOGIN (users round robin), SELECT INBOX and IDLE; `window` at a time in setup. */
export async function openIdle(port: number, count: number, auth: AuthStyle, window = 100): Promise<{ clients: BenchClient[]; failures: string[] }> {
  const clients: BenchClient[] = [];
  const failures: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        const c = await BenchClient.connect(port);
        const user = USERS[i % USERS.length]!;
        const login = auth === 'scram' ? await scramLogin(c, user, 'pass') : await c.command('l', `LOGIN ${user} pass`);
        if (login.status !== 'OK') throw new Error(login.line);
        const select = await c.command('s', 'SELECT INBOX');
        if (select.status !== 'OK') throw new Error(select.line);
        const idling = c.expectContinuation();
        await c.write('i IDLE\r\n');
        await idling;
        clients.push(c);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return { clients, failures };
}

/** One measurement point. */
export interface IdlePoint {
  connections: number;
  failed: number;
  processes: number;
  rssMB: number;
  pssMB: number;
  /** (PSS at this point - PSS with no connection) / connections, KB. */
  pssPerConnectionKB: number;
  /** Same for RSS, KB. */
  rssPerConnectionKB: number;
  setupSeconds: number;
  firstFailure?: string;
}

const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Measure a server with no connections, then with each count in `steps` (cumulative). */
export async function measureIdle(server: ServerUnderTest, steps: number[]): Promise<{ baseline: ProcessMemory; points: IdlePoint[] }> {
  await settle(1000);
  const baseline = memoryOf(server.pids());
  const all: BenchClient[] = [];
  const points: IdlePoint[] = [];
  let failed = 0;
  let firstFailure: string | undefined;
  try {
    for (const target of steps) {
      const t0 = performance.now();
      const { clients, failures } = await openIdle(server.port, target - all.length - failed, server.auth);
      const setupSeconds = (performance.now() - t0) / 1000;
      all.push(...clients);
      failed += failures.length;
      firstFailure ??= failures[0];
      await settle(3000);
      const m = memoryOf(server.pids());
      const n = all.length;
      const point: IdlePoint = {
        connections: n,
        failed,
        processes: m.processes,
        rssMB: round(m.rss / MB),
        pssMB: round(m.pss / MB),
        pssPerConnectionKB: n ? round((m.pss - baseline.pss) / n / 1024) : 0,
        rssPerConnectionKB: n ? round((m.rss - baseline.rss) / n / 1024) : 0,
        setupSeconds: round(setupSeconds),
        firstFailure,
      };
      points.push(point);
      console.log(
        `  ${server.name}: ${n} idle connections (${failed} failed): RSS ${point.rssMB} MB, PSS ${point.pssMB} MB over ${m.processes} processes; ` +
          `${point.pssPerConnectionKB} KB PSS per connection; set up in ${point.setupSeconds} s`,
      );
      if (firstFailure) console.log(`    first failure: ${firstFailure}`);
    }
  } finally {
    for (const c of all) c.close();
    await settle(2000);
  }
  return { baseline, points };
}

export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** imapkit serve as a child process (the built dist/, as `npx imapkit` runs), with the passwd-file users and no per-address connection cap. */
export async function spawnBenchImapkit(dir: string, store: string): Promise<ImapkitProcess> {
  const passwd = path.join(dir, 'passwd');
  if (!existsSync(passwd)) writePasswdFile(passwd);
  return spawnImapkit(['--store', store, '--users', `passwd:${passwd}`, '--max-connections-per-address', '0', '--failed-login-delay-ms', '0'], { timeoutMs: 60_000, built: true });
}

/** The pids of a private Dovecot: its master and everything below it. */
export function dovecotPids(d: DovecotServer): number[] {
  const master = Number(readFileSync(path.join(d.dir, 'run', 'master.pid'), 'utf8').trim());
  return processTree(master);
}

/** Put `perUser` corpus messages into every test user's INBOX. */
export async function seedUsers(port: number, perUser: number): Promise<void> {
  const corpus = generateCorpus(perUser).map((m) => m.raw);
  await Promise.all(
    USERS.map(async (user) => {
      const c = await BenchClient.connect(port);
      try {
        const r = await c.command('l', `LOGIN ${user} pass`);
        if (r.status !== 'OK') throw new Error(`seed login: ${r.line}`);
        await appendAll(c, 'INBOX', corpus, 'a');
      } finally {
        c.close();
      }
    }),
  );
}

/** Result of the idle-connection comparison. */
export interface IdleResult {
  steps: number[];
  messagesPerInbox: number;
  imapkit: { store: string; baselineRssMB: number; points: IdlePoint[] };
  dovecot: { baselinePssMB: number; points: IdlePoint[] };
  fdLimit: string;
}

/** Run the comparison on fresh servers: imapkit (sqlite store) first, then Dovecot. */
export async function idleComparison(steps = [1000, 10_000], messagesPerInbox = 100): Promise<IdleResult> {
  const tmp = tempDir('bench-idle');
  const limits = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const fdLimit = limits ? `fd limit ${limits[1]} (hard ${limits[2]})` : 'fd limit unknown';
  try {
    console.log(`idle connections: authenticate (imapkit SCRAM-SHA-256, Dovecot LOGIN), SELECT INBOX (${messagesPerInbox} messages), IDLE; ${fdLimit}`);
    const store = `sqlite:${path.join(tmp.dir, 'idle.sqlite')}`;
    const ik = await spawnBenchImapkit(tmp.dir, store);
    let imapkit;
    try {
      await seedUsers(ik.port, messagesPerInbox);
      const m = await measureIdle({ name: 'imapkit', port: ik.port, pids: () => [ik.child.pid!], auth: 'scram' }, steps);
      imapkit = { store: 'sqlite', baselineRssMB: round(m.baseline.rss / MB), points: m.points };
    } finally {
      await ik.stop();
    }
    const dv = await startDovecot(path.join(tmp.dir, 'dovecot'));
    let dovecot;
    try {
      await seedUsers(dv.port, messagesPerInbox);
      const m = await measureIdle({ name: 'dovecot', port: dv.port, pids: () => dovecotPids(dv), auth: 'login' }, steps);
      dovecot = { baselinePssMB: round(m.baseline.pss / MB), points: m.points };
    } finally {
      await dv.stop();
    }
    return { steps, messagesPerInbox, imapkit, dovecot, fdLimit };
  } finally {
    tmp.remove();
  }
}

/** `npm run bench -- load-idle [N ...]`: the idle comparison alone. */
export default async function main(args: string[]): Promise<IdleResult> {
  const steps = args.length ? args.map(Number) : [1000, 10_000];
  const r = await idleComparison(steps);
  printIdle(r);
  return r;
}

/** Print the idle figures and ratios. */
export function printIdle(r: IdleResult): void {
  console.log('\nidle connections            imapkit RSS   imapkit PSS   Dovecot PSS   ratio (imapkit RSS / Dovecot PSS)');
  for (let i = 0; i < r.steps.length; i++) {
    const a = r.imapkit.points[i];
    const b = r.dovecot.points[i];
    if (!a || !b) continue;
    console.log(
      `${String(a.connections).padStart(6)} / ${String(b.connections).padStart(6)}          ${`${a.rssMB} MB`.padStart(10)}    ${`${a.pssMB} MB`.padStart(10)}    ${`${b.pssMB} MB`.padStart(10)}    ${round(a.rssMB / b.pssMB, 3)}`,
    );
  }
}
