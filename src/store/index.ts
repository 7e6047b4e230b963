/**
 * The store layer's public face: the MailStore contract, the built-in backends, and openStore(),
 * which turns a spec string from the configuration ("memory", "sqlite:~/mail.db", …) into a store.
 * Other backends add their prefix with registerStoreKind() (from ./registry.js, to avoid an import cycle).
 */
import type { MailStore } from './contract.js';
import { MemoryStore } from './memory/store.js';
import { SqliteStore } from './sqlite/store.js';
import { expandPath, openRegisteredStore, registerStoreKind, type OpenStoreOptions } from './registry.js';

export * from './contract.js';
export { MemoryStore, type MemoryStoreOptions } from './memory/store.js';
export { MemoryUserDb } from './memory/users.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite/store.js';
export { SqliteUserDb } from './sqlite/users.js';
export { canonicalMailboxName, canonicalFlags, type QuotaLimits } from './common.js';
export { expandPath, registerStoreKind, storeKinds, type OpenStoreOptions, type StoreFactory } from './registry.js';

/** Open a store from a spec: "memory", "sqlite:PATH" (or bare "sqlite": DATADIR/imapkit.sqlite), or a registered kind. */
export function openStore(spec: string, opts: OpenStoreOptions = {}): Promise<MailStore> {
  return openRegisteredStore(spec, opts);
}

registerStoreKind('memory', async (rest) => {
  if (rest !== '') throw new Error(`the memory store takes no argument (got "memory:${rest}")`);
  return new MemoryStore();
});

registerStoreKind('sqlite', async (rest, opts) => {
  if (rest === '' && opts.dataDir === undefined) throw new Error('the sqlite store needs a file: "sqlite:PATH" (or set a data directory)');
  return new SqliteStore(expandPath(rest === '' ? 'imapkit.sqlite' : rest, opts.dataDir));
});

// The maildir kind registers itself (its module imports the registry, not this file).
import './maildir/register.js';
