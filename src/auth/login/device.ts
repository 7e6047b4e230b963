/**
 * The device authorization grant (RFC 8628) for machines with no browser: show a short code and an
 * address to open on any other device, then poll the token endpoint until the user approves.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { OAuth2Error, type FetchLike } from '../oauth2/client.js';
import type { TokenSet } from '../oauth2/token-file.js';
import type { ResolvedProvider } from './providers.js';
import { clientFields, postForm, safeUrl, tokenSetFromAnswer } from './token-request.js';

/** RFC 8628 3.4: the grant type of device-code polling. */
export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** The device authorization response (RFC 8628 3.2), normalised. */
export interface DeviceCode {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  /** Seconds the codes stay valid. */
  expiresIn: number;
  /** Seconds between polls (default 5, RFC 8628 3.2). */
  interval: number;
}

/** Options of deviceLogin. */
export interface DeviceLoginOptions {
  provider: ResolvedProvider;
  print: (line: string) => void;
  fetch?: FetchLike;
  now?: () => number;
  /** Waits between polls (injectable so tests need not wait seconds). */
  sleep?: (ms: number) => Promise<void>;
}

/** Ask the device authorization endpoint for a device code and a user code. */
export async function requestDeviceCode(p: ResolvedProvider, fetch?: FetchLike): Promise<DeviceCode> {
  if (!p.deviceUrl) throw new OAuth2Error(`provider ${p.name}: no device authorization endpoint (give --device-url or device_authorization_uri in the client secret file)`);
  if (!p.scope) throw new OAuth2Error(`provider ${p.name}: no scope`);
  // Only client_id and scope: the device endpoint authenticates no one (RFC 8628 3.1).
  const a = await postForm(p.deviceUrl, { client_id: p.client.clientId, scope: p.scope }, { fetch });
  const b = a.body;
  // Google calls it verification_url; RFC 8628 says verification_uri.
  const uri = b.verification_uri ?? b.verification_url;
  if (!a.ok || typeof b.device_code !== 'string' || typeof b.user_code !== 'string' || typeof uri !== 'string') {
    const code = typeof b.error === 'string' ? b.error : undefined;
    const hint = code === 'invalid_scope' && p.name === 'google'
      ? ": Google's device flow does not allow the Gmail scope; use the browser flow (without --device), tunnelling the loopback port over SSH or pasting the final address"
      : '';
    throw new OAuth2Error(`device endpoint ${safeUrl(p.deviceUrl)} refused (HTTP ${a.status}${code ? `, ${code}` : ''})${hint}`, code, a.status);
  }
  const num = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : d);
  return {
    deviceCode: b.device_code,
    userCode: b.user_code,
    verificationUri: uri,
    verificationUriComplete: typeof b.verification_uri_complete === 'string' ? b.verification_uri_complete : undefined,
    expiresIn: num(b.expires_in, 1800),
    interval: Math.max(1, num(b.interval, 5)),
  };
}

/** Run the device flow: prints the instructions, polls, returns the tokens. */
export async function deviceLogin(opts: DeviceLoginOptions): Promise<TokenSet> {
  const p = opts.provider;
  if (!p.tokenUrl) throw new OAuth2Error(`provider ${p.name}: no token endpoint`);
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => delay(ms));
  const dc = await requestDeviceCode(p, opts.fetch);
  opts.print(`On any device with a browser, open ${dc.verificationUri}`);
  opts.print(`and enter the code:  ${dc.userCode}`);
  if (dc.verificationUriComplete) opts.print(`(or open ${dc.verificationUriComplete} directly)`);
  opts.print('Waiting for approval...');
  const deadline = now() + dc.expiresIn * 1000;
  let interval = dc.interval;
  for (;;) {
    await sleep(interval * 1000);
    if (now() > deadline) throw new OAuth2Error('the code expired before it was approved; run imapkit auth login again', 'expired_token');
    const a = await postForm(p.tokenUrl, { grant_type: DEVICE_GRANT, device_code: dc.deviceCode, ...clientFields(p.client) }, { fetch: opts.fetch });
    const err = typeof a.body.error === 'string' ? a.body.error : undefined;
    if (err === 'authorization_pending') continue;
    if (err === 'slow_down') {
      // RFC 8628 3.5: add 5 seconds to the interval for this and all later polls.
      interval += 5;
      continue;
    }
    if (err === 'access_denied') throw new OAuth2Error('the sign-in was refused on the other device', err, a.status);
    if (err === 'expired_token') throw new OAuth2Error('the code expired before it was approved; run imapkit auth login again', err, a.status);
    return tokenSetFromAnswer(a, p.tokenUrl, now());
  }
}
