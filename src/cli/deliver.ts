/**
 * `imapkit deliver USER [--mailbox NAME]`: a local delivery agent. Reads one message on standard
 * input and stores it, for Postfix's mailbox_command, Exim's pipe transport or fetchmail's mda.
 * Exit codes follow sysexits.h, which MTAs understand: 0 delivered, 65 EX_DATAERR (bad input,
 * bounced), 67 EX_NOUSER (unknown user, bounced), 75 EX_TEMPFAIL (try again later), 78 EX_CONFIG.
 */
import { access } from 'node:fs/promises';
import type { Command } from 'commander';
import { ConfigError } from '../config/load.js';
import { StoreError, type MailStore } from '../store/contract.js';
import { addStoreOptions, openStoreFromFlags, type StoreFlags } from './store-options.js';

/** sysexits.h codes deliver uses. */
export const EX = { OK: 0, USAGE: 64, DATAERR: 65, NOUSER: 67, TEMPFAIL: 75, CONFIG: 78 } as const;

/** Options of deliver. */
export interface DeliverOptions extends StoreFlags {
  /** Mailbox to store into (default INBOX); a mailbox that does not exist means INBOX, as dovecot-lda does. */
  mailbox?: string;
  /** Envelope sender: added as Return-Path when the message has none. */
  from?: string;
}

/** Where deliver reports. */
export interface DeliverIo {
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

/** Drop an mbox envelope line ("From sender date") some MTAs put first. */
export function stripEnvelopeLine(data: Buffer): Buffer {
  if (data.subarray(0, 5).toString('latin1') !== 'From ') return data;
  const nl = data.indexOf(10);
  return nl < 0 ? Buffer.alloc(0) : data.subarray(nl + 1);
}

function hasReturnPath(data: Buffer): boolean {
  // Only the header counts: up to the first empty line.
  const end = data.indexOf('\n\n') >= 0 ? data.indexOf('\n\n') : data.indexOf('\r\n\r\n');
  const head = data.subarray(0, end < 0 ? data.length : end).toString('latin1');
  return /^return-path:/im.test(head);
}

/** Deliver one message; returns the exit code (never throws). */
export async function deliver(user: string, input: Buffer, opts: DeliverOptions, io: DeliverIo = { stderr: process.stderr, env: process.env }): Promise<number> {
  const say = (msg: string): void => {
    io.stderr.write(`imapkit deliver: ${msg}\n`);
  };
  let data = stripEnvelopeLine(input);
  if (data.length === 0) {
    say('empty message on standard input');
    return EX.DATAERR;
  }
  if (opts.from !== undefined && !hasReturnPath(data)) {
    if (/[\r\n<>]/.test(opts.from)) {
      say(`invalid envelope sender ${JSON.stringify(opts.from)}`);
      return EX.USAGE;
    }
    // The message's own line ending style.
    const eol = data.indexOf('\r\n') >= 0 && data.indexOf('\r\n') <= data.indexOf('\n') ? '\r\n' : '\n';
    data = Buffer.concat([Buffer.from(`Return-Path: <${opts.from}>${eol}`), data]);
  }
  let store: MailStore | undefined;
  try {
    let opened;
    try {
      opened = await openStoreFromFlags(opts, io.env);
    } catch (err) {
      if (err instanceof ConfigError) {
        say(err.message);
        return EX.CONFIG;
      }
      throw err;
    }
    store = opened.store;
    if (data.length > opened.config.limits.appendLimit) {
      say(`message of ${data.length} bytes is larger than the limit of ${opened.config.limits.appendLimit}`);
      return EX.DATAERR;
    }
    if (opened.config.users.startsWith('passwd:')) {
      // A passwd-file that is not there is a mistake in the configuration, not a user that does not exist.
      const file = opened.config.users.slice('passwd:'.length);
      try {
        await access(file);
      } catch {
        say(`user database ${file} does not exist`);
        return EX.CONFIG;
      }
    }
    if (opened.users) {
      let known: string[];
      try {
        known = await opened.users.listUsers();
      } catch (err) {
        say(`cannot read the user database: ${(err as Error).message}`);
        return (err as NodeJS.ErrnoException).code === 'ENOENT' ? EX.CONFIG : EX.TEMPFAIL;
      }
      if (!known.includes(user)) {
        say(`unknown user ${JSON.stringify(user)}`);
        return EX.NOUSER;
      }
    }
    let u;
    try {
      u = await store.openUser(user);
    } catch (err) {
      if (err instanceof StoreError && err.code === 'CANNOT') {
        say(`no mailbox for user ${JSON.stringify(user)}: ${err.message}`);
        return EX.NOUSER;
      }
      throw err;
    }
    try {
      const mailbox = opts.mailbox ?? 'INBOX';
      try {
        await u.append(mailbox, [{ data }]);
      } catch (err) {
        if (mailbox === 'INBOX' || !(err instanceof StoreError) || !['NONEXISTENT', 'CANNOT'].includes(err.code)) throw err;
        say(`mailbox ${JSON.stringify(mailbox)}: ${err.message}; delivered to INBOX`);
        await u.append('INBOX', [{ data }]);
      }
    } finally {
      await u.close();
    }
    return EX.OK;
  } catch (err) {
    if (err instanceof StoreError) {
      say(`${err.code}: ${err.message}`);
      // Too big or malformed: bounce. Everything else (quota, locks, I/O) may pass: try again later.
      return err.code === 'TOOBIG' ? EX.DATAERR : EX.TEMPFAIL;
    }
    say(`temporary failure: ${(err as Error).message}`);
    return EX.TEMPFAIL;
  } finally {
    await store?.close().catch(() => undefined);
  }
}

/** Read all of a stream. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

/** Register `imapkit deliver`. */
export function register(program: Command): void {
  addStoreOptions(
    program
      .command('deliver')
      .description('store the message on standard input for USER (local delivery agent; exit codes per sysexits.h)')
      .argument('<user>', 'recipient user')
      .option('-m, --mailbox <name>', 'mailbox to deliver to (default INBOX; INBOX when it does not exist)')
      .option('-f, --from <address>', 'envelope sender, added as Return-Path when missing'),
  ).action(async (user: string, flags: DeliverOptions) => {
    let input: Buffer;
    try {
      input = await readAll(process.stdin);
    } catch (err) {
      process.stderr.write(`imapkit deliver: cannot read standard input: ${(err as Error).message}\n`);
      process.exitCode = EX.TEMPFAIL;
      return;
    }
    process.exitCode = await deliver(user, input, flags);
  });
}
