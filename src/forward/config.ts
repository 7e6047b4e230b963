/**
 * Configuration of `imapkit forward`: one or more forwards (alice, bob, ...) in one file, each a
 * source account and folders, a target account (Gmail by default) and mailbox, and the timing and
 * retention settings. Validated with zod; relative paths are resolved against the file's directory
 * and `~` against the home directory.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, readConfigFile, validateConfig } from '../config/load.js';

/** Parse a duration: a number of seconds, or text such as 45s, 5m, 2h, 7d, 1w (also combined: 1h30m). */
export function parseDuration(v: number | string): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new Error(`not a duration: ${v}`);
    return Math.round(v * 1000);
  }
  const text = v.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
  const re = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * unit[m[2]!]!;
    pos = re.lastIndex;
    while (text[pos] === ' ') pos++;
    re.lastIndex = pos;
  }
  if (pos === 0 || pos !== text.length) throw new Error(`not a duration: ${JSON.stringify(v)} (examples: 30s, 5m, 7d)`);
  return Math.round(total);
}

const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** What to do with a source message once it is safely on the target. */
export type AfterForward = { kind: 'keep' } | { kind: 'seen' } | { kind: 'move'; folder: string } | { kind: 'delete' };

const afterForward = z.string().transform((v, ctx): AfterForward => {
  if (v === 'keep' || v === 'seen' || v === 'delete') return { kind: v };
  const m = /^move:(.+)$/.exec(v);
  if (m && m[1]!.trim()) return { kind: 'move', folder: m[1]!.trim() };
  ctx.addIssue({ code: 'custom', message: `expected keep, seen, move:FOLDER or delete, got ${JSON.stringify(v)}` });
  return z.NEVER;
});

/** OAuth2 credentials: a provider, its client secret file, and the token file `imapkit auth login` wrote. */
const oauth2Schema = z
  .object({
    provider: z.enum(['google', 'microsoft', 'custom']).default('google'),
    clientSecretFile: z.string().min(1),
    tokenFile: z.string().min(1),
    /** Token endpoint for `custom` when the client secret file names none. */
    tokenUrl: z.string().url().optional(),
  })
  .strict();

const accountFields = {
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).optional(),
  /** true/"implicit": TLS from the first byte (993); "starttls"; false: plaintext, only when said explicitly. */
  tls: z.union([z.boolean(), z.enum(['implicit', 'starttls'])]).default(true),
  /** Extra CA certificate (PEM) to trust, e.g. for a self-signed family server. */
  tlsCaFile: z.string().min(1).optional(),
  /** Accept exactly this certificate: its SHA-256 fingerprint (hex, colons allowed). */
  tlsFingerprint: z.string().regex(/^([0-9a-fA-F]{2}:?){32}$/, 'expected a SHA-256 fingerprint (64 hex digits)').optional(),
  user: z.string().min(1),
  password: z.string().optional(),
  /** A shell command printing the password (like mbsync's PassCmd). */
  passwordCommand: z.string().min(1).optional(),
  /** A file holding the password (first line). */
  passwordFile: z.string().min(1).optional(),
  oauth2: oauth2Schema.optional(),
};

function oneCredential(a: { password?: string; passwordCommand?: string; passwordFile?: string; oauth2?: unknown }, ctx: z.RefinementCtx): void {
  const given = (['password', 'passwordCommand', 'passwordFile', 'oauth2'] as const).filter((k) => a[k] !== undefined);
  if (given.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      message: given.length === 0 ? 'no credentials: give password, passwordCommand, passwordFile or oauth2' : `give only one of ${given.join(', ')}`,
    });
  }
}

const sourceSchema = z
  .object({ ...accountFields, folders: z.array(z.string().min(1)).min(1).default(['INBOX']) })
  .strict()
  .superRefine(oneCredential);

const targetSchema = z
  .object({
    ...accountFields,
    host: z.string().min(1).default('imap.gmail.com'),
    mailbox: z.string().min(1).default('INBOX'),
    /** Gmail label added with X-GM-LABELS when the target offers X-GM-EXT-1. */
    label: z.string().min(1).optional(),
  })
  .strict()
  .superRefine(oneCredential);

const tuning = {
  /** First run: forward messages that arrived within this window (default 7d). */
  since: duration.optional(),
  /** Keep forwarded Message-IDs this long to refuse duplicates (default 31d). */
  retention: duration.optional(),
  /** Poll this often when IDLE is off or missing (default 60s). */
  pollInterval: duration.optional(),
  /** IDLE on the source (default true). */
  idle: z.boolean().optional(),
  afterForward: afterForward.optional(),
};

const forwardSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, dot, dash and underscore only (it names files)'),
    /** A forward can be switched off without deleting it. */
    enabled: z.boolean().default(true),
    source: sourceSchema,
    target: targetSchema,
    ...tuning,
  })
  .strict();

/** The forward config file. */
export const forwardConfigSchema = z
  .object({
    /** State databases and the status file live here (default $XDG_STATE_HOME/imapkit or ~/.local/state/imapkit). */
    stateDir: z.string().min(1).optional(),
    defaults: z.object(tuning).strict().optional(),
    forward: z.array(forwardSchema).min(1, 'at least one [[forward]] is needed'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.forward.forEach((f, i) => {
      if (seen.has(f.name)) ctx.addIssue({ code: 'custom', path: ['forward', i, 'name'], message: `duplicate forward name ${JSON.stringify(f.name)}` });
      seen.add(f.name);
    });
  });

/** The file as validated (before defaults and paths are applied). */
export type ForwardConfigFile = z.infer<typeof forwardConfigSchema>;

/** Credentials of one account, paths absolute. */
export type Credentials =
  | { kind: 'password'; password: string }
  | { kind: 'passwordCommand'; command: string }
  | { kind: 'passwordFile'; file: string }
  | { kind: 'oauth2'; provider: 'google' | 'microsoft' | 'custom'; clientSecretFile: string; tokenFile: string; tokenUrl?: string };

/** One IMAP account, fully resolved. */
export interface AccountConfig {
  host: string;
  port: number;
  /** implicit TLS, STARTTLS, or plaintext. */
  tls: 'implicit' | 'starttls' | 'none';
  tlsCaFile?: string;
  tlsFingerprint?: string;
  user: string;
  credentials: Credentials;
}

/** One forward with every default applied; durations in milliseconds. */
export interface ForwardSpec {
  name: string;
  enabled: boolean;
  source: AccountConfig & { folders: string[] };
  target: AccountConfig & { mailbox: string; label?: string };
  sinceMs: number;
  retentionMs: number;
  pollIntervalMs: number;
  idle: boolean;
  afterForward: AfterForward;
}

/** The whole configuration, resolved. */
export interface ForwardConfig {
  /** The file it came from (for messages). */
  file: string;
  stateDir: string;
  forwards: ForwardSpec[];
}

/** Defaults of the timing settings. */
export const FORWARD_DEFAULTS = {
  sinceMs: 7 * 86_400_000,
  retentionMs: 31 * 86_400_000,
  pollIntervalMs: 60_000,
  idle: true,
  afterForward: { kind: 'keep' } as AfterForward,
};

/** The default state directory: $XDG_STATE_HOME/imapkit, else ~/.local/state/imapkit. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'imapkit');
}

/** The default config file: $XDG_CONFIG_HOME/imapkit/forward.toml, else ~/.config/imapkit/forward.toml. */
export function defaultConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(os.homedir(), '.config');
  return path.join(base, 'imapkit', 'forward.toml');
}

/** Resolve `~/` and relative paths against `base`. */
export function resolvePath(p: string, base: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1));
  return path.resolve(base, p);
}

type RawAccount = z.infer<typeof sourceSchema> | z.infer<typeof targetSchema>;

function account(a: RawAccount, base: string): AccountConfig {
  const tls = a.tls === false ? 'none' : a.tls === 'starttls' ? 'starttls' : 'implicit';
  const port = a.port ?? (tls === 'implicit' ? 993 : 143);
  let credentials: Credentials;
  if (a.oauth2) {
    credentials = {
      kind: 'oauth2',
      provider: a.oauth2.provider,
      clientSecretFile: resolvePath(a.oauth2.clientSecretFile, base),
      tokenFile: resolvePath(a.oauth2.tokenFile, base),
      tokenUrl: a.oauth2.tokenUrl,
    };
  } else if (a.passwordCommand !== undefined) credentials = { kind: 'passwordCommand', command: a.passwordCommand };
  else if (a.passwordFile !== undefined) credentials = { kind: 'passwordFile', file: resolvePath(a.passwordFile, base) };
  else credentials = { kind: 'password', password: a.password ?? '' };
  return {
    host: a.host,
    port,
    tls,
    tlsCaFile: a.tlsCaFile ? resolvePath(a.tlsCaFile, base) : undefined,
    tlsFingerprint: a.tlsFingerprint?.replace(/:/g, '').toLowerCase(),
    user: a.user,
    credentials,
  };
}

/** Apply defaults and resolve paths of validated file data. */
export function resolveForwardConfig(data: ForwardConfigFile, file: string, env: NodeJS.ProcessEnv = process.env): ForwardConfig {
  const base = path.dirname(path.resolve(file));
  const d = data.defaults ?? {};
  const forwards = data.forward.map((f): ForwardSpec => {
    const target = account(f.target, base);
    return {
      name: f.name,
      enabled: f.enabled,
      source: { ...account(f.source, base), folders: f.source.folders },
      target: { ...target, mailbox: f.target.mailbox, label: f.target.label },
      sinceMs: f.since ?? d.since ?? FORWARD_DEFAULTS.sinceMs,
      retentionMs: f.retention ?? d.retention ?? FORWARD_DEFAULTS.retentionMs,
      pollIntervalMs: Math.max(1000, f.pollInterval ?? d.pollInterval ?? FORWARD_DEFAULTS.pollIntervalMs),
      idle: f.idle ?? d.idle ?? FORWARD_DEFAULTS.idle,
      afterForward: f.afterForward ?? d.afterForward ?? FORWARD_DEFAULTS.afterForward,
    };
  });
  for (const f of forwards) {
    const after = f.afterForward;
    if (after.kind === 'move' && f.source.folders.includes(after.folder)) {
      throw new ConfigError(`${file}: forward ${f.name}: afterForward moves into ${after.folder}, which is also a source folder`);
    }
    if (f.retentionMs < f.sinceMs) {
      // A Message-ID forgotten while its message is still inside the window would be forwarded again.
      throw new ConfigError(`${file}: forward ${f.name}: retention (${f.retentionMs / 86_400_000} days) must be at least since (${f.sinceMs / 86_400_000} days)`);
    }
  }
  return { file, stateDir: data.stateDir ? resolvePath(data.stateDir, base) : defaultStateDir(env), forwards };
}

/** Read, validate and resolve a forward config file. */
export async function loadForwardConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ForwardConfig> {
  const data = validateConfig(forwardConfigSchema, await readConfigFile(file), file);
  return resolveForwardConfig(data, file, env);
}
