/**
 * `imapkit sync`: two-way sync of the configured accounts (all, or those named), or of one pair
 * given as URLs without a config file:
 *   imapkit sync imaps://alice@mail.example.org maildir:~/Mail
 *   imapkit sync imap://alice@127.0.0.1:1143?tls=false imaps://alice@other.example.net
 * The exit status says whether everything synced (0), something failed (1), or the configuration
 * or command line is wrong (78).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/load.js';
import {
  createUi,
  defaultConfigFiles,
  defaultStateDir,
  folderSelector,
  installWatchSignals,
  loadSyncConfig,
  nameTranslator,
  openAccount,
  selectAccounts,
  syncAccount,
  Watcher,
  type AccountSpec,
  type AccountSummary,
  type RepoSpec,
  type UiMode,
} from '../sync/index.js';
import { runPasswordCommand } from '../sync/credentials.js';

/** Flags of `imapkit sync`. */
export interface SyncFlags {
  config?: string;
  dryRun?: boolean;
  quick?: boolean;
  watch?: boolean;
  ui?: UiMode;
  passwordCommand?: string;
  state?: string;
  interval?: number;
}

const EXIT_FAILED = 1;
const EXIT_CONFIG = 78;

function uiArg(v: string): UiMode {
  if (v === 'tty' || v === 'plain' || v === 'quiet' || v === 'json') return v;
  throw new InvalidArgumentError('expected tty, plain, quiet or json');
}

function secondsArg(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 5) throw new InvalidArgumentError('expected seconds (at least 5)');
  return n;
}

/** True for the URL form's arguments. */
export function isRepoUrl(arg: string): boolean {
  return /^(imaps?:\/\/|maildir:)/i.test(arg);
}

/** Parse `imap://USER@HOST[:PORT][?tls=false|starttls|implicit&fingerprint=..&ca=..&maxConnections=..]`, `imaps://...` or `maildir:PATH`. */
export function parseRepoUrl(arg: string): RepoSpec {
  if (/^maildir:/i.test(arg)) {
    const p = arg.slice('maildir:'.length).replace(/^\/\/(?=\/)/, '');
    if (p === '') throw new ConfigError(`${arg}: maildir needs a path (maildir:~/Mail)`);
    const home = process.env.HOME ?? '';
    return { type: 'maildir', path: path.resolve(p === '~' ? home : p.startsWith('~/') ? path.join(home, p.slice(2)) : p) };
  }
  let u: URL;
  try {
    u = new URL(arg);
  } catch {
    throw new ConfigError(`${arg}: not a URL (expected imap://USER@HOST:PORT or imaps://USER@HOST)`);
  }
  const secure = u.protocol.toLowerCase() === 'imaps:';
  const user = decodeURIComponent(u.username);
  if (user === '') throw new ConfigError(`${arg}: the URL needs a user: imap${secure ? 's' : ''}://USER@${u.hostname}`);
  if (u.password !== '') throw new ConfigError(`${arg}: do not put the password in the URL (it shows in the process list); use a prompt, --password-command or IMAPKIT_PASSWORD`);
  const q = u.searchParams;
  const tlsParam = q.get('tls');
  let tls: 'implicit' | 'starttls' | false = secure ? 'implicit' : 'starttls';
  if (tlsParam !== null) {
    if (tlsParam === 'false' || tlsParam === 'none' || tlsParam === 'off') tls = false;
    else if (tlsParam === 'starttls' || tlsParam === 'implicit') tls = tlsParam;
    else throw new ConfigError(`${arg}: tls= takes false, starttls or implicit`);
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const spec: RepoSpec = {
    type: 'imap',
    host,
    port: u.port ? Number(u.port) : tls === 'implicit' ? 993 : 143,
    tls,
    user,
    password: null,
    maxConnections: q.get('maxConnections') ? Math.max(1, Number(q.get('maxConnections'))) : 4,
    gmail: /(^|\.)(gmail|googlemail)\.com$/i.test(host),
  };
  const fp = q.get('fingerprint');
  if (fp) spec.fingerprint = fp;
  const ca = q.get('ca');
  if (ca) spec.caFile = path.resolve(ca);
  return spec;
}

/** Read a password from the terminal without echo. */
async function promptPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new ConfigError(`no password: standard input is not a terminal; use --password-command or IMAPKIT_PASSWORD`);
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          stdin.off('data', onData);
          stdin.setRawMode(false);
          stdin.pause();
          process.stderr.write('\n');
          resolve(out);
          return;
        }
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          reject(new ConfigError('cancelled'));
          return;
        }
        if (ch === '\u007f') out = out.slice(0, -1);
        else out += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** The account of the URL form: remote and local repositories, state file named after both. */
export function urlAccount(remoteArg: string, localArg: string, flags: SyncFlags): AccountSpec {
  const remote = parseRepoUrl(remoteArg);
  const local = parseRepoUrl(localArg);
  if (remote.type !== 'imap') throw new ConfigError(`${remoteArg}: the first argument is the IMAP account (imap:// or imaps://)`);
  const name = `${remote.user}@${remote.host}`;
  const key = createHash('sha256').update(`${remoteArg}\u0000${localArg}`).digest('hex').slice(0, 12);
  // One secret per side: IMAPKIT_PASSWORD for the first, IMAPKIT_PASSWORD_2 (else the same) for a second IMAP side.
  const sources: Array<RepoSpec> = [remote, local];
  sources.forEach((r, i) => {
    if (r.type !== 'imap') return;
    if (flags.passwordCommand) r.password = { kind: 'command', command: flags.passwordCommand };
    else {
      const envName = i === 0 ? 'IMAPKIT_PASSWORD' : process.env.IMAPKIT_PASSWORD_2 !== undefined ? 'IMAPKIT_PASSWORD_2' : 'IMAPKIT_PASSWORD';
      if (process.env[envName] !== undefined) r.password = { kind: 'env', name: envName };
    }
  });
  const gmail = remote.gmail;
  return {
    name,
    remote,
    local,
    selector: folderSelector({ gmail }),
    names: nameTranslator({}),
    deletions: { remote: gmail ? 'trash' : 'expunge', local: 'expunge' },
    trash: {},
    direction: 'both',
    statePath: flags.state ? path.resolve(flags.state) : path.join(defaultStateDir(), `${name.replace(/[^A-Za-z0-9._@+-]/g, '_')}-${key}.sqlite`),
    folderConcurrency: Math.min(4, remote.maxConnections, local.type === 'imap' ? local.maxConnections : 4),
    watch: { interval: flags.interval ?? 300, idle: ['INBOX'] },
    origin: 'command line',
  };
}

async function pool<T>(items: T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

/** Run `imapkit sync`; returns the exit status. */
export async function runSync(args: string[], flags: SyncFlags): Promise<number> {
  // A reader that went away (`imapkit sync --ui json | head`) is not an error of the sync.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  const ui = createUi(flags.ui ?? 'tty');
  let accounts: AccountSpec[];
  let maxAccounts = 2;
  try {
    if (args.some(isRepoUrl)) {
      if (args.length !== 2 || !args.every(isRepoUrl)) throw new ConfigError('the URL form takes exactly two arguments: imap(s)://USER@HOST[:PORT] and maildir:PATH (or a second imap(s):// URL)');
      if (flags.config) throw new ConfigError('give either --config with account names, or two URLs, not both');
      accounts = [urlAccount(args[0]!, args[1]!, flags)];
    } else {
      const file = flags.config ?? defaultConfigFiles().find((f) => existsSync(f));
      if (!file) throw new ConfigError(`no configuration: give --config FILE (looked for ${defaultConfigFiles().join(', ')}), or two URLs: imapkit sync imaps://USER@HOST maildir:PATH`);
      const cfg = await loadSyncConfig(file);
      accounts = selectAccounts(cfg, file, args);
      maxAccounts = cfg.maxAccounts ?? 2;
      if (flags.state && accounts.length === 1) accounts[0]!.statePath = path.resolve(flags.state);
      if (flags.interval) for (const a of accounts) a.watch.interval = flags.interval;
    }
  } catch (err) {
    ui.message(`imapkit sync: ${(err as Error).message}`, 'error');
    return err instanceof ConfigError ? EXIT_CONFIG : EXIT_FAILED;
  }
  const prompt = (a: AccountSpec) => async () => {
    const r = a.remote.type === 'imap' ? a.remote : null;
    if (flags.passwordCommand) return runPasswordCommand(flags.passwordCommand);
    return promptPassword(`password for ${r ? `${r.user}@${r.host}` : a.name}: `);
  };

  if (flags.watch) return runWatch(accounts, flags, maxAccounts, ui, prompt);

  // One shot: SIGINT/SIGTERM stop starting new work; what is under way is finished and recorded.
  const ac = new AbortController();
  const onSig = (sig: string) => () => {
    if (ac.signal.aborted) process.exit(EXIT_FAILED);
    ui.message(`imapkit sync: ${sig}: finishing what is under way (again to quit at once)`, 'error');
    ac.abort();
  };
  const sigint = onSig('SIGINT');
  const sigterm = onSig('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  const summaries: AccountSummary[] = [];
  try {
    await pool(accounts, maxAccounts, async (a) => {
      summaries.push(await syncAccount(a, { dryRun: flags.dryRun === true, quick: flags.quick === true, onEvent: (e) => ui.onEvent(e), signal: ac.signal, password: prompt(a) }));
    });
  } finally {
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }
  if (flags.dryRun) printPlans(summaries, ui);
  ui.finish(summaries);
  if (ac.signal.aborted) return EXIT_FAILED;
  if (summaries.some((s) => s.errors.some((e) => e.kind === 'config'))) return EXIT_CONFIG;
  return summaries.every((s) => s.ok) ? 0 : EXIT_FAILED;
}

function printPlans(summaries: AccountSummary[], ui: ReturnType<typeof createUi>): void {
  for (const s of summaries) {
    for (const f of s.folders) {
      if (!f.plan || f.plan.actions.length === 0) continue;
      const lines = f.plan.actions.map((a) => {
        switch (a.kind) {
          case 'copy':
            return `  copy ${a.from === 'a' ? 'remote' : 'local'} UID ${a.uid} → ${a.from === 'a' ? 'local' : 'remote'}${a.flags.length ? ` (${a.flags.join(' ')})` : ''}`;
          case 'link':
            return `  ${a.reason} remote UID ${a.record.aUid ?? '-'} / local UID ${a.record.bUid ?? '-'}${a.a ? ` remote ${fmtDelta(a.a)}` : ''}${a.b ? ` local ${fmtDelta(a.b)}` : ''}`;
          case 'drop':
            return a.remove ? `  ${a.remove.mode === 'trash' ? 'move to trash' : 'expunge'} ${a.remove.side === 'a' ? 'remote' : 'local'} UID ${a.remove.uid}` : `  forget record ${a.id ?? ''} (${a.reason})`;
          default:
            return `  resolve intent ${a.id}`;
        }
      });
      ui.message(`${s.account}: ${f.folder}${f.created ? ` (to be created on the ${f.created === 'a' ? 'remote' : 'local'} side)` : ''}:\n${lines.join('\n')}`);
    }
  }
}

function fmtDelta(d: { add: string[]; remove: string[] }): string {
  return [...d.add.map((f) => `+${f}`), ...d.remove.map((f) => `-${f}`)].join(' ');
}

async function runWatch(accounts: AccountSpec[], flags: SyncFlags, maxAccounts: number, ui: ReturnType<typeof createUi>, prompt: (a: AccountSpec) => () => Promise<string>): Promise<number> {
  const entries = [];
  try {
    for (const a of accounts) entries.push({ session: openAccount(a, { password: prompt(a), warn: (m: string) => ui.message(m, 'error') }), interval: a.watch.interval, idle: a.watch.idle });
  } catch (err) {
    ui.message(`imapkit sync: ${(err as Error).message}`, 'error');
    for (const e of entries) await e.session.close();
    return EXIT_FAILED;
  }
  let lastOk = true;
  const w = new Watcher(entries, {
    maxAccounts,
    run: { quick: flags.quick === true, onEvent: (e) => ui.onEvent(e) },
    onSummary: (s) => {
      lastOk = s.ok;
      ui.finish([s]);
    },
  });
  const uninstall = installWatchSignals(w, (sig) => ui.message(sig === 'SIGUSR1' ? 'imapkit sync: SIGUSR1: syncing now' : `imapkit sync: ${sig}: finishing the current sync, then exiting`));
  try {
    await w.run();
  } finally {
    uninstall();
    for (const e of entries) await e.session.close();
  }
  return lastOk ? 0 : EXIT_FAILED;
}

/** Register `imapkit sync`. */
export function register(program: Command): void {
  program
    .command('sync')
    .description('two-way sync of IMAP accounts and Maildirs (configured accounts, or: imapkit sync imaps://USER@HOST maildir:PATH)')
    .argument('[account-or-url...]', 'account names from the config (default: all), or two URLs')
    .option('--config <file>', 'config file (TOML, or imapkit.config.ts/.js); default ~/.config/imapkit/sync.toml')
    .option('--dry-run', 'print what would be done, change nothing')
    .option('--quick', 'skip folders whose message counts (and HIGHESTMODSEQ) did not change')
    .option('--watch', 'keep running: sync every interval and when IDLE reports news; SIGUSR1 syncs now, SIGTERM/SIGUSR2 finish and exit')
    .option('--interval <seconds>', 'watch mode: seconds between full syncs (default 300, or the account\'s watch.interval)', secondsArg)
    .option('--ui <mode>', 'tty (progress bars), plain (log lines), quiet (errors only), json (events for programs)', uiArg)
    .option('--password-command <command>', 'URL form: a command printing the password (like mbsync PassCmd)')
    .option('--state <file>', 'state database file (one account only)')
    .action(async (args: string[], opts: SyncFlags) => {
      const code = await runSync(args, opts);
      process.exitCode = code;
      // Pooled connections and timers of libraries must not keep a finished one-shot alive.
      if (!opts.watch) setTimeout(() => process.exit(code), 50).unref();
    });
}
