/**
 * `imapkit proxy`: run the caching, routing, OAuth2-translating IMAP proxy; `imapkit proxy stats`
 * prints its statistics; `imapkit proxy user add|remove NAME` manages local passwords for OAuth2
 * translation.
 */
import { promptHidden } from './user.js';
import { InvalidArgumentError, type Command } from 'commander';
import { createInterface } from 'node:readline';
import { ConfigError } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { PasswdFileUserDb } from '../auth/passwd-file.js';
import { ProxyServer } from '../proxy/server.js';
import { loadProxyConfig, resolveProxySetup, type ProxyConfig, type ProxyFlags } from '../proxy/config.js';
import { fetchStats } from '../proxy/admin.js';
import { formatStatsTable } from '../proxy/stats.js';

function portArg(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
}

/** Run a proxy until SIGINT/SIGTERM. */
export async function runProxy(flags: ProxyFlags): Promise<ProxyServer> {
  const config: ProxyConfig = flags.config ? await loadProxyConfig(flags.config) : {};
  const setup = await resolveProxySetup(config, flags, flags.config ?? '(command line)');
  const log = createLogger({ level: setup.logLevel, name: 'imapkit-proxy' });
  const server = new ProxyServer({ ...setup.options, log });
  await server.start();
  const stop = (signal: string): void => {
    log.info({ signal }, 'stopping');
    void server.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return server;
}

async function readPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    // Non-interactive: the first line of standard input.
    const rl = createInterface({ input: stdin });
    for await (const line of rl) {
      rl.close();
      return line;
    }
    return '';
  }
  return promptHidden({ stdin, stdout: process.stdout, stderr: process.stderr, env: process.env }, prompt);
}

async function usersFileFrom(opts: { config?: string; usersFile?: string }): Promise<string> {
  if (opts.usersFile) return opts.usersFile;
  if (opts.config) {
    const setup = await resolveProxySetup(await loadProxyConfig(opts.config), { config: opts.config, backend: 'imap://127.0.0.1' }, opts.config);
    if (setup.usersFile) return setup.usersFile;
  }
  throw new ConfigError('no users file: give --users-file FILE, or --config FILE with oauth2.usersFile');
}

function fail(err: unknown): never {
  console.error(`imapkit proxy: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(err instanceof ConfigError ? 78 : 1);
}

/** Register `imapkit proxy` and its subcommands. */
export function register(program: Command): void {
  const proxy = program
    .command('proxy')
    .description('IMAP proxy: caches upstream connections, routes users to backends, turns local passwords into OAuth2')
    .option('--backend <url>', 'default backend: imaps://host:993, or imap://host:143 (STARTTLS where offered)')
    .option('--port <port>', 'listen port (default 1143)', portArg)
    .option('--host <address>', 'listen address (default 127.0.0.1)')
    .option('--config <file>', 'TOML config file (routing, cache, OAuth2 accounts); flags override it')
    .option('--backend-insecure', 'allow plaintext to a non-loopback backend that offers no STARTTLS')
    .option('--forward-client-address', "send the client's address to backends that offer ID, before login (Dovecot: list the proxy in login_trusted_networks)")
    .option('--tls-cert <file>', 'certificate (PEM) for STARTTLS and --tls-port')
    .option('--tls-key <file>', 'private key (PEM)')
    .option('--tls-port <port>', 'also listen with implicit TLS on this port', portArg)
    .option('--admin-port <port>', 'admin HTTP port for /metrics and /stats (default 9143; 0: any free port)', portArg)
    .option('--admin-host <address>', 'admin HTTP address (default 127.0.0.1)')
    .option('--debug', 'debug logging (protocol events; never passwords or tokens)')
    .action(async (opts: ProxyFlags) => {
      try {
        await runProxy(opts);
      } catch (err) {
        fail(err);
      }
    });

  proxy
    .command('stats')
    .description("print a running proxy's statistics (active and cached connections, hits, misses, per backend)")
    .option('--admin <url>', 'admin URL of the proxy', 'http://127.0.0.1:9143')
    .option('--json', 'print JSON')
    .action(async (opts: { admin: string; json?: boolean }) => {
      try {
        const s = await fetchStats(opts.admin);
        process.stdout.write(opts.json ? JSON.stringify(s, null, 2) + '\n' : formatStatsTable(s));
      } catch (err) {
        fail(err);
      }
    });

  const user = proxy.command('user').description('local passwords (scrypt) of OAuth2-translated accounts');
  user
    .command('add <name>')
    .description('set the local password of NAME (asks for it; reads one line when stdin is not a terminal)')
    .option('--config <file>', 'proxy config file (its oauth2.usersFile)')
    .option('--users-file <file>', 'passwd-file of local users')
    .action(async (name: string, opts: { config?: string; usersFile?: string }) => {
      try {
        const db = new PasswdFileUserDb(await usersFileFrom(opts));
        const password = await readPassword(`password for ${name}: `);
        if (password === '') throw new Error('empty password refused');
        if ((await db.listUsers()).includes(name)) await db.setPassword(name, password);
        else await db.addUser(name, password);
        console.error(`imapkit proxy: password of ${name} set in ${db.path}`);
      } catch (err) {
        fail(err);
      }
    });
  user
    .command('remove <name>')
    .description('remove NAME from the local users file')
    .option('--config <file>', 'proxy config file (its oauth2.usersFile)')
    .option('--users-file <file>', 'passwd-file of local users')
    .action(async (name: string, opts: { config?: string; usersFile?: string }) => {
      try {
        const db = new PasswdFileUserDb(await usersFileFrom(opts));
        await db.deleteUser(name);
        console.error(`imapkit proxy: ${name} removed from ${db.path}`);
      } catch (err) {
        fail(err);
      }
    });
}
