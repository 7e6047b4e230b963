/**
 * OAuth2 client settings (client id, secret, token endpoint) and the refresh-token grant
 * (RFC 6749 6). Error messages carry the endpoint's error code, never a token or secret.
 */
import { readFile } from 'node:fs/promises';
import type { TokenSet } from './token-file.js';

/** Who we are at the token endpoint. */
export interface OAuth2Client {
  clientId: string;
  /** Absent for public clients (installed apps with PKCE). */
  clientSecret?: string;
  tokenUrl: string;
}

/** An OAuth2 endpoint refused or failed; `code` is its `error` field when it sent one. */
export class OAuth2Error extends Error {
  constructor(
    message: string,
    readonly code?: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'OAuth2Error';
  }
}

/**
 * Read a client-secret file: Google's download format (`{"installed": {...}}` or `{"web": {...}}`)
 * or a flat object with client_id, client_secret and token_uri/token_url.
 */
export async function readClientSecretFile(file: string, fallbackTokenUrl?: string): Promise<OAuth2Client> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new OAuth2Error(`${file}: ${code ? `cannot read: ${code}` : 'not valid JSON'}`);
  }
  return clientFromJson(data, file, fallbackTokenUrl);
}

/** Interpret client-secret JSON (see readClientSecretFile). */
export function clientFromJson(data: unknown, file: string, fallbackTokenUrl?: string): OAuth2Client {
  if (!data || typeof data !== 'object') throw new OAuth2Error(`${file}: expected a JSON object`);
  const top = data as Record<string, unknown>;
  const inner = (top.installed ?? top.web ?? top) as Record<string, unknown>;
  const clientId = inner.client_id;
  const clientSecret = inner.client_secret;
  const tokenUrl = inner.token_uri ?? inner.token_url ?? fallbackTokenUrl;
  if (typeof clientId !== 'string' || clientId === '') throw new OAuth2Error(`${file}: client_id missing`);
  if (clientSecret !== undefined && typeof clientSecret !== 'string') throw new OAuth2Error(`${file}: client_secret must be a string`);
  if (typeof tokenUrl !== 'string' || tokenUrl === '') throw new OAuth2Error(`${file}: token_uri missing`);
  return { clientId, clientSecret: clientSecret as string | undefined, tokenUrl };
}

/** The fetch function used for HTTP (injectable for tests). */
export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal }) => Promise<{
  ok: boolean;
  status: number;
  text(): Promise<string>;
}>;

/** Exchange a refresh token for a new access token; keeps the old refresh token if none is returned. */
export async function refreshTokens(
  client: OAuth2Client,
  current: TokenSet,
  opts: { fetch?: FetchLike; now?: () => number; timeoutMs?: number } = {},
): Promise<TokenSet> {
  if (!current.refresh_token) throw new OAuth2Error('no refresh_token: log in again to obtain one', 'no_refresh_token');
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: current.refresh_token, client_id: client.clientId });
  if (client.clientSecret) form.set('client_secret', client.clientSecret);
  const doFetch = opts.fetch ?? (globalThis.fetch as unknown as FetchLike);
  const signal = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
  let res: Awaited<ReturnType<FetchLike>>;
  try {
    res = await doFetch(client.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      signal,
    });
  } catch (err) {
    throw new OAuth2Error(`token endpoint ${safeUrl(client.tokenUrl)} unreachable: ${(err as Error).message}`, 'network');
  }
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* handled below */
  }
  if (!res.ok || typeof body.access_token !== 'string') {
    const code = typeof body.error === 'string' ? body.error : undefined;
    throw new OAuth2Error(`token endpoint ${safeUrl(client.tokenUrl)} refused the refresh (HTTP ${res.status}${code ? `, ${code}` : ''})`, code, res.status);
  }
  const now = (opts.now ?? Date.now)();
  const next: TokenSet = { ...current, access_token: body.access_token };
  if (typeof body.refresh_token === 'string' && body.refresh_token) next.refresh_token = body.refresh_token;
  const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : typeof body.expires_in === 'string' ? Number(body.expires_in) : NaN;
  if (Number.isFinite(expiresIn)) next.expires_at = Math.floor(now / 1000) + expiresIn;
  else delete next.expires_at;
  if (typeof body.token_type === 'string') next.token_type = body.token_type;
  if (typeof body.scope === 'string') next.scope = body.scope;
  return next;
}

/** A URL without its query string or credentials, fit for messages. */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
