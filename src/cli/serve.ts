/**
 * `imapkit serve`: run the IMAP server. Every config-file key is also a flag; flags win.
 * `--demo` runs a throw-away server (memory store, demo user, self-signed certificate) on 127.0.0.1.
 */
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { readConfigFile } from '../config/load.js';
import { createLogger, type Logger } from '../log/logger.js';
import { openStore } from '../store/index.js';
import type { MailStore, UserDb } from '../store/contract.js';
import { PasswdFileUserDb } from '../auth/passwd-file.js';
import { ImapServer } from '../server/server.js';
import { LmtpServer } from '../server/lmtp/server.js';
import { formatLmtpAddress } from '../server/lmtp/listen-address.js';
import { dataDir, resolveServeConfig, type ServeConfig, type ServeConfigInput } from '../server/config.js';
import { generateSelfSigned, loadTlsFiles, type TlsMaterial } from '../server/tls.js';
import { DEMO_PASSWORD, DEMO_USER, seedDemo } from '../server/demo.js';

/** Options commander hands to the serve action. */
export interface ServeFlags {
  host?: string;
  port?: number;
  store?: string;
  users?: string;
  config?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsPort?: number;
  allowPlaintextLogin?: boolean;
  logLevel?: string;
  debug?: boolean;
  demo?: boolean;
  maxConnectionsPerAddress?: number;
  maxConnections?: number;
  preAuthTimeoutMs?: number;
  idleTimeoutMs?: number;
  idleCommandTimeoutMs?: number;
  failedLoginDelayMs?: number;
  failedLoginMaxDelayMs?: number;
  appendLimit?: number;
  maxLineLength?: number;
  lmtp?: string;
}

/** Where serve writes its human-readable messages. */
export interface ServeIo {
  stdout: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

/** Parse a non-negative integer flag value. */
export function intArg(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(value);
}

/** Turn flags into the config shape (undefined where not given). */
export function flagsToConfig(flags: ServeFlags): ServeConfigInput {
  const tls =
    flags.tlsCert !== undefined || flags.tlsKey !== undefined || flags.tlsPort !== undefined
      ? { cert: flags.tlsCert, key: flags.tlsKey, implicitPort: flags.tlsPort }
      : undefined;
  return {
    host: flags.host,
    port: flags.port,
    store: flags.store,
    users: flags.users,
    allowPlaintextLogin: flags.allowPlaintextLogin,
    logLevel: flags.logLevel as ServeConfigInput['logLevel'],
    debug: flags.debug,
    lmtp: flags.lmtp,
    tls,
    limits: {
      maxConnectionsPerAddress: flags.maxConnectionsPerAddress,
      maxConnections: flags.maxConnections,
      preAuthTimeoutMs: flags.preAuthTimeoutMs,
      idleTimeoutMs: flags.idleTimeoutMs,
      idleCommandTimeoutMs: flags.idleCommandTimeoutMs,
      failedLoginDelayMs: flags.failedLoginDelayMs,
      failedLoginMaxDelayMs: flags.failedLoginMaxDelayMs,
      appendLimit: flags.appendLimit,
      maxLineLength: flags.maxLineLength,
    },
  };
}

/** Resolve flags + optional config file into the effective configuration. */
export async function loadServeConfig(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): Promise<ServeConfig> {
  const file = flags.config ? { data: await readConfigFile(flags.config), path: flags.config } : undefined;
  const cli = flagsToConfig(flags);
  if (flags.demo) {
    // The demo is local and disposable unless the user says otherwise.
    cli.host ??= '127.0.0.1';
    cli.store ??= 'memory';
  }
  return resolveServeConfig(file, cli, env);
}

/** The user database a config names: the store's own, or a passwd-file. */
export function openUserDb(config: Pick<ServeConfig, 'users'>, store: MailStore | undefined): UserDb {
  if (config.users.startsWith('passwd:')) return new PasswdFileUserDb(config.users.slice('passwd:'.length));
  if (!store?.users) throw new Error(`the store has no user database; use --users passwd:PATH`);
  return store.users;
}

/** A running `imapkit serve`. */
export interface RunningServer {
  server: ImapServer;
  store: MailStore;
  port: number;
  tlsPort?: number;
  /** The LMTP listener, when `lmtp` is configured. */
  lmtp?: LmtpServer;
  stop(): Promise<void>;
}

/** Start the server described by `flags` (does not install signal handlers). */
export async function startServe(flags: ServeFlags, io: ServeIo = { stdout: process.stdout, env: process.env }, log?: Logger): Promise<RunningServer> {
  const config = await loadServeConfig(flags, io.env);
  const logger = log ?? createLogger({ level: config.logLevel });
  const store = await openStore(config.store);
  try {
    if (flags.demo) await seedDemo(store);
    const users = openUserDb(config, store);
    let tls: (TlsMaterial & { implicitPort?: number }) | undefined;
    if (config.tls) tls = { ...(await loadTlsFiles(config.tls.cert, config.tls.key)), implicitPort: config.tls.implicitPort };
    else if (flags.demo) {
      // A self-signed pair kept in the data directory, so clients see the same one each run.
      tls = await generateSelfSigned(join(dataDir(io.env), 'demo-tls'));
    }
    const server = new ImapServer({
      store,
      users,
      host: config.host,
      port: config.port,
      tls,
      allowPlaintextLogin: config.allowPlaintextLogin,
      limits: config.limits,
      log: logger,
      debug: config.debug,
    });
    const info = await server.listen();
    let lmtp: LmtpServer | undefined;
    let lmtpNote = '';
    if (config.lmtp) {
      // The same store object as the IMAP server: its watch() listeners tell IDLE sessions at once.
      lmtp = new LmtpServer({ store, users, listen: config.lmtp, log: logger, debug: config.debug, maxMessageSize: config.limits.appendLimit });
      try {
        lmtpNote = `; LMTP on ${formatLmtpAddress(await lmtp.listen())}`;
      } catch (err) {
        await server.close();
        throw new Error(`LMTP on ${formatLmtpAddress(config.lmtp)}: ${(err as Error).message}`);
      }
    }
    if (flags.demo) {
      io.stdout.write(
        [
          `imapkit demo server listening on ${info.host}:${info.port} (STARTTLS with a self-signed certificate${info.tlsPort ? `; IMAPS on ${info.tlsPort}` : ''})`,
          `  user: ${DEMO_USER}   password: ${DEMO_PASSWORD}   (memory store: everything is gone when it stops)`,
          '  try it:',
          `    curl --url "imap://${info.host}:${info.port}/INBOX;UID=1" --user ${DEMO_USER}:${DEMO_PASSWORD}`,
          `    openssl s_client -quiet -starttls imap -connect ${info.host}:${info.port}`,
          `  or point a mail client at ${info.host}, port ${info.port}, STARTTLS, user ${DEMO_USER}.`,
          ...(lmtpNote ? [`  deliveries: LMTP on ${formatLmtpAddress(lmtp!.address)}`] : []),
          '',
        ].join('\n'),
      );
    } else {
      io.stdout.write(`imapkit serving ${config.store} on ${info.host}:${info.port}${info.tlsPort ? ` (IMAPS on ${info.tlsPort})` : ''}${lmtpNote}\n`);
    }
    return {
      server,
      store,
      port: info.port,
      tlsPort: info.tlsPort,
      ...(lmtp ? { lmtp } : {}),
      stop: async () => {
        // LMTP first: messages it already received are stored before the store closes.
        await lmtp?.close();
        await server.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
}

/** Register `imapkit serve`. */
export function register(program: Command): void {
  program
    .command('serve')
    .description('run the IMAP server (SQLite store under the XDG data directory, port 1143, unless told otherwise)')
    .option('--host <address>', 'address to listen on (default 0.0.0.0; 127.0.0.1 with --demo)')
    .option('--port <port>', 'plain/STARTTLS port (default 1143)', intArg)
    .option('--store <spec>', 'memory | sqlite:PATH | maildir:PATH (%u = user) (default sqlite under $XDG_DATA_HOME/imapkit)')
    .option('--users <source>', 'user database: store (default) or passwd:PATH')
    .option('--config <file>', 'config file (TOML, or a .js/.ts module)')
    .option('--tls-cert <file>', 'PEM certificate: enables STARTTLS')
    .option('--tls-key <file>', 'PEM private key')
    .option('--tls-port <port>', 'also listen for implicit TLS (IMAPS) on this port', intArg)
    .option('--allow-plaintext-login', 'allow LOGIN/AUTHENTICATE without TLS from non-loopback clients')
    .option('--log-level <level>', 'fatal | error | warn | info | debug | trace | silent')
    .option('--debug', 'log a protocol trace (passwords are never logged)')
    .option('--demo', 'memory store with demo user demouser/demopass and demo mail, on 127.0.0.1')
    .option('--max-connections-per-address <n>', 'connections allowed from one address (0: unlimited)', intArg)
    .option('--max-connections <n>', 'connections allowed in total (0: unlimited)', intArg)
    .option('--pre-auth-timeout-ms <ms>', 'inactivity allowed before login', intArg)
    .option('--idle-timeout-ms <ms>', 'inactivity allowed after login (at least 30 minutes per RFC)', intArg)
    .option('--idle-command-timeout-ms <ms>', 'longest IDLE without client traffic', intArg)
    .option('--failed-login-delay-ms <ms>', 'delay after a failed login, doubling per failure', intArg)
    .option('--failed-login-max-delay-ms <ms>', 'ceiling of the failed-login delay', intArg)
    .option('--append-limit <bytes>', 'largest message APPEND accepts (APPENDLIMIT)', intArg)
    .option('--max-line-length <bytes>', 'longest command line outside literals', intArg)
    .option('--lmtp <address>', 'also accept deliveries by LMTP from an MTA: PORT (on 127.0.0.1), HOST:PORT or /path/to/unix-socket')
    .action(async (flags: ServeFlags) => {
      let running: RunningServer;
      try {
        running = await startServe(flags);
      } catch (err) {
        // Config and startup problems are the user's to fix: say what, without a stack trace.
        process.stderr.write(`imapkit serve: ${(err as Error).message}\n`);
        process.exitCode = 1;
        return;
      }
      let stopping = false;
      const stop = (): void => {
        if (stopping) return;
        stopping = true;
        void running.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}
