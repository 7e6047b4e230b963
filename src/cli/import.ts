/**
 * `imapkit import --format mbox|maildir PATH --user U [--mailbox NAME]`: bring mbox files or a Maildir
 * into any store. Resumable (the state file records what was done), a progress bar on a terminal
 * (plain progress lines otherwise), and a summary count at the end that adds up to what was read.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { ConfigError } from '../config/load.js';
import { dataDir } from '../server/config.js';
import { JournalError } from '../store/transfer/journal.js';
import { importMessages, type TransferFormat, type TransferProgress, type TransferSummary } from '../store/transfer/transfer.js';
import { addStoreOptions, openStoreFromFlags, type StoreFlags } from './store-options.js';

/** Flags of import and export. */
export interface TransferFlags extends StoreFlags {
  format: TransferFormat;
  user: string;
  mailbox?: string;
  state?: string;
  restart?: boolean;
}

/** Parse --format. */
export function formatArg(value: string): TransferFormat {
  if (value !== 'mbox' && value !== 'maildir') throw new InvalidArgumentError('expected mbox or maildir');
  return value;
}

/** Default state file: in the data directory, named after what is transferred where. */
export function defaultStateFile(kind: 'import' | 'export', flags: TransferFlags, target: string, env: NodeJS.ProcessEnv = process.env): string {
  const id = createHash('sha256')
    .update(JSON.stringify([kind, flags.format, path.resolve(target), flags.store ?? '', flags.config ?? '', flags.user, flags.mailbox ?? '']))
    .digest('hex')
    .slice(0, 16);
  return path.join(dataDir(env), 'transfers', `${kind}-${id}.jsonl`);
}

function human(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * Progress output: a redrawn bar on a terminal, else a plain line every few seconds (and at the
 * end), so logs of cron jobs stay short.
 */
export class ProgressReporter {
  private last = 0;
  private drawn = false;
  private latest: TransferProgress | undefined;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    private readonly verb: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Take a progress report; draws at most every 100 ms (terminal) or 5 s (plain). */
  update(p: TransferProgress): void {
    this.latest = p;
    const t = this.now();
    if (t - this.last < (this.out.isTTY ? 100 : 5000)) return;
    this.last = t;
    this.draw(p);
  }

  /** The line describing a progress report. */
  line(p: TransferProgress): string {
    const frac = p.totalMessages ? p.messages / p.totalMessages : p.totalBytes ? p.bytes / p.totalBytes : undefined;
    const count = `${p.messages}${p.totalMessages !== undefined ? `/${p.totalMessages}` : ''} messages`;
    const size = `${human(p.bytes)}${p.totalBytes !== undefined ? `/${human(p.totalBytes)}` : ''}`;
    const pct = frac !== undefined ? `${Math.floor(Math.min(1, frac) * 100)}%` : '';
    if (!this.out.isTTY) return `${this.verb} ${count} (${size}${pct ? `, ${pct}` : ''}) ${p.mailbox}`;
    const width = 24;
    const filled = frac !== undefined ? Math.round(Math.min(1, frac) * width) : 0;
    const bar = frac !== undefined ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct.padStart(4)} ` : '';
    return `${bar}${count}  ${size}  ${p.mailbox}`;
  }

  private draw(p: TransferProgress): void {
    const text = this.line(p);
    if (this.out.isTTY) {
      const cols = this.out.columns ?? 100;
      this.out.write(`\r${text.slice(0, cols - 1).padEnd(Math.min(cols - 1, text.length + 2))}`);
      this.drawn = true;
    } else this.out.write(text + '\n');
  }

  /** Final state, and leave the terminal on a fresh line. */
  finish(): void {
    if (this.latest) this.draw(this.latest);
    if (this.drawn) this.out.write('\n');
  }
}

/** The summary line printed at the end. */
export function summaryLine(verb: 'imported' | 'exported', s: TransferSummary): string {
  const parts = [`${s.stored} ${verb}`];
  if (s.alreadyDone) parts.push(`${s.alreadyDone} already ${verb} by an earlier run`);
  parts.push(`${s.failed} failed`);
  return `read ${s.read} messages (${human(s.bytes)}) from ${s.mailboxes.length} mailbox${s.mailboxes.length === 1 ? '' : 'es'}: ${parts.join(', ')}`;
}

/** Run an import as the CLI does; returns the exit code. */
export async function runImport(source: string, flags: TransferFlags, io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream & { isTTY?: boolean }; env: NodeJS.ProcessEnv } = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  let opened;
  try {
    opened = await openStoreFromFlags(flags, io.env);
  } catch (err) {
    io.stderr.write(`imapkit import: ${(err as Error).message}\n`);
    return err instanceof ConfigError ? 78 : 75;
  }
  const progress = new ProgressReporter(io.stderr, 'imported');
  const stateFile = flags.state ?? defaultStateFile('import', flags, source, io.env);
  try {
    const user = await opened.store.openUser(flags.user);
    try {
      const summary = await importMessages({ format: flags.format, source, user, mailbox: flags.mailbox, stateFile, restart: flags.restart, onProgress: (p) => progress.update(p) });
      progress.finish();
      io.stdout.write(summaryLine('imported', summary) + '\n');
      for (const e of summary.errors.slice(0, 20)) io.stderr.write(`  failed: ${e.key}: ${e.error}\n`);
      if (summary.errors.length > 20) io.stderr.write(`  ... and ${summary.errors.length - 20} more\n`);
      io.stdout.write(`state kept in ${stateFile} (run again to resume or to pick up new messages; --restart to import everything again)\n`);
      return summary.failed > 0 ? 1 : 0;
    } finally {
      await user.close();
    }
  } catch (err) {
    progress.finish();
    io.stderr.write(`imapkit import: ${(err as Error).message}\n`);
    if (!(err instanceof JournalError)) io.stderr.write(`imapkit import: run the same command again to resume (state: ${stateFile})\n`);
    return 1;
  } finally {
    await opened.store.close();
  }
}

/** Register `imapkit import`. */
export function register(program: Command): void {
  addStoreOptions(
    program
      .command('import')
      .description('import mbox files or a Maildir into a user\'s mail (resumable)')
      .argument('<path>', 'mbox file, directory of mbox files, or Maildir')
      .requiredOption('--format <format>', 'mbox | maildir', formatArg)
      .requiredOption('--user <user>', 'whose mail to import into')
      .option('--mailbox <name>', 'mbox file: the mailbox to fill (default INBOX); directories and Maildirs: the parent of the imported mailboxes')
      .option('--state <file>', 'state file for resuming (default: in the data directory)')
      .option('--restart', 'forget what an earlier run did and import everything again'),
  ).action(async (source: string, flags: TransferFlags) => {
    process.exitCode = await runImport(source, flags);
  });
}
