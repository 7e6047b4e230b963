/**
 * Configuration of `imapkit sync`: accounts, each pairing a remote repository (IMAP) with a local
 * one (Maildir, or a second IMAP account); folder selection (include/exclude patterns, a
 * folderFilter function in JS configs), name translation (a map, or toLocal/toRemote functions
 * checked to be inverse on every folder seen), deletion policy per side, Gmail defaults, and a
 * limit on accounts synced at once. Errors name the file and the key (src/config/load.ts).
 */
import { homedir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, readConfigFile, validateConfig } from '../config/load.js';
import type { PasswordSource } from './credentials.js';
import type { DeletePolicy } from './plan.js';

const port = z.number().int().min(1).max(65535);
const fn = <T extends (...args: never[]) => unknown>(what: string) => z.custom<T>((v) => typeof v === 'function', { message: `${what} must be a function (only in a .js/.ts config)` });

const imapSchema = z
  .object({
    type: z.literal('imap'),
    host: z.string().min(1),
    port: port.optional(),
    /** 'implicit' (imaps, port 993), 'starttls' (port 143), or false for plaintext (say it explicitly). */
    tls: z.union([z.enum(['implicit', 'starttls']), z.literal(false)]).optional(),
    user: z.string().min(1),
    password: z.string().optional(),
    passwordFile: z.string().min(1).optional(),
    passwordEnv: z.string().min(1).optional(),
    passwordCommand: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** true: ~/.netrc; a string: that netrc file. */
    netrc: z.union([z.boolean(), z.string().min(1)]).optional(),
    caFile: z.string().min(1).optional(),
    /** SHA-256 of the server certificate: pins it instead of CA verification. */
    fingerprint: z.string().regex(/^(sha256[:/]?)?([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/, 'expected a SHA-256 fingerprint: 64 hex digits, colons allowed').optional(),
    maxConnections: z.number().int().min(1).max(32).optional(),
    /** Treat as Gmail ([Gmail]/All Mail and Important excluded by default); detected from the host when unset. */
    gmail: z.boolean().optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    const given = (['password', 'passwordFile', 'passwordEnv', 'passwordCommand', 'netrc'] as const).filter((k) => v[k] !== undefined && v[k] !== false);
    if (given.length > 1) ctx.addIssue({ code: 'custom', message: `give only one password source, not ${given.join(' and ')}` });
  });

const maildirSchema = z.object({ type: z.literal('maildir'), path: z.string().min(1) }).strict();

const repoSchema = z.union([imapSchema, maildirSchema]);
const policy = z.enum(['never', 'trash', 'expunge']);

const accountSchema = z
  .object({
    remote: imapSchema,
    local: repoSchema,
    /** Folder patterns (remote names): '*' matches anything, '%' anything but '/'. Default: everything. */
    include: z.array(z.string().min(1)).optional(),
    exclude: z.array(z.string().min(1)).optional(),
    folderFilter: fn<(name: string) => boolean>('folderFilter').optional(),
    /** Remote name → local name, for the folders named; others keep their names. */
    nameMap: z.record(z.string(), z.string().min(1)).optional(),
    toLocal: fn<(name: string) => string>('toLocal').optional(),
    toRemote: fn<(name: string) => string>('toRemote').optional(),
    /** What happens on each side when a message was deleted on the other. */
    deletions: z.object({ remote: policy.optional(), local: policy.optional() }).strict().optional(),
    /** Trash folders for the 'trash' policy (default: the \Trash special-use folder, else "Trash"). */
    trash: z.object({ remote: z.string().min(1).optional(), local: z.string().min(1).optional() }).strict().optional(),
    /** 'both' (default) or 'remote-to-local' (push the remote's state into the local side only). */
    direction: z.enum(['both', 'remote-to-local']).optional(),
    /** State database file (default: STATEDIR/ACCOUNT.sqlite). */
    state: z.string().min(1).optional(),
    /** Messages larger than this (bytes) are not copied. */
    maxMessageSize: z.number().int().min(1).optional(),
    /** Folders synced at once (default: the smaller maxConnections, at most 4). */
    folderConcurrency: z.number().int().min(1).max(32).optional(),
    /** Watch mode: full sync every `interval` seconds, and IDLE on these folders (remote names). */
    watch: z.object({ interval: z.number().min(5).optional(), idle: z.array(z.string().min(1)).optional() }).strict().optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if ((v.toLocal === undefined) !== (v.toRemote === undefined)) ctx.addIssue({ code: 'custom', message: 'toLocal and toRemote go together (each the inverse of the other)' });
    if (v.toLocal && v.nameMap) ctx.addIssue({ code: 'custom', message: 'give nameMap or toLocal/toRemote, not both' });
  });

/** The sync configuration file. */
export const syncConfigSchema = z
  .object({
    /** Where state databases go (default $XDG_DATA_HOME/imapkit/sync or ~/.local/share/imapkit/sync). */
    stateDir: z.string().min(1).optional(),
    /** Accounts synced at once (default 2). */
    maxAccounts: z.number().int().min(1).max(64).optional(),
    accounts: z.record(z.string().regex(/^[A-Za-z0-9._@+-]+$/, 'account names use letters, digits and . _ @ + -'), accountSchema).refine((a) => Object.keys(a).length > 0, 'at least one account'),
  })
  .strict();

/** The parsed configuration. */
export type SyncConfig = z.infer<typeof syncConfigSchema>;
/** One account as written. */
export type AccountInput = z.infer<typeof accountSchema>;
/** An IMAP repository as written. */
export type ImapRepoConfig = z.infer<typeof imapSchema>;
/** A repository as written. */
export type RepoConfig = z.infer<typeof repoSchema>;

/** A repository ready to open. */
export type RepoSpec =
  | {
      type: 'imap';
      host: string;
      port: number;
      tls: 'implicit' | 'starttls' | false;
      user: string;
      password: PasswordSource | null;
      caFile?: string;
      fingerprint?: string;
      maxConnections: number;
      gmail: boolean;
    }
  | { type: 'maildir'; path: string };

/** An account resolved for the engine (side a = remote, b = local). */
export interface AccountSpec {
  name: string;
  remote: RepoSpec;
  local: RepoSpec;
  selector: FolderSelector;
  names: NameTranslator;
  /** Policy applied on a side when the message was deleted on the other. */
  deletions: { remote: DeletePolicy; local: DeletePolicy };
  trash: { remote?: string; local?: string };
  direction: 'both' | 'a-to-b';
  statePath: string;
  maxMessageSize?: number;
  folderConcurrency: number;
  watch: { interval: number; idle: string[] };
  /** Where the account came from, for messages ("FILE: accounts.NAME"). */
  origin: string;
}

/** Which folders (by remote name) are synced. */
export interface FolderSelector {
  (remoteName: string, specialUse?: string): boolean;
}

/** Translation of folder names between the sides. */
export interface NameTranslator {
  toLocal(remote: string): string;
  toRemote(local: string): string;
}

/** Expand ~ and make a path absolute against base. */
export function expandUserPath(p: string, base: string): string {
  const q = p === '~' ? homedir() : p.startsWith('~/') ? path.join(homedir(), p.slice(2)) : p;
  return path.resolve(base, q);
}

/** Default directory of state databases. */
export function defaultStateDir(): string {
  const xdg = process.env.XDG_DATA_HOME;
  return path.join(xdg && xdg !== '' ? xdg : path.join(homedir(), '.local', 'share'), 'imapkit', 'sync');
}

/** A folder pattern as a RegExp: '*' anything, '%' anything but '/', otherwise literal; "INBOX" case-insensitive. */
export function compileFolderPattern(p: string): RegExp {
  if (p.length > 2 && p.startsWith('/') && p.endsWith('/')) return new RegExp(p.slice(1, -1));
  let re = '';
  for (const ch of p) re += ch === '*' ? '.*' : ch === '%' ? '[^/]*' : ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (/^inbox/i.test(p)) re = '(?:INBOX|inbox|Inbox)' + re.slice(5);
  return new RegExp(`^${re}$`);
}

/** Gmail folders left out unless a pattern names them. */
export const GMAIL_DEFAULT_EXCLUDES = ['[Gmail]/All Mail', '[Gmail]/Important', '[Google Mail]/All Mail', '[Google Mail]/Important'];

/** Build the folder selector of an account. */
export function folderSelector(opts: { include?: string[]; exclude?: string[]; filter?: (name: string) => boolean; gmail?: boolean }): FolderSelector {
  const inc = (opts.include ?? ['*']).map(compileFolderPattern);
  const exc = (opts.exclude ?? []).map(compileFolderPattern);
  const explicit = new Set(opts.include ?? []);
  return (name, specialUse) => {
    if (!inc.some((r) => r.test(name))) return false;
    if (exc.some((r) => r.test(name))) return false;
    // Gmail: All Mail holds every message again and Important is a view: both only when named explicitly.
    if (opts.gmail && !explicit.has(name) && (GMAIL_DEFAULT_EXCLUDES.includes(name) || specialUse === '\\All' || specialUse === '\\Important')) return false;
    if (opts.filter && !opts.filter(name)) return false;
    return true;
  };
}

/** Build the name translator of an account (identity by default). */
export function nameTranslator(opts: { nameMap?: Record<string, string>; toLocal?: (n: string) => string; toRemote?: (n: string) => string }): NameTranslator {
  if (opts.toLocal && opts.toRemote) return { toLocal: opts.toLocal, toRemote: opts.toRemote };
  const map = opts.nameMap ?? {};
  const back = new Map(Object.entries(map).map(([r, l]) => [l, r]));
  // Collisions (a mapped name that is also another folder's own name) show up in checkInverse().
  return {
    toLocal: (r) => (Object.prototype.hasOwnProperty.call(map, r) ? map[r]! : r),
    toRemote: (l) => back.get(l) ?? l,
  };
}

/**
 * Check that the translation is inverse on the folders seen; returns the problems (empty when fine).
 * A folder whose round trip does not come back to itself would be synced under two names.
 */
export function checkInverse(t: NameTranslator, remote: string[], local: string[]): string[] {
  const problems: string[] = [];
  const call = (f: (n: string) => string, n: string, what: string): string | null => {
    try {
      const v = f(n);
      if (typeof v !== 'string' || v === '') {
        problems.push(`${what}(${JSON.stringify(n)}) returned ${JSON.stringify(v)}, not a folder name`);
        return null;
      }
      return v;
    } catch (err) {
      problems.push(`${what}(${JSON.stringify(n)}) threw: ${(err as Error).message}`);
      return null;
    }
  };
  for (const r of remote) {
    const l = call(t.toLocal, r, 'toLocal');
    if (l === null) continue;
    const back = call(t.toRemote, l, 'toRemote');
    if (back !== null && back !== r) problems.push(`remote folder ${JSON.stringify(r)} → local ${JSON.stringify(l)} → remote ${JSON.stringify(back)}: toRemote is not the inverse of toLocal`);
  }
  for (const l of local) {
    const r = call(t.toRemote, l, 'toRemote');
    if (r === null) continue;
    const back = call(t.toLocal, r, 'toLocal');
    if (back !== null && back !== l) problems.push(`local folder ${JSON.stringify(l)} → remote ${JSON.stringify(r)} → local ${JSON.stringify(back)}: toLocal is not the inverse of toRemote`);
  }
  return problems;
}

function repoSpec(r: RepoConfig, base: string): RepoSpec {
  if (r.type === 'maildir') return { type: 'maildir', path: expandUserPath(r.path, base) };
  const tls = r.tls ?? (r.port === 143 ? 'starttls' : 'implicit');
  let password: PasswordSource | null = null;
  if (r.password !== undefined) password = { kind: 'password', value: r.password };
  else if (r.passwordFile !== undefined) password = { kind: 'file', path: expandUserPath(r.passwordFile, base) };
  else if (r.passwordEnv !== undefined) password = { kind: 'env', name: r.passwordEnv };
  else if (r.passwordCommand !== undefined) password = { kind: 'command', command: r.passwordCommand };
  else if (r.netrc !== undefined && r.netrc !== false) password = typeof r.netrc === 'string' ? { kind: 'netrc', file: expandUserPath(r.netrc, base), host: r.host, user: r.user } : { kind: 'netrc', host: r.host, user: r.user };
  const spec: RepoSpec = {
    type: 'imap',
    host: r.host,
    port: r.port ?? (tls === 'implicit' ? 993 : 143),
    tls,
    user: r.user,
    password,
    maxConnections: r.maxConnections ?? 4,
    gmail: r.gmail ?? /(^|\.)(gmail|googlemail)\.com$/i.test(r.host),
  };
  if (r.caFile) spec.caFile = expandUserPath(r.caFile, base);
  if (r.fingerprint) spec.fingerprint = r.fingerprint;
  return spec;
}

/** Resolve one account of a parsed config. */
export function resolveAccount(name: string, a: AccountInput, cfg: SyncConfig, file: string): AccountSpec {
  const base = path.dirname(path.resolve(file));
  const remote = repoSpec(a.remote, base);
  const local = repoSpec(a.local, base);
  const gmail = remote.type === 'imap' && remote.gmail;
  const stateDir = cfg.stateDir ? expandUserPath(cfg.stateDir, base) : defaultStateDir();
  const conns = Math.min(remote.type === 'imap' ? remote.maxConnections : 4, local.type === 'imap' ? local.maxConnections : 4);
  const filter = a.folderFilter;
  const spec: AccountSpec = {
    name,
    remote,
    local,
    selector: folderSelector({ include: a.include, exclude: a.exclude, filter: filter ? (n) => Boolean(filter(n)) : undefined, gmail }),
    names: nameTranslator({ nameMap: a.nameMap, toLocal: a.toLocal, toRemote: a.toRemote }),
    deletions: { remote: a.deletions?.remote ?? (gmail ? 'trash' : 'expunge'), local: a.deletions?.local ?? 'expunge' },
    trash: { ...(a.trash?.remote ? { remote: a.trash.remote } : {}), ...(a.trash?.local ? { local: a.trash.local } : {}) },
    direction: a.direction === 'remote-to-local' ? 'a-to-b' : 'both',
    statePath: a.state ? expandUserPath(a.state, base) : path.join(stateDir, `${name}.sqlite`),
    folderConcurrency: a.folderConcurrency ?? Math.min(4, conns),
    watch: { interval: a.watch?.interval ?? 300, idle: a.watch?.idle ?? ['INBOX'] },
    origin: `${file}: accounts.${name}`,
  };
  if (a.maxMessageSize !== undefined) spec.maxMessageSize = a.maxMessageSize;
  return spec;
}

/** Load and validate a sync config file. */
export async function loadSyncConfig(file: string): Promise<SyncConfig> {
  return validateConfig(syncConfigSchema, await readConfigFile(file), file);
}

/** The accounts to sync: all of them, or the ones named (unknown names are a ConfigError). */
export function selectAccounts(cfg: SyncConfig, file: string, names: string[]): AccountSpec[] {
  const all = Object.keys(cfg.accounts);
  const chosen = names.length ? names : all;
  const unknown = chosen.filter((n) => !all.includes(n));
  if (unknown.length) throw new ConfigError(`${file}: no account ${unknown.map((n) => JSON.stringify(n)).join(', ')} (accounts: ${all.join(', ')})`);
  return chosen.map((n) => resolveAccount(n, cfg.accounts[n]!, cfg, file));
}

/** Where a config is looked for when --config is not given. */
export function defaultConfigFiles(): string[] {
  const xdg = process.env.XDG_CONFIG_HOME && process.env.XDG_CONFIG_HOME !== '' ? process.env.XDG_CONFIG_HOME : path.join(homedir(), '.config');
  const dir = path.join(xdg, 'imapkit');
  return ['sync.toml', 'imapkit.config.ts', 'imapkit.config.js', 'imapkit.config.mjs'].map((f) => path.join(dir, f));
}
