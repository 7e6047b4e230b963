/**
 * The installed-app flow (RFC 8252): authorization code with PKCE (RFC 7636), redirected to a
 * listener on the loopback interface. When the browser runs on another machine the redirect
 * cannot reach us; the user may then paste the address the browser ended up on.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { OAuth2Error, type FetchLike } from '../oauth2/client.js';
import type { TokenSet } from '../oauth2/token-file.js';
import { createPkce, randomState } from './pkce.js';
import type { ResolvedProvider } from './providers.js';
import { clientFields, postForm, tokenSetFromAnswer } from './token-request.js';

/** Options of installedAppLogin. */
export interface InstalledAppOptions {
  provider: ResolvedProvider;
  /** Loopback port to listen on (default 0: any free port; fix one to tunnel it over SSH). */
  port?: number;
  /** Opens the URL; resolves false when no browser could be opened. */
  openBrowser?: (url: string) => Promise<boolean>;
  /** Prints one line of instructions for the user. */
  print: (line: string) => void;
  /** Where a pasted redirect address may arrive (usually stdin when it is a terminal). */
  pasteInput?: NodeJS.ReadableStream;
  /** Suggests the account to the provider's sign-in page. */
  loginHint?: string;
  fetch?: FetchLike;
  now?: () => number;
  /** Give up after this long (default 10 minutes). */
  timeoutMs?: number;
  /** Called with the authorization URL once the listener runs (tests drive the "browser" with it). */
  onAuthUrl?: (url: string) => void;
}

/** The authorization request URL (RFC 6749 4.1.1 plus PKCE and provider extras). */
export function authorizationUrl(p: ResolvedProvider, redirectUri: string, state: string, challenge: string, loginHint?: string): string {
  if (!p.authUrl) throw new OAuth2Error(`provider ${p.name}: no authorization endpoint (give --auth-url or auth_uri in the client secret file)`);
  if (!p.scope) throw new OAuth2Error(`provider ${p.name}: no scope (give --scope or scope in the client secret file)`);
  const u = new URL(p.authUrl);
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: p.client.clientId,
    redirect_uri: redirectUri,
    scope: p.scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(p.extraAuthParams ?? {}),
  };
  if (loginHint) params.login_hint = loginHint;
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

const PAGE = (title: string, text: string): string =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title><body style="font-family:sans-serif;margin:3em"><h1>${title}</h1><p>${text}</p></body>`;

/** Result of the redirect: the code, or the provider's error. */
type Redirect = { code: string } | { error: string; description?: string };

function parseRedirect(params: URLSearchParams, state: string): Redirect | 'wrong-state' | 'not-a-redirect' {
  const code = params.get('code');
  const error = params.get('error');
  if (!code && !error) return 'not-a-redirect';
  // A redirect with another state is not ours (or forged, RFC 6749 10.12): ignore it.
  if (params.get('state') !== state) return 'wrong-state';
  if (error) return { error, description: params.get('error_description') ?? undefined };
  return { code: code! };
}

/** Run the installed-app flow and return the tokens (the caller stores them). */
export async function installedAppLogin(opts: InstalledAppOptions): Promise<TokenSet> {
  const p = opts.provider;
  if (!p.tokenUrl) throw new OAuth2Error(`provider ${p.name}: no token endpoint`);
  const pkce = createPkce();
  const state = randomState();
  const servers: http.Server[] = [];
  let settle!: (r: Redirect) => void;
  let fail!: (e: Error) => void;
  const redirected = new Promise<Redirect>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const r = parseRedirect(url.searchParams, state);
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('connection', 'close');
    if (r === 'not-a-redirect') {
      res.writeHead(404).end(PAGE('Not found', 'This address only receives the sign-in redirect of imapkit auth login.'));
      return;
    }
    if (r === 'wrong-state') {
      res.writeHead(400).end(PAGE('Not this login', 'This redirect does not belong to the running imapkit auth login (state mismatch).'));
      return;
    }
    if ('error' in r) res.writeHead(200).end(PAGE('Sign-in refused', `The provider answered: ${escapeHtml(r.error)}. You can close this tab.`));
    else res.writeHead(200).end(PAGE('Signed in', 'imapkit received the authorization. You can close this tab.'));
    settle(r);
  };

  const first = http.createServer(handler);
  servers.push(first);
  await new Promise<void>((resolve, reject) => {
    first.once('error', (e) => reject(new OAuth2Error(`cannot listen on 127.0.0.1:${opts.port ?? 0}: ${e.message}`)));
    first.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (first.address() as AddressInfo).port;
  const host = p.redirectHost ?? '127.0.0.1';
  if (host === 'localhost') {
    // The browser may resolve localhost to ::1 (RFC 8252 8.3): listen there too when we can.
    const second = http.createServer(handler);
    await new Promise<void>((resolve) => {
      second.once('error', () => resolve());
      second.listen(port, '::1', () => {
        servers.push(second);
        resolve();
      });
    });
  }
  const redirectUri = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  const authUrl = authorizationUrl(p, redirectUri, state, pkce.challenge, opts.loginHint);

  let rl: ReturnType<typeof createInterface> | undefined;
  const timer = setTimeout(() => fail(new OAuth2Error('no sign-in within the time allowed; run imapkit auth login again', 'timeout')), opts.timeoutMs ?? 600_000);
  try {
    opts.onAuthUrl?.(authUrl);
    const opened = opts.openBrowser ? await opts.openBrowser(authUrl).catch(() => false) : false;
    opts.print(opened ? 'A browser window was opened to sign in. If it did not appear, open this address:' : 'Open this address in a browser to sign in:');
    opts.print('');
    opts.print(`  ${authUrl}`);
    opts.print('');
    opts.print(`Waiting for the sign-in redirect on ${redirectUri}`);
    if (opts.pasteInput) {
      opts.print('(Browser on another machine? After signing in, paste here the address it could not open.)');
      rl = createInterface({ input: opts.pasteInput });
      rl.on('line', (line) => {
        const t = line.trim();
        if (!t) return;
        let params: URLSearchParams;
        try {
          params = new URL(t).searchParams;
        } catch {
          params = new URLSearchParams(t.replace(/^[^?]*\?/, ''));
        }
        const r = parseRedirect(params, state);
        if (r === 'not-a-redirect' || r === 'wrong-state') opts.print(r === 'wrong-state' ? 'That address belongs to another login (state mismatch); try again.' : 'That address holds no code; paste the whole address from the browser.');
        else settle(r);
      });
    }
    const r = await redirected;
    if ('error' in r) throw new OAuth2Error(`sign-in refused: ${r.error}${r.description ? ` (${r.description.slice(0, 200)})` : ''}`, r.error);
    const answer = await postForm(p.tokenUrl, {
      grant_type: 'authorization_code',
      code: r.code,
      redirect_uri: redirectUri,
      code_verifier: pkce.verifier,
      ...clientFields(p.client),
    }, { fetch: opts.fetch });
    return tokenSetFromAnswer(answer, p.tokenUrl, (opts.now ?? Date.now)());
  } finally {
    clearTimeout(timer);
    rl?.close();
    for (const s of servers) {
      s.closeAllConnections?.();
      s.close();
    }
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
