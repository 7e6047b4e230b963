/**
 * `npm run bench -- server [COUNT]`: imapkit serve against a private Dovecot, side by side in one
 * run, on the same corpus (generateCorpus(5000) unless COUNT says otherwise) and with the same
 * lean raw-socket client (bench/load-idle.ts BenchClient): APPEND of the corpus (pipelined, LITERAL+),
 * FETCH of metadata/ENVELOPE/BODYSTRUCTURE, FETCH BODY.PEEK[], SEARCH TEXT, STORE +FLAGS, and LOGIN
 * latency; imapkit runs as a child process with the sqlite store (the default) and again with the
 * memory store. Then the idle-connection memory comparison of bench/load-idle.ts. Prints figures
 * and ratios (imapkit / Dovecot: at most 1.0 is the target), writes bench/results/server.md and
 * returns everything for bench/results/server.json.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCorpus } from '../test/fixtures/corpus.js';
import { startDovecot, tempDir } from '../test/interop/helpers/server-peers.js';
import { appendAll, BenchClient, cpuSeconds, dovecotPids, idleComparison, printIdle, round, spawnBenchImapkit, type IdleResult, type Tagged } from './load-idle.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** A word the corpus generator uses often, but not in every message. */
const SEARCH_WORD = 'quarterly';
/** Timed repetitions of the read operations (the median is reported). */
const RUNS = 3;

/** One timed operation on one server. */
export interface OpResult {
  /** Median wall-clock seconds over the runs. */
  seconds: number;
  /** Every run, seconds. */
  runs: number[];
  /** Server CPU seconds (user + system) in the median run. */
  serverCpu: number;
  /** What the server answered, for a sanity check between servers (e.g. untagged count). */
  check: string;
}

/** All operations on one server. */
export type ServerResult = Record<string, OpResult>;

const OPS = ['login', 'append', 'fetchMeta', 'fetchBody', 'searchText', 'storeSeen'] as const;
const LABELS: Record<(typeof OPS)[number], string> = {
  login: 'LOGIN (sequential, one connection each; median of 20)',
  append: 'APPEND corpus (pipelined, LITERAL+)',
  fetchMeta: 'FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)',
  fetchBody: 'FETCH 1:* BODY.PEEK[]',
  searchText: `SEARCH TEXT ${SEARCH_WORD}`,
  storeSeen: 'STORE 1:* +FLAGS (\\Seen)',
};

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function ok(t: Tagged, what: string): Tagged {
  if (t.status !== 'OK') throw new Error(`${what}: ${t.line}`);
  return t;
}

/** Run the operations against one server (INBOX of test1 must be empty). */
async function runOps(name: string, port: number, pids: () => number[], corpus: Buffer[]): Promise<ServerResult> {
  const out: ServerResult = {};
  const timed = async (fn: () => Promise<string>): Promise<{ seconds: number; cpu: number; check: string }> => {
    const cpu0 = cpuSeconds(pids());
    const t0 = performance.now();
    const check = await fn();
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, cpu: cpuSeconds(pids()) - cpu0, check };
  };
  const record = (op: string, runs: Array<{ seconds: number; cpu: number; check: string }>): void => {
    const m = median(runs.map((r) => r.seconds));
    const mid = runs.find((r) => r.seconds === m)!;
    out[op] = { seconds: round(m, 4), runs: runs.map((r) => round(r.seconds, 4)), serverCpu: round(mid.cpu, 3), check: mid.check };
    console.log(`  ${name.padEnd(18)} ${LABELS[op as keyof typeof LABELS].padEnd(75)} ${m.toFixed(3).padStart(8)} s  (cpu ${mid.cpu.toFixed(2)} s; ${mid.check})`);
  };

  // LOGIN latency: a fresh connection per login, as mail clients do
  const logins = [];
  for (let i = 0; i < 20; i++) {
    const c = await BenchClient.connect(port);
    logins.push(await timed(async () => ok(await c.command('l', 'LOGIN test1 pass'), 'LOGIN').status));
    c.close();
  }
  record('login', logins);

  const c = await BenchClient.connect(port);
  try {
    ok(await c.command('l', 'LOGIN test1 pass'), 'LOGIN');
    record('append', [
      await timed(async () => {
        await appendAll(c, 'INBOX', corpus, 'a');
        return `${corpus.length} OK`;
      }),
    ]);
    const sel = ok(await c.command('s', 'SELECT INBOX'), 'SELECT');
    if (!sel.untagged) throw new Error('SELECT without untagged data');

    let tag = 0;
    const cmd = async (text: string): Promise<Tagged> => ok(await c.command(`t${++tag}`, text), text);
    const repeat = async (fn: () => Promise<string>): Promise<Array<{ seconds: number; cpu: number; check: string }>> => {
      const runs = [];
      for (let i = 0; i < RUNS; i++) runs.push(await timed(fn));
      return runs;
    };
    record('fetchMeta', await repeat(async () => `${(await cmd('FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)')).untagged} FETCH`));
    record(
      'fetchBody',
      await repeat(async () => {
        const before = c.bytes;
        const t = await cmd('FETCH 1:* BODY.PEEK[]');
        return `${t.untagged} FETCH, ${round((c.bytes - before) / 1024 / 1024, 1)} MB`;
      }),
    );
    record(
      'searchText',
      await repeat(async () => {
        const t = await cmd(`SEARCH TEXT ${SEARCH_WORD}`);
        return `${(t.search ?? '').split(' ').length - 2} matches`;
      }),
    );
    const stores = [];
    for (let i = 0; i < RUNS; i++) {
      stores.push(await timed(async () => `${(await cmd('STORE 1:* +FLAGS (\\Seen)')).untagged} FETCH`));
      await cmd('STORE 1:* -FLAGS.SILENT (\\Seen)');
    }
    record('storeSeen', stores);
  } finally {
    c.close();
  }
  return out;
}

/** Everything the benchmark returns (kept in bench/results/server.json). */
export interface ServerBenchResult {
  corpus: { messages: number; bytes: number; seed: number };
  searchWord: string;
  runs: number;
  servers: { imapkitSqlite: ServerResult; imapkitMemory: ServerResult; dovecot: ServerResult };
  ratios: { sqlite: Record<string, number>; memory: Record<string, number> };
  idle: IdleResult | { skipped: string };
  load: { loadavgBefore: number[]; loadavgAfter: number[] };
}

export default async function main(args: string[]): Promise<ServerBenchResult> {
  const count = args[0] && /^\d+$/.test(args[0]) ? Number(args[0]) : 5000;
  const idleSteps = args.includes('--no-idle') ? [] : [1000, 10_000];
  const loadavgBefore = os.loadavg();
  const corpus = generateCorpus(count).map((m) => m.raw);
  const bytes = corpus.reduce((n, m) => n + m.length, 0);
  console.log(`server benchmark: ${count} corpus messages, ${round(bytes / 1024 / 1024, 1)} MB; ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  const tmp = tempDir('bench-server');
  let imapkitSqlite: ServerResult;
  let imapkitMemory: ServerResult;
  let dovecot: ServerResult;
  try {
    const dv = await startDovecot(path.join(tmp.dir, 'dovecot'));
    try {
      dovecot = await runOps('dovecot', dv.port, () => dovecotPids(dv), corpus);
    } finally {
      await dv.stop();
    }
    const sq = await spawnBenchImapkit(tmp.dir, `sqlite:${path.join(tmp.dir, 'bench.sqlite')}`);
    try {
      imapkitSqlite = await runOps('imapkit (sqlite)', sq.port, () => [sq.child.pid!], corpus);
    } finally {
      await sq.stop();
    }
    const mem = await spawnBenchImapkit(tmp.dir, 'memory');
    try {
      imapkitMemory = await runOps('imapkit (memory)', mem.port, () => [mem.child.pid!], corpus);
    } finally {
      await mem.stop();
    }
  } finally {
    tmp.remove();
  }

  const ratio = (a: ServerResult): Record<string, number> => Object.fromEntries(OPS.map((op) => [op, round(a[op]!.seconds / dovecot[op]!.seconds, 3)]));
  const ratios = { sqlite: ratio(imapkitSqlite), memory: ratio(imapkitMemory) };
  console.log(`\n${'operation'.padEnd(75)} ${'imapkit sqlite'.padStart(15)} ${'imapkit memory'.padStart(15)} ${'Dovecot'.padStart(10)}   ratio sqlite / memory`);
  for (const op of OPS) {
    console.log(
      `${LABELS[op].padEnd(75)} ${`${imapkitSqlite[op]!.seconds} s`.padStart(15)} ${`${imapkitMemory[op]!.seconds} s`.padStart(15)} ${`${dovecot[op]!.seconds} s`.padStart(10)}   ${ratios.sqlite[op]} / ${ratios.memory[op]}`,
    );
  }

  let idle: IdleResult | { skipped: string } = { skipped: 'run with --no-idle' };
  if (idleSteps.length) {
    console.log('');
    idle = await idleComparison(idleSteps);
    printIdle(idle);
  }
  const result: ServerBenchResult = {
    corpus: { messages: count, bytes, seed: 1 },
    searchWord: SEARCH_WORD,
    runs: RUNS,
    servers: { imapkitSqlite, imapkitMemory, dovecot },
    ratios,
    idle,
    load: { loadavgBefore, loadavgAfter: os.loadavg() },
  };
  writeMarkdown(result);
  return result;
}

/** Text after this marker in bench/results/server.md is kept across runs (hand-written findings). */
const NOTES_MARKER = '<!-- notes: kept across runs -->';

function writeMarkdown(r: ServerBenchResult): void {
  const file = path.join(here, 'results', 'server.md');
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const notes = previous.includes(NOTES_MARKER) ? previous.slice(previous.indexOf(NOTES_MARKER)) : `${NOTES_MARKER}\n`;
  const { imapkitSqlite: s, imapkitMemory: m, dovecot: d } = r.servers;
  const lines: string[] = [
    '# Server benchmark: imapkit serve vs Dovecot',
    '',
    `Run ${new Date().toISOString()} with \`npm run bench -- server\` on ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}, ` +
      `load average ${r.load.loadavgBefore.map((x) => x.toFixed(2)).join(' ')} before and ${r.load.loadavgAfter.map((x) => x.toFixed(2)).join(' ')} after (the box is shared).`,
    `Corpus: generateCorpus(${r.corpus.messages}) from test/fixtures/corpus.ts, ${round(r.corpus.bytes / 1024 / 1024, 1)} MB. ` +
      'Both servers on 127.0.0.1, driven by the same lean raw-socket client (bench/load-idle.ts BenchClient, which frames but does not parse). ' +
      'imapkit runs as a child process (`imapkit serve`, the built dist/ that `npx imapkit` runs) with the sqlite store (the default, `synchronous = FULL`) and again with the memory store; ' +
      'Dovecot 2.3 from scripts/dovecot.sh (Maildir, `mail_fsync = always`). ' +
      `Read operations and STORE: median of ${r.runs} runs in one session; APPEND: one run into an empty INBOX. Ratio = imapkit / Dovecot; the target is at most 1.0.`,
    '',
    '| operation | imapkit sqlite | imapkit memory | Dovecot | ratio sqlite | ratio memory | server CPU s (sqlite / memory / Dovecot) | check (sqlite / Dovecot) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  ];
  for (const op of OPS) {
    const f = (x: OpResult): string => (op === 'login' ? `${round(x.seconds * 1000, 1)} ms` : `${x.seconds} s`);
    lines.push(
      `| ${LABELS[op].replace(/\|/g, '\\|')} | ${f(s[op]!)} | ${f(m[op]!)} | ${f(d[op]!)} | ${r.ratios.sqlite[op]} | ${r.ratios.memory[op]} | ${s[op]!.serverCpu} / ${m[op]!.serverCpu} / ${d[op]!.serverCpu} | ${s[op]!.check} / ${d[op]!.check} |`,
    );
  }
  lines.push('');
  if ('steps' in r.idle) {
    const idle = r.idle;
    lines.push(
      '## Idle connections (authenticate, SELECT INBOX, IDLE)',
      '',
      `Each INBOX holds ${idle.messagesPerInbox} messages; connections spread over users test1..test9; memory read 3 s after the last connection is idle. ` +
        'imapkit: one process, VmRSS and Pss. Dovecot: the sum of Pss (/proc/PID/smaps_rollup) over the master and every process below it (one imap process per connection), with the summed RSS for reference. ' +
        `imapkit authenticates these connections with SCRAM-SHA-256 (see the notes on LOGIN); Dovecot with LOGIN. Client ${idle.fdLimit.toLowerCase()}.`,
      '',
      '| connections | imapkit RSS | imapkit PSS | imapkit RSS per connection | Dovecot PSS | Dovecot PSS per connection | Dovecot processes (summed RSS) | ratio imapkit RSS / Dovecot PSS |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (let i = 0; i < idle.steps.length; i++) {
      const a = idle.imapkit.points[i];
      const b = idle.dovecot.points[i];
      if (!a || !b) continue;
      const failed = a.failed || b.failed ? ` (failed: imapkit ${a.failed}, Dovecot ${b.failed})` : '';
      lines.push(
        `| ${a.connections} / ${b.connections}${failed} | ${a.rssMB} MB | ${a.pssMB} MB | ${a.rssPerConnectionKB} KB | ${b.pssMB} MB | ${b.pssPerConnectionKB} KB | ${b.processes} (${b.rssMB} MB) | ${round(a.rssMB / b.pssMB, 3)} |`,
      );
    }
    lines.push('', `Baselines with no connection: imapkit RSS ${idle.imapkit.baselineRssMB} MB, Dovecot PSS ${idle.dovecot.baselinePssMB} MB.`, '');
  }
  writeFileSync(file, `${lines.join('\n')}\n${notes}`);
}
