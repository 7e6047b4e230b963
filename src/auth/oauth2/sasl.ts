/**
 * SASL initial responses for OAuth2 bearer tokens: XOAUTH2 (Google's format) and OAUTHBEARER
 * (RFC 7628). Both carry the token in clear inside base64: callers must never log the result.
 */

/** The raw XOAUTH2 client response: `user=<user>^Aauth=Bearer <token>^A^A`. */
export function xoauth2Raw(user: string, accessToken: string): string {
  return `user=${user}\x01auth=Bearer ${accessToken}\x01\x01`;
}

/** XOAUTH2 client response, base64 (what goes after `AUTHENTICATE XOAUTH2 `). */
export function xoauth2Base64(user: string, accessToken: string): string {
  return Buffer.from(xoauth2Raw(user, accessToken), 'utf8').toString('base64');
}

/** RFC 5801 saslname: `,` and `=` must be escaped inside the gs2 header's authzid. */
export function gs2SaslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** Options of an OAUTHBEARER response: host and port are optional per RFC 7628 3.1. */
export interface OAuthBearerOptions {
  host?: string;
  port?: number;
}

/** The raw OAUTHBEARER client response (RFC 7628 3.1): gs2 header, then kvpairs separated by ^A. */
export function oauthBearerRaw(user: string, accessToken: string, opts: OAuthBearerOptions = {}): string {
  // gs2-header: no channel binding ("n"), authzid = the user, empty third field.
  let out = `n,a=${gs2SaslName(user)},\x01`;
  if (opts.host) out += `host=${opts.host}\x01`;
  if (opts.port !== undefined) out += `port=${opts.port}\x01`;
  out += `auth=Bearer ${accessToken}\x01\x01`;
  return out;
}

/** OAUTHBEARER client response, base64. */
export function oauthBearerBase64(user: string, accessToken: string, opts: OAuthBearerOptions = {}): string {
  return Buffer.from(oauthBearerRaw(user, accessToken, opts), 'utf8').toString('base64');
}

/** The SASL mechanisms that carry an OAuth2 bearer token. */
export type OAuth2Mechanism = 'XOAUTH2' | 'OAUTHBEARER';

/** Base64 initial response for either mechanism. */
export function oauth2SaslResponse(
  mechanism: OAuth2Mechanism,
  user: string,
  accessToken: string,
  opts: OAuthBearerOptions = {},
): string {
  return mechanism === 'XOAUTH2' ? xoauth2Base64(user, accessToken) : oauthBearerBase64(user, accessToken, opts);
}
