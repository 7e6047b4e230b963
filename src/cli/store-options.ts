/**
 * The --store / --users / --config options that `deliver`, `import` and `export` share with `serve`:
 * the same keys, the same config file, resolved by the server's config rules, without loading the
 * server itself (deliver runs once per message, so it must start fast).
 */
import type { Command } from 'commander';
import { ConfigError, readConfigFile } from '../config/load.js';
import { resolveServeConfig, type ServeConfig } from '../server/config.js';
import { PasswdFileUserDb } from '../auth/passwd-file.js';
import { openStore } from '../store/index.js';
import type { MailStore, UserDb } from '../store/contract.js';
import '../store/maildir/register.js';

/** The three shared flags. */
export interface StoreFlags {
  store?: string;
  users?: string;
  config?: string;
}

/** An opened store with the user database that goes with it, if any. */
export interface OpenedStore {
  store: MailStore;
  /** The passwd-file (--users passwd:PATH) or the store's own user table; undefined when there is neither. */
  users: UserDb | undefined;
  /** The store spec that was opened. */
  spec: string;
  /** The whole resolved configuration (limits such as appendLimit apply to deliver too). */
  config: ServeConfig;
}

/** Add --store, --users and --config to a command. */
export function addStoreOptions(cmd: Command): Command {
  return cmd
    .option('--store <spec>', 'memory | sqlite:PATH | maildir:PATH (%u = user) (default: as imapkit serve)')
    .option('--users <source>', 'user database: store (default) or passwd:PATH')
    .option('--config <file>', 'config file of imapkit serve (its store and users keys are used)');
}

/** Resolve the flags (and config file) like `serve` does and open the store; ConfigError for anything the user must fix. */
export async function openStoreFromFlags(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): Promise<OpenedStore> {
  const file = flags.config ? { data: await readConfigFile(flags.config), path: flags.config } : undefined;
  const config = resolveServeConfig(file, { store: flags.store, users: flags.users }, env);
  let store: MailStore;
  try {
    store = await openStore(config.store);
  } catch (err) {
    // A store that cannot even be opened is a configuration problem unless the system failed us.
    if (isSystemError(err)) throw err;
    throw new ConfigError(`store ${config.store}: ${(err as Error).message}`);
  }
  let users: UserDb | undefined;
  if (config.users.startsWith('passwd:')) users = new PasswdFileUserDb(config.users.slice('passwd:'.length));
  else users = store.users;
  return { store, users, spec: config.store, config };
}

/** True for errors of the operating system that may go away by themselves (I/O, no space, busy). */
export function isSystemError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && ['EIO', 'ENOSPC', 'EDQUOT', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'ETIMEDOUT', 'EINTR', 'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR'].includes(code);
}
