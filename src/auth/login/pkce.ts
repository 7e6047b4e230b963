/** PKCE (RFC 7636): a random code verifier and its S256 challenge; and random `state` values. */
import { createHash, randomBytes } from 'node:crypto';

/** A code verifier and the challenge sent with the authorization request. */
export interface Pkce {
  verifier: string;
  challenge: string;
  method: 'S256';
}

/** base64url without padding (RFC 7636 appendix A). */
export function base64url(buf: Buffer): string {
  return buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The S256 challenge of a verifier: BASE64URL(SHA256(ASCII(verifier))). */
export function s256(verifier: string): string {
  return base64url(createHash('sha256').update(verifier, 'ascii').digest());
}

/** A fresh verifier: 32 random bytes give 43 characters, the minimum RFC 7636 4.1 allows, with 256 bits of entropy. */
export function createPkce(): Pkce {
  const verifier = base64url(randomBytes(32));
  return { verifier, challenge: s256(verifier), method: 'S256' };
}

/** An unguessable `state` value binding the redirect to this login (RFC 6749 10.12). */
export function randomState(): string {
  return base64url(randomBytes(16));
}
