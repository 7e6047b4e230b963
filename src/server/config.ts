/**
 * Configuration of `imapkit serve` (and `imapkit user`): one zod schema for the config file, the
 * same keys as command-line flags. CLI values override file values; defaults come last.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, validateConfig } from '../config/load.js';
import { DEFAULT_LIMITS, type LimitSettings } from './limits.js';
import { LMTP_ADDRESS_EXPECTED, parseLmtpAddress, type LmtpListen } from './lmtp/listen-address.js';

const port = z.number().int().min(0).max(65535);
const positive = z.number().int().min(0);

/** `limits` table: the keys of LimitSettings, all optional. */
export const limitsSchema = z
  .object({
    maxConnectionsPerAddress: positive,
    maxConnections: positive,
    preAuthTimeoutMs: positive,
    idleTimeoutMs: positive,
    idleCommandTimeoutMs: positive,
    failedLoginDelayMs: positive,
    failedLoginMaxDelayMs: positive,
    appendLimit: z.number().int().min(1),
    maxLineLength: z.number().int().min(1024),
  })
  .partial()
  .strict();

/** `lmtp`: PORT (a number or a string), HOST:PORT, or a unix socket path; the message says which forms exist. */
const lmtpAddress = z.union([z.number(), z.string()], { error: LMTP_ADDRESS_EXPECTED }).superRefine((value, ctx) => {
  try {
    parseLmtpAddress(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** The serve configuration as written in a file (every key optional). */
export const serveConfigSchema = z
  .object({
    host: z.string().min(1),
    port,
    tls: z
      .object({
        cert: z.string().min(1),
        key: z.string().min(1),
        /** Port for implicit TLS (IMAPS); STARTTLS is offered on `port` whenever cert and key are set. */
        implicitPort: port,
      })
      .partial()
      .strict(),
    /** "memory", "sqlite:PATH", or another registered store kind. */
    store: z.string().min(1),
    /** "store" (the store's own user table) or "passwd:PATH" (a Dovecot passwd-file). */
    users: z.string().regex(/^(store|passwd:.+)$/, 'expected "store" or "passwd:PATH"'),
    allowPlaintextLogin: z.boolean(),
    limits: limitsSchema,
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    /** Protocol trace (implies logLevel debug); passwords are never logged. */
    debug: z.boolean(),
    /** LMTP listener (RFC 2033) for an MTA's deliveries: PORT (on 127.0.0.1), HOST:PORT or /path/to/socket. */
    lmtp: lmtpAddress,
  })
  .partial()
  .strict();

/** A config file's content, validated. */
export type ServeConfigInput = z.infer<typeof serveConfigSchema>;

/** The effective configuration, defaults filled in. */
export interface ServeConfig {
  host: string;
  port: number;
  tls?: { cert: string; key: string; implicitPort?: number };
  store: string;
  users: string;
  allowPlaintextLogin: boolean;
  limits: LimitSettings;
  logLevel: string;
  debug: boolean;
  /** Where the LMTP listener listens; absent: no LMTP. */
  lmtp?: LmtpListen;
}

/** $XDG_DATA_HOME/imapkit (default ~/.local/share/imapkit). */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_DATA_HOME && env.XDG_DATA_HOME.startsWith('/') ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share');
  return join(base, 'imapkit');
}

/** Default store: SQLite in the XDG data directory. */
export function defaultStoreSpec(env: NodeJS.ProcessEnv = process.env): string {
  return `sqlite:${join(dataDir(env), 'imapkit.db')}`;
}

/** Defaults of `imapkit serve`. */
export const SERVE_DEFAULTS = { host: '0.0.0.0', port: 1143 } as const;

/**
 * Merge file values and command-line values (CLI wins), validate each source so errors name
 * where the bad key came from, and fill in defaults.
 */
export function resolveServeConfig(
  file: { data: unknown; path: string } | undefined,
  cli: ServeConfigInput,
  env: NodeJS.ProcessEnv = process.env,
): ServeConfig {
  const fromFile: ServeConfigInput = file ? validateConfig(serveConfigSchema, file.data ?? {}, file.path) : {};
  const fromCli: ServeConfigInput = validateConfig(serveConfigSchema, stripUndefined(cli), 'command line');
  const merged: ServeConfigInput = { ...fromFile, ...fromCli };
  merged.limits = { ...fromFile.limits, ...fromCli.limits };
  let tls: ServeConfig['tls'];
  if (fromFile.tls || fromCli.tls) {
    const t = { ...fromFile.tls, ...fromCli.tls };
    // Cert and key may come from different sources, but one without the other is useless.
    if (!t.cert || !t.key) throw new ConfigError(`${file?.path ?? 'command line'}: tls: both tls.cert (--tls-cert) and tls.key (--tls-key) are required`);
    tls = { cert: t.cert, key: t.key, ...(t.implicitPort !== undefined ? { implicitPort: t.implicitPort } : {}) };
  }
  const debug = merged.debug ?? false;
  return {
    host: merged.host ?? SERVE_DEFAULTS.host,
    port: merged.port ?? SERVE_DEFAULTS.port,
    tls,
    store: merged.store ?? defaultStoreSpec(env),
    users: merged.users ?? 'store',
    allowPlaintextLogin: merged.allowPlaintextLogin ?? false,
    limits: { ...DEFAULT_LIMITS, ...stripUndefined(merged.limits ?? {}) },
    logLevel: debug ? 'debug' : (merged.logLevel ?? 'info'),
    debug,
    ...(merged.lmtp !== undefined ? { lmtp: parseLmtpAddress(merged.lmtp) } : {}),
  };
}

/** Drop keys whose value is undefined (commander leaves unset options undefined), recursively. */
function stripUndefined<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined) continue;
    const inner = stripUndefined(v);
    if (inner && typeof inner === 'object' && !Array.isArray(inner) && Object.keys(inner).length === 0) continue;
    out[k] = inner;
  }
  return out as T;
}
