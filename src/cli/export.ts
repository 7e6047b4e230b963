/**
 * `imapkit export --format mbox|maildir PATH --user U [--mailbox NAME]`: write a user's mail (or one
 * mailbox) as mbox files or as a Maildir Dovecot serves as it is. Resumable, with progress and a
 * summary, like import.
 */
import type { Command } from 'commander';
import { ConfigError } from '../config/load.js';
import { JournalError } from '../store/transfer/journal.js';
import { exportMessages } from '../store/transfer/transfer.js';
import { defaultStateFile, formatArg, ProgressReporter, summaryLine, type TransferFlags } from './import.js';
import { addStoreOptions, openStoreFromFlags } from './store-options.js';

/** Run an export as the CLI does; returns the exit code. */
export async function runExport(dest: string, flags: TransferFlags, io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream & { isTTY?: boolean }; env: NodeJS.ProcessEnv } = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  let opened;
  try {
    opened = await openStoreFromFlags(flags, io.env);
  } catch (err) {
    io.stderr.write(`imapkit export: ${(err as Error).message}\n`);
    return err instanceof ConfigError ? 78 : 75;
  }
  const progress = new ProgressReporter(io.stderr, 'exported');
  const stateFile = flags.state ?? defaultStateFile('export', flags, dest, io.env);
  try {
    const user = await opened.store.openUser(flags.user);
    try {
      const summary = await exportMessages({ format: flags.format, dest, user, mailbox: flags.mailbox, stateFile, restart: flags.restart, onProgress: (p) => progress.update(p) });
      progress.finish();
      io.stdout.write(summaryLine('exported', summary) + '\n');
      for (const e of summary.errors.slice(0, 20)) io.stderr.write(`  failed: ${e.key}: ${e.error}\n`);
      io.stdout.write(`state kept in ${stateFile} (run again to resume or to add new messages; --restart to export everything again)\n`);
      return summary.failed > 0 ? 1 : 0;
    } finally {
      await user.close();
    }
  } catch (err) {
    progress.finish();
    io.stderr.write(`imapkit export: ${(err as Error).message}\n`);
    if (!(err instanceof JournalError)) io.stderr.write(`imapkit export: run the same command again to resume (state: ${stateFile})\n`);
    return 1;
  } finally {
    await opened.store.close();
  }
}

/** Register `imapkit export`. */
export function register(program: Command): void {
  addStoreOptions(
    program
      .command('export')
      .description("export a user's mail as mbox files or a Maildir (resumable)")
      .argument('<path>', 'mbox: a file (with --mailbox) or a directory of NAME.mbox files; maildir: the Maildir to write')
      .requiredOption('--format <format>', 'mbox | maildir', formatArg)
      .requiredOption('--user <user>', 'whose mail to export')
      .option('--mailbox <name>', 'export only this mailbox')
      .option('--state <file>', 'state file for resuming (default: in the data directory)')
      .option('--restart', 'forget what an earlier run did and export everything again'),
  ).action(async (dest: string, flags: TransferFlags) => {
    process.exitCode = await runExport(dest, flags);
  });
}
