/**
 * Form POSTs to a token or device endpoint and the shape of their JSON answers. Errors name the
 * endpoint and the provider's error code, never a code, token or secret.
 */
import { OAuth2Error, type FetchLike, type OAuth2Client } from '../oauth2/client.js';
import type { TokenSet } from '../oauth2/token-file.js';

/** A parsed endpoint answer: HTTP status and the JSON object (empty when the body was not JSON). */
export interface EndpointAnswer {
  status: number;
  ok: boolean;
  body: Record<string, unknown>;
}

/** A URL without query or credentials, fit for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** POST form fields and parse the JSON answer; network failures become OAuth2Error('network'). */
export async function postForm(url: string, fields: Record<string, string>, opts: { fetch?: FetchLike; timeoutMs?: number } = {}): Promise<EndpointAnswer> {
  const doFetch = opts.fetch ?? (globalThis.fetch as unknown as FetchLike);
  let res: Awaited<ReturnType<FetchLike>>;
  try {
    res = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(fields).toString(),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    });
  } catch (err) {
    throw new OAuth2Error(`${safeUrl(url)} unreachable: ${(err as Error).message}`, 'network');
  }
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    // Some endpoints answer errors in HTML; the status tells enough.
  }
  return { status: res.status, ok: res.ok, body };
}

/** Client authentication fields: client_id always, client_secret when the client has one. */
export function clientFields(client: OAuth2Client): Record<string, string> {
  const out: Record<string, string> = { client_id: client.clientId };
  if (client.clientSecret) out.client_secret = client.clientSecret;
  return out;
}

/** Turn a successful token response (RFC 6749 5.1) into a TokenSet with absolute expires_at. */
export function tokenSetFromAnswer(answer: EndpointAnswer, url: string, now: number): TokenSet {
  const b = answer.body;
  if (!answer.ok || typeof b.access_token !== 'string' || b.access_token === '') {
    const code = typeof b.error === 'string' ? b.error : undefined;
    const desc = typeof b.error_description === 'string' ? `: ${b.error_description.slice(0, 200)}` : '';
    throw new OAuth2Error(`token endpoint ${safeUrl(url)} refused (HTTP ${answer.status}${code ? `, ${code}` : ''})${desc}`, code, answer.status);
  }
  const out: TokenSet = { access_token: b.access_token };
  if (typeof b.refresh_token === 'string' && b.refresh_token) out.refresh_token = b.refresh_token;
  const expiresIn = typeof b.expires_in === 'number' ? b.expires_in : typeof b.expires_in === 'string' ? Number(b.expires_in) : NaN;
  if (Number.isFinite(expiresIn)) out.expires_at = Math.floor(now / 1000) + expiresIn;
  if (typeof b.token_type === 'string') out.token_type = b.token_type;
  if (typeof b.scope === 'string') out.scope = b.scope;
  return out;
}
