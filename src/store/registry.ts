/**
 * The registry of store kinds behind openStore(). It imports no backend, so a backend module can
 * register itself from here without an import cycle; src/store/index.ts registers the built-in kinds.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { MailStore } from './contract.js';

/** Options of openStore (also handed to registered factories). */
export interface OpenStoreOptions {
  /** Base for relative paths, and where a bare "sqlite" puts its file. Default: the working directory. */
  dataDir?: string;
}

/** Makes a store from the part of the spec after "prefix:" (empty for a bare "prefix"). */
export type StoreFactory = (rest: string, opts: OpenStoreOptions) => Promise<MailStore>;

const factories = new Map<string, StoreFactory>();

/** Add (or replace) a store kind: openStore("prefix" or "prefix:rest") then calls factory(rest, opts). */
export function registerStoreKind(prefix: string, factory: StoreFactory): void {
  if (!/^[a-z][a-z0-9-]*$/.test(prefix)) throw new Error(`store kind prefix must be lower-case letters, digits or '-': ${JSON.stringify(prefix)}`);
  factories.set(prefix, factory);
}

/** Store kinds openStore knows, sorted. */
export function storeKinds(): string[] {
  return [...factories.keys()].sort();
}

/** Expand a leading "~" to the home directory and resolve a relative path against dataDir (or the working directory). */
export function expandPath(path: string, dataDir?: string): string {
  let p = path;
  if (p === '~') p = homedir();
  else if (p.startsWith('~/')) p = join(homedir(), p.slice(2));
  if (isAbsolute(p)) return p;
  const base = dataDir === undefined ? process.cwd() : expandPath(dataDir);
  return resolve(base, p);
}

/** Open a store from a spec "prefix" or "prefix:rest" using the registered kinds; unknown specs name the accepted forms. */
export async function openRegisteredStore(spec: string, opts: OpenStoreOptions = {}): Promise<MailStore> {
  const colon = spec.indexOf(':');
  const prefix = colon < 0 ? spec : spec.slice(0, colon);
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  const factory = factories.get(prefix);
  if (!factory) {
    const forms = storeKinds()
      .map((k) => (k === 'memory' ? '"memory"' : `"${k}:PATH"`))
      .join(', ');
    throw new Error(`unknown store ${JSON.stringify(spec)}: accepted forms are ${forms}`);
  }
  return factory(rest, opts);
}
