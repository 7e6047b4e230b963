/**
 * `imapkit user add|passwd|del|list`: manage the user database serve uses (the store's own, or a
 * passwd-file), chosen with the same --store/--users/--config as serve. Passwords come from
 * standard input when it is not a terminal (one line), else from a prompt without echo.
 */
import type { Command } from 'commander';
import type { Readable } from 'node:stream';
import { readConfigFile } from '../config/load.js';
import { openStore } from '../store/index.js';
import type { MailStore, UserDb } from '../store/contract.js';
import { resolveServeConfig } from '../server/config.js';
import { openUserDb } from './serve.js';

/** Flags shared by the user subcommands. */
export interface UserFlags {
  store?: string;
  users?: string;
  config?: string;
}

/** Terminal and streams, injectable for tests. */
export interface UserIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

const defaultIo = (): UserIo => ({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env });

/** Read one line from a non-terminal stream (a script's pipe): the password without its newline. */
export async function readPasswordLine(stdin: Readable): Promise<string> {
  let data = '';
  for await (const chunk of stdin) {
    data += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (data.includes('\n')) break;
  }
  const line = data.split(/\r?\n/)[0] ?? '';
  return line;
}

/** Prompt on the terminal without echo; resolves at Enter, rejects at Ctrl-C or end of input. */
export function promptHidden(io: UserIo, question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const { stdin, stderr } = io;
    stderr.write(question);
    let value = '';
    const done = (err?: Error): void => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      stdin.setRawMode?.(false);
      stdin.pause();
      stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onEnd = (): void => done(new Error('no password given'));
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new Error('interrupted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.setRawMode?.(true);
    stdin.on('data', onData);
    stdin.once('end', onEnd);
    stdin.resume();
  });
}

/** Get a new password: stdin line when scripted, else prompt twice. */
export async function newPassword(io: UserIo): Promise<string> {
  let password: string;
  if (!io.stdin.isTTY) {
    password = await readPasswordLine(io.stdin);
  } else {
    password = await promptHidden(io, 'Password: ');
    const again = await promptHidden(io, 'Repeat password: ');
    if (again !== password) throw new Error('the passwords do not match');
  }
  if (password === '') throw new Error('the password must not be empty');
  return password;
}

/** Open the user database the flags (and config file) name. The caller closes the returned store. */
export async function openUsers(flags: UserFlags, env: NodeJS.ProcessEnv): Promise<{ users: UserDb; store?: MailStore }> {
  const file = flags.config ? { data: await readConfigFile(flags.config), path: flags.config } : undefined;
  const config = resolveServeConfig(file, { store: flags.store, users: flags.users }, env);
  // A passwd-file needs no store at all; opening one would create a database for nothing.
  if (config.users.startsWith('passwd:')) return { users: openUserDb(config, undefined) };
  const store = await openStore(config.store);
  try {
    return { users: openUserDb(config, store), store };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** Run one user subcommand; returns the exit code. */
export async function runUserCommand(
  action: 'add' | 'passwd' | 'del' | 'list',
  name: string | undefined,
  flags: UserFlags,
  io: UserIo = defaultIo(),
): Promise<number> {
  let store: MailStore | undefined;
  try {
    const opened = await openUsers(flags, io.env);
    store = opened.store;
    const users = opened.users;
    switch (action) {
      case 'add':
        await users.addUser(name!, await newPassword(io));
        io.stdout.write(`user ${name} added\n`);
        break;
      case 'passwd':
        await users.setPassword(name!, await newPassword(io));
        io.stdout.write(`password of ${name} changed\n`);
        break;
      case 'del':
        await users.deleteUser(name!);
        io.stdout.write(`user ${name} deleted (their mail is kept)\n`);
        break;
      case 'list':
        for (const u of await users.listUsers()) io.stdout.write(`${u}\n`);
        break;
    }
    return 0;
  } catch (err) {
    io.stderr.write(`imapkit user ${action}: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store?.close();
  }
}

/** Register `imapkit user`. */
export function register(program: Command): void {
  const user = program.command('user').description('manage the users of imapkit serve');
  const common = (cmd: Command): Command =>
    cmd
      .option('--store <spec>', 'store whose user table to use (default sqlite under $XDG_DATA_HOME/imapkit)')
      .option('--users <source>', 'store (default) or passwd:PATH')
      .option('--config <file>', 'the serve config file');
  const run = async (action: 'add' | 'passwd' | 'del' | 'list', name: string | undefined, flags: UserFlags): Promise<void> => {
    process.exitCode = await runUserCommand(action, name, flags);
  };
  common(user.command('add <name>').description('add a user (password from stdin when piped, else prompted)')).action((name: string, flags: UserFlags) =>
    run('add', name, flags),
  );
  common(user.command('passwd <name>').description("change a user's password")).action((name: string, flags: UserFlags) => run('passwd', name, flags));
  common(user.command('del <name>').description('delete a user (mail is kept)')).action((name: string, flags: UserFlags) => run('del', name, flags));
  common(user.command('list').description('list users')).action((flags: UserFlags) => run('list', undefined, flags));
}
