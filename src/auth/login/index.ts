/**
 * `imapkit auth login`: obtain OAuth2 tokens for IMAP through the installed-app flow (loopback
 * redirect, PKCE) or the device flow, and store them with the shared token store (mode 0600,
 * atomic replace).
 */
import { OAuth2Error, type FetchLike } from '../oauth2/client.js';
import { writeTokenFile, type TokenSet } from '../oauth2/token-file.js';
import { deviceLogin } from './device.js';
import { installedAppLogin } from './installed-app.js';
import { resolveProvider, type ProviderEndpoints, type ProviderName } from './providers.js';

export * from './providers.js';
export * from './pkce.js';
export * from './installed-app.js';
export * from './device.js';
export { openBrowser, browserCommand } from './browser.js';

/** Options of login. */
export interface LoginOptions {
  provider: ProviderName;
  clientSecretFile: string;
  tokenFile: string;
  /** Device flow instead of the browser flow. */
  device?: boolean;
  /** Overrides of the provider's endpoints and scope (required pieces for `custom`). */
  endpoints?: ProviderEndpoints;
  port?: number;
  loginHint?: string;
  print: (line: string) => void;
  openBrowser?: (url: string) => Promise<boolean>;
  pasteInput?: NodeJS.ReadableStream;
  fetch?: FetchLike;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  timeoutMs?: number;
  onAuthUrl?: (url: string) => void;
}

/** Run a login flow and write the token file; returns the tokens written. */
export async function login(opts: LoginOptions): Promise<TokenSet> {
  const provider = await resolveProvider(opts.provider, opts.clientSecretFile, opts.endpoints);
  const tokens = opts.device
    ? await deviceLogin({ provider, print: opts.print, fetch: opts.fetch, now: opts.now, sleep: opts.sleep })
    : await installedAppLogin({
        provider,
        print: opts.print,
        port: opts.port,
        openBrowser: opts.openBrowser,
        pasteInput: opts.pasteInput,
        loginHint: opts.loginHint,
        fetch: opts.fetch,
        now: opts.now,
        timeoutMs: opts.timeoutMs,
        onAuthUrl: opts.onAuthUrl,
      });
  if (!tokens.refresh_token) {
    // Without a refresh token the forward stops working within the hour: refuse rather than pretend.
    throw new OAuth2Error('the provider returned no refresh token (Google: the consent screen must ask for offline access; Microsoft: include offline_access in the scope)', 'no_refresh_token');
  }
  await writeTokenFile(opts.tokenFile, tokens);
  return tokens;
}
