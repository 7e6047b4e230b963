/**
 * `npm run bench -- sync`: imapkit sync side by side with mbsync and offlineimap (Debian's
 * offlineimap3), each run as a whole process against the same private Dovecot account contents:
 * INBOX with 10,000 messages and 20 folders of 500 (the test corpus). Cases: (a) first sync into
 * an empty Maildir, (b) a sync with no changes, (c) a sync after 100 new messages and 100 flag
 * changes on the server. All of it on loopback, then again through a relay that delays each
 * direction by 25 ms (a 50 ms round trip). imapkit's (b) and (c) are also timed inside a running
 * `--watch` daemon (SIGUSR1), where Node's start-up does not count.
 *
 * Options: --small (INBOX 1,000 + 5 × 100, to try it out), --only imapkit,mbsync,offlineimap,
 * --offlineimap-from-last (run imapkit and mbsync side by side, and take offlineimap's figures from
 * the last full run in bench/results/sync.json, labelled as such: its 50 ms first sync takes 30 min),
 * --no-delay, --no-watch.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateCorpus } from '../test/fixtures/corpus.js';
import { fillMaildir, imapClient, run, startDovecot, which, type Dovecot } from '../test/interop/sync-helpers.js';
import { ImapAppender } from '../src/sync/imap-append.js';
import { startDelayRelay, type DelayRelay } from './delay-relay.js';

type Tool = 'imapkit' | 'mbsync' | 'offlineimap';
type CaseName = 'a' | 'b' | 'c';

interface CaseResult {
  network: 'loopback' | 'rtt50';
  case: CaseName;
  ms: Partial<Record<Tool, number>>;
  /** imapkit time / peer time (<= 1 means imapkit is at least as fast). */
  ratio: Partial<Record<Exclude<Tool, 'imapkit'>, number>>;
}

interface WatchResult {
  network: 'loopback' | 'rtt50';
  /** Engine time of a sync with no changes, in the daemon. */
  noChangeMs: number;
  /** Engine time after 100 new messages and 100 flag changes, in the daemon. */
  afterChangesMs: number;
  /** From SIGUSR1 to the end of that sync, as a client would see it. */
  noChangeWallMs: number;
  afterChangesWallMs: number;
}

const CASE_TEXT: Record<CaseName, string> = { a: 'first sync to an empty Maildir', b: 'sync with no changes', c: 'after 100 new + 100 flag changes' };

function countMaildir(root: string): number {
  let n = 0;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name === 'cur' || e.name === 'new') n += readdirSync(p).length;
      else if (e.name !== 'tmp') walk(p);
    }
  };
  walk(root);
  return n;
}

async function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const t = process.hrtime.bigint();
  const r = await run(cmd, args, { env, timeoutMs: 3 * 3600_000 });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).slice(-2000)}`);
  return ms;
}

/** 100 new messages (one MULTIAPPEND) and +\Flagged on 100 existing ones, straight to Dovecot. */
async function changeServer(dc: Dovecot, user: string, seed: number): Promise<void> {
  const ap = new ImapAppender({ host: '127.0.0.1', port: dc.port, tls: false, user, password: async () => 'pass', label: user, timeoutMs: 30_000 });
  const fresh = generateCorpus(100, seed).map((m) => ({ data: m.raw, flags: [] as string[] }));
  await ap.append('INBOX', fresh, 100);
  await ap.close();
  const c = await imapClient(dc.port, user);
  await c.mailboxOpen('INBOX');
  await c.messageFlagsAdd('101:200', ['\\Flagged']);
  await c.logout();
}

/** Run the sync benchmark; returns the figures bench/run.ts keeps in bench/results/sync.json. */
export default async function bench(args: string[]): Promise<unknown> {
  const small = args.includes('--small');
  const onlyArg = args.find((a) => a.startsWith('--only'));
  const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1]! : args[args.indexOf(onlyArg) + 1]!).split(',') : ['imapkit', 'mbsync', 'offlineimap'];
  const tools = (['imapkit', 'mbsync', 'offlineimap'] as Tool[]).filter((t) => only.includes(t) && (t === 'imapkit' || which(t)));
  for (const t of only) if (!tools.includes(t as Tool)) console.log(`(${t} is not installed: left out)`);
  // offlineimap's figures carried over from the last full run, when asked.
  let carried: { date: string; cases: CaseResult[] } | null = null;
  if (args.includes('--offlineimap-from-last')) {
    const last = JSON.parse(readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), 'results', 'sync.json'), 'utf8')) as { date: string; result: { cases: CaseResult[]; offlineimapFrom?: string } };
    carried = { date: last.result.offlineimapFrom ?? last.date, cases: last.result.cases };
    const i = tools.indexOf('offlineimap');
    if (i >= 0) tools.splice(i, 1);
  }
  const inboxCount = small ? 1000 : 10_000;
  const folders = small ? 5 : 20;
  const perFolder = small ? 100 : 500;
  const networks: Array<'loopback' | 'rtt50'> = args.includes('--no-delay') ? ['loopback'] : ['loopback', 'rtt50'];

  const work = path.join(os.tmpdir(), `imapkit-bench-sync-${process.pid}`);
  mkdirSync(work, { recursive: true });
  const dc = await startDovecot('imapkit-bench-sync-dovecot-');
  // The real command line, as a user runs it: `node dist/cli/main.js sync` (built here first).
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  const built = await run('npm', ['run', 'build', '--silent'], { cwd: root, timeoutMs: 300_000 });
  if (built.code !== 0) throw new Error(`npm run build failed: ${built.stderr || built.stdout}`);
  const cli = { command: process.execPath, args: [path.join(root, 'dist/cli/main.js')] };
  const relays: DelayRelay[] = [];
  try {
    // The account's contents, once, then hard-linked into every user's Maildir (Dovecot never rewrites message files).
    // Only messages every tool takes as they are: a header that ends, no NUL bytes.
    const usable = (m: { raw: Buffer }) => m.raw.includes('\r\n\r\n') && !m.raw.includes(0);
    const t0 = Date.now();
    const template = dc.maildir('test1');
    const inbox = generateCorpus(inboxCount * 2, 1).filter(usable).slice(0, inboxCount);
    fillMaildir(template, 'INBOX', inbox.map((m, i) => ({ raw: m.raw, flags: i % 3 === 0 ? 'S' : i % 7 === 0 ? 'FS' : '' })));
    let bytes = inbox.reduce((s, m) => s + m.raw.length, 0);
    for (let f = 0; f < folders; f++) {
      const msgs = generateCorpus(perFolder * 2, 100 + f).filter(usable).slice(0, perFolder);
      bytes += msgs.reduce((s, m) => s + m.raw.length, 0);
      fillMaildir(template, `Folder${String(f + 1).padStart(2, '0')}`, msgs.map((m, i) => ({ raw: m.raw, flags: i % 2 ? 'S' : '' })));
    }
    const owner = statSync(path.dirname(template));
    for (let u = 2; u <= 6; u++) {
      const target = dc.maildir(`test${u}`);
      rmSync(target, { recursive: true, force: true });
      await run('cp', ['-al', template, target]);
      if (process.getuid?.() === 0) await run('chown', ['-R', `${owner.uid}:${owner.gid}`, target]);
    }
    const total = inboxCount + folders * perFolder;
    console.log(`data: INBOX ${inboxCount} + ${folders} folders × ${perFolder} = ${total} messages, ${(bytes / 1e6).toFixed(1)} MB (prepared in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);

    const nodeStart = await timed(process.execPath, ['-e', '0']);
    const cliStart = await timed(cli.command, [...cli.args, 'sync', '--help']);
    console.log(`node start-up: ${nodeStart.toFixed(0)} ms; imapkit sync --help: ${cliStart.toFixed(0)} ms`);

    const results: CaseResult[] = [];
    const watch: WatchResult[] = [];
    const userFor = (network: string, tool: Tool) => `test${(network === 'loopback' ? 1 : 4) + ['imapkit', 'mbsync', 'offlineimap'].indexOf(tool)}`;

    for (const network of networks) {
      let port = dc.port;
      if (network === 'rtt50') {
        const relay = await startDelayRelay({ host: '127.0.0.1', port: dc.port }, 25);
        relays.push(relay);
        port = relay.port;
      }
      const rows: Record<CaseName, CaseResult> = {
        a: { network, case: 'a', ms: {}, ratio: {} },
        b: { network, case: 'b', ms: {}, ratio: {} },
        c: { network, case: 'c', ms: {}, ratio: {} },
      };
      for (const tool of tools) {
        const user = userFor(network, tool);
        const dir = path.join(work, `${network}-${tool}`);
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        const local = path.join(dir, 'Mail');
        let cmd: string;
        let argv: string[];
        if (tool === 'imapkit') {
          const cfg = path.join(dir, 'sync.toml');
          writeFileSync(cfg, `stateDir = "${dir}/state"\n[accounts.bench]\nremote = { type = "imap", host = "127.0.0.1", port = ${port}, tls = false, user = "${user}", password = "pass" }\nlocal = { type = "maildir", path = "${local}" }\nwatch = { interval = 3600, idle = [] }\n`);
          cmd = cli.command;
          argv = [...cli.args, 'sync', '--config', cfg, '--ui', 'quiet'];
        } else if (tool === 'mbsync') {
          mkdirSync(local, { recursive: true });
          const rc = path.join(dir, 'mbsyncrc');
          writeFileSync(rc, `IMAPAccount bench\nHost 127.0.0.1\nPort ${port}\nUser ${user}\nPass pass\nSSLType None\nAuthMechs LOGIN\n\nIMAPStore remote\nAccount bench\n\nMaildirStore local\nInbox ${local}\nSubFolders Maildir++\n\nChannel bench\nFar :remote:\nNear :local:\nPatterns *\nCreate Near\nSyncState *\n`);
          cmd = 'mbsync';
          argv = ['-q', '-c', rc, '-a'];
        } else {
          mkdirSync(local, { recursive: true });
          const rc = path.join(dir, 'offlineimaprc');
          writeFileSync(rc, `[general]\naccounts = bench\nmetadata = ${dir}/meta\nui = quiet\n\n[Account bench]\nlocalrepository = local\nremoterepository = remote\n\n[Repository local]\ntype = Maildir\nlocalfolders = ${local}\n\n[Repository remote]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = ${port}\nremoteuser = ${user}\nremotepass = pass\nssl = no\nstarttls = no\n`);
          cmd = 'offlineimap';
          argv = ['-c', rc, '-o', '-u', 'quiet'];
        }
        const a = await timed(cmd, argv);
        const got = countMaildir(local);
        if (got < total) console.log(`warning: ${tool} has ${got} of ${total} messages after the first sync`);
        const b = await timed(cmd, argv);
        await changeServer(dc, user, 9000 + results.length);
        const c = await timed(cmd, argv);
        rows.a.ms[tool] = a;
        rows.b.ms[tool] = b;
        rows.c.ms[tool] = c;
        console.log(`${network} ${tool}: (a) ${(a / 1000).toFixed(2)} s  (b) ${(b / 1000).toFixed(2)} s  (c) ${(c / 1000).toFixed(2)} s`);

        if (tool === 'imapkit' && !args.includes('--no-watch')) {
          watch.push(await daemonRun(cmd, argv.filter((x) => x !== '--ui' && x !== 'quiet'), dc, user, network, 9500 + results.length));
          const w = watch[watch.length - 1]!;
          console.log(`${network} imapkit --watch (SIGUSR1): (b) ${w.noChangeWallMs.toFixed(0)} ms  (c) ${w.afterChangesWallMs.toFixed(0)} ms`);
        }
      }
      for (const r of Object.values(rows)) {
        const old = carried?.cases.find((x) => x.network === r.network && x.case === r.case)?.ms.offlineimap;
        if (old !== undefined) r.ms.offlineimap = old;
        for (const peer of ['mbsync', 'offlineimap'] as const) {
          if (r.ms.imapkit !== undefined && r.ms[peer] !== undefined) r.ratio[peer] = r.ms.imapkit / r.ms[peer]!;
        }
        results.push(r);
      }
    }

    // The table.
    const fmt = (ms?: number) => (ms === undefined ? '—' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 1000).toFixed(2)} s`);
    const fr = (x?: number) => (x === undefined ? '—' : x.toFixed(2));
    const lines = [
      `| network | case | imapkit | mbsync | offlineimap | imapkit/mbsync | imapkit/offlineimap |`,
      `| --- | --- | ---: | ---: | ---: | ---: | ---: |`,
      ...results.map((r) => `| ${r.network === 'loopback' ? 'loopback' : '50 ms RTT'} | (${r.case}) ${CASE_TEXT[r.case]} | ${fmt(r.ms.imapkit)} | ${fmt(r.ms.mbsync)} | ${fmt(r.ms.offlineimap)} | ${fr(r.ratio.mbsync)} | ${fr(r.ratio.offlineimap)} |`),
    ];
    const wlines = watch.map((w) => `| ${w.network === 'loopback' ? 'loopback' : '50 ms RTT'} | ${fmt(w.noChangeWallMs)} (engine ${fmt(w.noChangeMs)}) | ${fmt(w.afterChangesWallMs)} (engine ${fmt(w.afterChangesMs)}) |`);
    console.log('\n' + lines.join('\n'));
    if (wlines.length) console.log(`\nimapkit inside a running --watch daemon (SIGUSR1 to done):\n| network | (b) no changes | (c) after changes |\n| --- | ---: | ---: |\n${wlines.join('\n')}`);
    const md = [
      '# sync benchmark',
      '',
      `Private Dovecot${small ? ' (small data set)' : ''}: INBOX ${inboxCount} + ${folders} folders × ${perFolder} messages from the test corpus (${(bytes / 1e6).toFixed(1)} MB). Each tool runs as a whole process; (c) follows 100 new messages and 100 flag changes on the server. "50 ms RTT" goes through bench/delay-relay.ts (25 ms each way).${carried ? ` imapkit and mbsync ran side by side in this run; **offlineimap's column is carried over from the full run of ${carried.date}** (\`--offlineimap-from-last\`).` : ''}`,
      '',
      ...lines,
      '',
      `Node start-up alone: ${nodeStart.toFixed(0)} ms (\`node -e 0\`); \`imapkit sync --help\`: ${cliStart.toFixed(0)} ms.`,
      '',
      ...(wlines.length ? ['imapkit inside a running `--watch` daemon, SIGUSR1 to the end of the sync:', '', '| network | (b) no changes | (c) after changes |', '| --- | ---: | ---: |', ...wlines, ''] : []),
      `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${process.version}, ${new Date().toISOString()}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}.`,
      '',
      '## Reading the figures',
      '',
      '- imapkit is `node dist/cli/main.js sync` (what `npx imapkit sync` runs; it loads only the sync command\'s modules); mbsync runs with `FSync yes` (its default), offlineimap with its defaults.',
      '- (a) is bound by writing every message to its own fsynced file, for all three tools. imapkit syncs four folders at a time and fetches batches of messages in one UID FETCH each, so the round trip costs it little; offlineimap waits a round trip per message.',
      `- (b) costs imapkit one LIST-STATUS and three \`stat\` calls per local folder (the Maildir's directory times recorded after the last sync): nothing is read. Node's start-up and module loading (\`imapkit sync --help\`: ${cliStart.toFixed(0)} ms) is most of the whole-process figure; see the daemon figures for the rest.`,
      '- (c) inside the daemon is a NOOP and UID FETCH CHANGEDSINCE on the big folder (no new SELECT on a connection that has it selected), one UID FETCH of the new messages, and the Maildir store\'s renames and appends (fsyncs 16 at a time, one uidlist write); a whole process also pays start-up and the first open of the 10,000-message folder.',
      '',
    ].join('\n');
    writeFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), 'results', 'sync.md'), md);
    return { data: { inbox: inboxCount, folders, perFolder, messages: total, bytes }, nodeStartMs: nodeStart, cliStartMs: cliStart, cases: results, watch, ...(carried ? { offlineimapFrom: carried.date } : {}) };
  } finally {
    for (const r of relays) await r.close();
    await dc.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** imapkit as a daemon: time a no-change sync and a sync after server changes, each started by SIGUSR1. */
async function daemonRun(cmd: string, argv: string[], dc: Dovecot, user: string, network: 'loopback' | 'rtt50', seed: number): Promise<WatchResult> {
  const child = spawn(cmd, [...argv, '--watch', '--ui', 'json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  const waiters: Array<(s: { durationMs: number }) => void> = [];
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.includes('"type":"account-done"')) waiters.shift()?.((JSON.parse(line) as { summary: { durationMs: number } }).summary);
    }
  });
  const next = () => new Promise<{ durationMs: number }>((r) => waiters.push(r));
  try {
    await next();
    // Once more so the state records the first run's own changes as seen.
    let t = process.hrtime.bigint();
    child.kill('SIGUSR1');
    await next();
    t = process.hrtime.bigint();
    child.kill('SIGUSR1');
    const b = await next();
    const bWall = Number(process.hrtime.bigint() - t) / 1e6;
    await changeServer(dc, user, seed);
    t = process.hrtime.bigint();
    child.kill('SIGUSR1');
    const c = await next();
    const cWall = Number(process.hrtime.bigint() - t) / 1e6;
    return { network, noChangeMs: b.durationMs, afterChangesMs: c.durationMs, noChangeWallMs: bWall, afterChangesWallMs: cWall };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
  }
}
