/**
 * Configuration of `imapkit proxy`: one zod schema for the TOML file; command-line flags override
 * it. Relative paths in a file are resolved against the file's directory.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, readConfigFile, validateConfig } from '../config/load.js';
import { readClientSecretFile, type OAuth2Client } from '../auth/oauth2/client.js';
import { TokenSource } from '../auth/oauth2/token-source.js';
import { PasswdFileUserDb } from '../auth/passwd-file.js';
import { parseBackendUrl, BackendError, type Backend, type BackendOptions } from './backend.js';
import { Router, compilePattern } from './router.js';
import type { OAuth2Account } from './login.js';
import type { ProxyServerOptions } from './server.js';

const port = z.number().int().min(0).max(65535);
const seconds = z.number().min(0);
const mechanism = z.enum(['XOAUTH2', 'OAUTHBEARER']);

const backendSchema = z
  .object({
    url: z.string().min(1),
    /** Allow plaintext when a non-loopback backend offers no STARTTLS. */
    insecure: z.boolean().optional(),
    tlsVerify: z.boolean().optional(),
    caFile: z.string().min(1).optional(),
    servername: z.string().min(1).optional(),
  })
  .strict();

/** The proxy configuration file (every key optional). */
export const proxyConfigSchema = z
  .object({
    /** Default backend: a URL or the name of an entry in [backends]. */
    backend: z.string().min(1),
    backendInsecure: z.boolean(),
    /** Extra CA file (PEM) trusted for every backend. */
    backendCaFile: z.string().min(1),
    host: z.string().min(1),
    port,
    requireTls: z.boolean(),
    /** Tell backends offering ID the client's address before login (x-originating-ip). */
    forwardClientAddress: z.boolean(),
    preauthTimeout: seconds,
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    debug: z.boolean(),
    tls: z.object({ cert: z.string().min(1), key: z.string().min(1), implicitPort: port }).partial().strict(),
    admin: z.object({ host: z.string().min(1), port }).partial().strict(),
    cache: z
      .object({ expiry: seconds, maxTotal: z.number().int().min(0), maxPerUser: z.number().int().min(0), keepalive: seconds })
      .partial()
      .strict(),
    limits: z.object({ maxLine: z.number().int().min(512), maxLiteral: z.number().int().min(0) }).partial().strict(),
    backends: z.record(z.string(), backendSchema),
    /** User name → backend name or URL. */
    users: z.record(z.string(), z.string().min(1)),
    rules: z.array(z.object({ match: z.string().min(1), backend: z.string().min(1) }).strict()),
    route: z
      .object({ command: z.array(z.string().min(1)).min(1), cacheSeconds: seconds, timeout: seconds })
      .partial()
      .strict(),
    oauth2: z
      .object({
        tokenUrl: z.string().url(),
        clientId: z.string().min(1),
        clientSecret: z.string().min(1),
        clientSecretFile: z.string().min(1),
        mechanism,
        /** passwd-file with the local passwords (scrypt), managed by `imapkit proxy user add`. */
        usersFile: z.string().min(1),
        /** Let users without an OAuth2 account log in with their own password upstream (default true). */
        passthrough: z.boolean(),
        accounts: z.record(
          z.string(),
          z
            .object({
              upstreamUser: z.string().min(1).optional(),
              tokenFile: z.string().min(1),
              backend: z.string().min(1).optional(),
              mechanism: mechanism.optional(),
            })
            .strict(),
        ),
      })
      .partial()
      .strict(),
  })
  .partial()
  .strict();

/** A validated config file. */
export type ProxyConfig = z.infer<typeof proxyConfigSchema>;

/** Command-line flags of `imapkit proxy` (they override the file). */
export interface ProxyFlags {
  backend?: string;
  port?: number;
  host?: string;
  config?: string;
  backendInsecure?: boolean;
  forwardClientAddress?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsPort?: number;
  adminPort?: number;
  adminHost?: string;
  debug?: boolean;
}

/** Defaults when neither flag nor file says otherwise. */
export const PROXY_DEFAULTS = { host: '127.0.0.1', port: 1143, adminHost: '127.0.0.1', adminPort: 9143 };

/** Read and validate a proxy config file. */
export async function loadProxyConfig(file: string): Promise<ProxyConfig> {
  return validateConfig(proxyConfigSchema, await readConfigFile(file), file);
}

/** Everything the CLI needs to start a proxy, built from a config and flags. */
export interface ResolvedProxySetup {
  options: ProxyServerOptions;
  logLevel: string;
  usersFile?: string;
}

/** Build server options from config + flags; throws ConfigError naming the file and key. */
export async function resolveProxySetup(config: ProxyConfig, flags: ProxyFlags, file = '(flags)'): Promise<ResolvedProxySetup> {
  const base = flags.config ? path.dirname(path.resolve(flags.config)) : process.cwd();
  const abs = (p: string): string => path.resolve(base, p);
  const readPem = (p: string, key: string): string => {
    try {
      return readFileSync(abs(p), 'utf8');
    } catch (err) {
      throw new ConfigError(`${file}: ${key}: cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  };
  const globalCa = config.backendCaFile ? readPem(config.backendCaFile, 'backendCaFile') : undefined;
  const insecure = flags.backendInsecure ?? config.backendInsecure ?? false;
  const named = new Map<string, Backend>();
  const parse = (spec: string, key: string, extra: BackendOptions = {}): Backend => {
    try {
      return parseBackendUrl(spec, { insecure, ca: globalCa, ...extra });
    } catch (err) {
      if (err instanceof BackendError) throw new ConfigError(`${file}: ${key}: ${err.message}`);
      throw err;
    }
  };
  for (const [name, b] of Object.entries(config.backends ?? {})) {
    named.set(
      name,
      parse(b.url, `backends.${name}.url`, {
        insecure: b.insecure ?? insecure,
        tlsVerify: b.tlsVerify,
        ca: b.caFile ? readPem(b.caFile, `backends.${name}.caFile`) : globalCa,
        servername: b.servername,
      }),
    );
  }
  const ref = (spec: string, key: string): Backend => named.get(spec) ?? parse(spec, key);

  const backendSpec = flags.backend ?? config.backend;
  const defaultBackend = backendSpec ? ref(backendSpec, flags.backend ? '--backend' : 'backend') : undefined;
  const users = new Map<string, Backend>();
  for (const [user, spec] of Object.entries(config.users ?? {})) users.set(user, ref(spec, `users.${user}`));
  const rules = (config.rules ?? []).map((r, i) => ({ match: r.match, backend: ref(r.backend, `rules.${i}.backend`) }));
  for (const [i, r] of rules.entries()) {
    try {
      compilePattern(r.match);
    } catch {
      throw new ConfigError(`${file}: rules.${i}.match: not a valid pattern or regular expression`);
    }
  }
  const route = config.route ?? {};
  if (!defaultBackend && users.size === 0 && rules.length === 0 && !route.command) {
    throw new ConfigError(`${file}: no backend: give --backend URL or set backend, users, rules or route.command`);
  }
  const router = new Router({
    defaultBackend,
    users,
    rules,
    routeCommand: route.command,
    routeCacheSeconds: route.cacheSeconds,
    routeCommandTimeoutMs: route.timeout !== undefined ? route.timeout * 1000 : undefined,
    backendOptions: { insecure, ca: globalCa },
  });

  const certFile = flags.tlsCert ?? config.tls?.cert;
  const keyFile = flags.tlsKey ?? config.tls?.key;
  if (Boolean(certFile) !== Boolean(keyFile)) throw new ConfigError(`${file}: tls: cert and key go together`);
  const tlsPem = certFile && keyFile ? { cert: readPem(certFile, 'tls.cert'), key: readPem(keyFile, 'tls.key') } : undefined;
  const tlsPort = flags.tlsPort ?? config.tls?.implicitPort;
  if (tlsPort !== undefined && !tlsPem) throw new ConfigError(`${file}: tls.implicitPort needs tls.cert and tls.key`);
  const host = flags.host ?? config.host ?? PROXY_DEFAULTS.host;

  let oauth2: Map<string, OAuth2Account> | undefined;
  let usersFile: string | undefined;
  let passwords: PasswdFileUserDb | undefined;
  const o = config.oauth2;
  if (o) {
    usersFile = o.usersFile ? abs(o.usersFile) : undefined;
    const accounts = Object.entries(o.accounts ?? {});
    if (accounts.length > 0) {
      if (!usersFile) throw new ConfigError(`${file}: oauth2.usersFile: required for OAuth2 accounts (local passwords)`);
      let client: OAuth2Client;
      if (o.clientSecretFile) {
        try {
          client = await readClientSecretFile(abs(o.clientSecretFile), o.tokenUrl);
        } catch (err) {
          throw new ConfigError(`${file}: oauth2.clientSecretFile: ${(err as Error).message}`);
        }
      } else if (o.clientId && o.tokenUrl) {
        client = { clientId: o.clientId, clientSecret: o.clientSecret, tokenUrl: o.tokenUrl };
      } else {
        throw new ConfigError(`${file}: oauth2: give clientSecretFile, or clientId and tokenUrl`);
      }
      oauth2 = new Map();
      for (const [name, a] of accounts) {
        oauth2.set(name, {
          localUser: name,
          upstreamUser: a.upstreamUser ?? name,
          mechanism: a.mechanism ?? o.mechanism ?? 'XOAUTH2',
          tokens: new TokenSource({ tokenFile: abs(a.tokenFile), client }),
          backend: a.backend ? ref(a.backend, `oauth2.accounts.${name}.backend`) : undefined,
        });
      }
    }
    if (usersFile) passwords = new PasswdFileUserDb(usersFile);
  }

  const adminPort = flags.adminPort ?? config.admin?.port;
  const cache = config.cache ?? {};
  const options: ProxyServerOptions = {
    router,
    listen: { host, port: flags.port ?? config.port ?? PROXY_DEFAULTS.port },
    listenTls: tlsPort !== undefined ? { host, port: tlsPort } : undefined,
    tls: tlsPem,
    requireTls: config.requireTls,
    forwardClientAddress: flags.forwardClientAddress ?? config.forwardClientAddress ?? false,
    pool: {
      ...(cache.expiry !== undefined ? { expirySeconds: cache.expiry } : {}),
      ...(cache.maxTotal !== undefined ? { maxTotal: cache.maxTotal } : {}),
      ...(cache.maxPerUser !== undefined ? { maxPerUser: cache.maxPerUser } : {}),
      ...(cache.keepalive !== undefined ? { keepaliveSeconds: cache.keepalive } : {}),
    },
    limits: {
      ...(config.limits?.maxLine !== undefined ? { maxLine: config.limits.maxLine } : {}),
      ...(config.limits?.maxLiteral !== undefined ? { maxLiteral: config.limits.maxLiteral } : {}),
    },
    preauthTimeoutSeconds: config.preauthTimeout,
    oauth2,
    passwords,
    passthrough: o?.passthrough,
    admin: {
      host: flags.adminHost ?? config.admin?.host ?? PROXY_DEFAULTS.adminHost,
      port: adminPort ?? PROXY_DEFAULTS.adminPort,
      optional: adminPort === undefined,
    },
  };
  const debug = flags.debug ?? config.debug ?? false;
  return { options, logLevel: debug ? 'debug' : (config.logLevel ?? 'info'), usersFile };
}
