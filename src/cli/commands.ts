/**
 * The commands `imapkit --help` lists: only ones that work are registered. Each is loaded on
 * demand, so `imapkit sync` does not pay for loading the server, the proxy and the rest.
 */
import type { Command } from 'commander';

type Register = (program: Command) => void;

/** Command name → loader of the module whose register() defines it, in --help order. */
export const commandLoaders: ReadonlyArray<readonly [string, () => Promise<{ register: Register }>]> = [
  ['serve', () => import('./serve.js')],
  ['user', () => import('./user.js')],
  ['deliver', () => import('./deliver.js')],
  ['import', () => import('./import.js')],
  ['export', () => import('./export.js')],
  ['proxy', () => import('./proxy.js')],
  ['sync', () => import('./sync.js')],
  ['forward', () => import('./forward.js')],
  ['auth', () => import('./auth.js')],
];

/**
 * The register functions needed for this command line: only the named command's when argv names
 * one, otherwise all (top-level --help, a typo that commander should answer with the list).
 */
export async function commandsFor(argv: readonly string[]): Promise<Register[]> {
  const first = argv.find((a) => !a.startsWith('-'));
  const named = commandLoaders.find(([name]) => name === first);
  const chosen = named ? [named] : commandLoaders;
  const mods = await Promise.all(chosen.map(([, load]) => load()));
  return mods.map((m) => m.register);
}
