/**
 * `imapkit auth login`: sign in to an OAuth2 provider (Google, Microsoft, or any other) for IMAP and
 * store the tokens in a file with mode 0600, for `imapkit forward`, `sync` and `proxy` to use.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { login, openBrowser, isProviderName, type ProviderName } from '../auth/login/index.js';

function portArg(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
}

/** Flags of `imapkit auth login`. */
export interface AuthLoginFlags {
  provider: string;
  clientSecret: string;
  token: string;
  device?: boolean;
  browser?: boolean;
  port?: number;
  loginHint?: string;
  scope?: string;
  authUrl?: string;
  tokenUrl?: string;
  deviceUrl?: string;
}

/** Run `imapkit auth login` with parsed flags; resolves to the process exit code. */
export async function runAuthLogin(flags: AuthLoginFlags): Promise<number> {
  if (!isProviderName(flags.provider)) {
    console.error(`imapkit auth login: unknown provider ${JSON.stringify(flags.provider)} (google, microsoft or custom)`);
    return 64;
  }
  const print = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  try {
    await login({
      provider: flags.provider as ProviderName,
      clientSecretFile: flags.clientSecret,
      tokenFile: flags.token,
      device: flags.device,
      port: flags.port,
      loginHint: flags.loginHint,
      endpoints: { scope: flags.scope, authUrl: flags.authUrl, tokenUrl: flags.tokenUrl, deviceUrl: flags.deviceUrl },
      print,
      openBrowser: flags.browser === false ? undefined : (url) => openBrowser(url),
      // A pasted address only makes sense when someone is at a terminal.
      pasteInput: process.stdin.isTTY ? process.stdin : undefined,
    });
    print(`Signed in. Tokens written to ${flags.token} (mode 0600).`);
    return 0;
  } catch (err) {
    print(`imapkit auth login: ${(err as Error).message}`);
    return 1;
  } finally {
    if (process.stdin.isTTY) process.stdin.pause();
  }
}

/** Register `imapkit auth` and its subcommands. */
export function register(program: Command): void {
  const auth = program.command('auth').description('OAuth2 sign-in for IMAP accounts (Gmail, Microsoft 365, others)');
  auth
    .command('login')
    .description('sign in with a browser (loopback redirect, PKCE) or a device code, and store the tokens (mode 0600)')
    .addOption(new Option('--provider <name>', 'identity provider').choices(['google', 'microsoft', 'custom']).default('google'))
    .requiredOption('--client-secret <file>', 'OAuth client JSON (Google: the file downloaded from the Cloud console)')
    .requiredOption('--token <file>', 'where to write the tokens')
    .option('--device', 'device-code flow: for a machine with no browser (Microsoft, custom; Google does not allow it for Gmail)')
    .option('--no-browser', 'do not try to open a browser; print the address instead')
    .option('--port <port>', 'loopback port for the redirect (default: any free port; fix it to forward it over SSH)', portArg)
    .option('--login-hint <address>', 'account to suggest on the sign-in page')
    .option('--scope <scopes>', "override the provider's scope")
    .option('--auth-url <url>', 'authorization endpoint (custom providers)')
    .option('--token-url <url>', 'token endpoint (custom providers)')
    .option('--device-url <url>', 'device authorization endpoint (custom providers)')
    .action(async (flags: AuthLoginFlags) => {
      process.exitCode = await runAuthLogin(flags);
    });
}
