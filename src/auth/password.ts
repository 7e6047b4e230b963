/**
 * Password hashing and checking: scrypt for stored passwords, SCRAM-SHA-256 stored credentials
 * (RFC 5802, RFC 7677). Everything here is pure crypto over node:crypto; no I/O.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { ScramCredentials } from '../store/contract.js';

export type { ScramCredentials } from '../store/contract.js';

/** Default scrypt cost: N = 2^15, r = 8, p = 1 (about 32 MiB and ~100 ms per hash). */
export const DEFAULT_SCRYPT_LN = 15;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
// Bounds on parameters read from a stored string, so a hostile or corrupt entry cannot make
// one login eat gigabytes of memory or minutes of CPU.
const MAX_LN = 20;
const MAX_R = 32;
const MAX_P = 16;

/** Thrown by verifyPassword for a stored string in a scheme we do not support (or malformed). */
export class PasswordSchemeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PasswordSchemeError';
  }
}

/** Options of hashPassword / dummyVerify: the scrypt cost as log2(N). */
export interface ScryptOptions {
  /** log2 of scrypt's N; default 15. Lower only in tests. */
  ln?: number;
}

interface ScryptParams {
  ln: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

function scryptAsync(password: string | Buffer, salt: Buffer, keylen: number, ln: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** ln;
  // Node's default maxmem (32 MiB) is just below what N=2^15, r=8 needs; allow twice the need.
  const maxmem = 256 * N * r + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function b64(buf: Buffer): string {
  // PHC-style strings use base64 without padding.
  return buf.toString('base64').replace(/=+$/, '');
}

/** Hash a password with scrypt and a random 16-byte salt: `$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>`. */
export async function hashPassword(password: string, opts: ScryptOptions = {}): Promise<string> {
  const ln = opts.ln ?? DEFAULT_SCRYPT_LN;
  if (!Number.isInteger(ln) || ln < 1 || ln > MAX_LN) throw new RangeError(`scrypt ln must be an integer in 1..${MAX_LN}`);
  const salt = randomBytes(SALT_BYTES);
  const hash = await scryptAsync(password.normalize('NFC'), salt, HASH_BYTES, ln, SCRYPT_R, SCRYPT_P);
  return `$scrypt$ln=${ln},r=${SCRYPT_R},p=${SCRYPT_P}$${b64(salt)}$${b64(hash)}`;
}

function parseScrypt(s: string): ScryptParams {
  const parts = s.split('$');
  // ['', 'scrypt', 'ln=..,r=..,p=..', salt, hash]
  if (parts.length !== 5 || parts[0] !== '' || parts[1] !== 'scrypt') {
    throw new PasswordSchemeError('malformed scrypt hash: expected $scrypt$ln=N,r=R,p=P$salt$hash');
  }
  const params = new Map<string, number>();
  for (const kv of parts[2]!.split(',')) {
    const m = /^(ln|r|p)=(\d{1,3})$/.exec(kv);
    if (!m) throw new PasswordSchemeError(`malformed scrypt parameter "${kv}"`);
    params.set(m[1]!, Number(m[2]));
  }
  const ln = params.get('ln');
  const r = params.get('r') ?? SCRYPT_R;
  const p = params.get('p') ?? SCRYPT_P;
  if (ln === undefined || ln < 1 || ln > MAX_LN || r < 1 || r > MAX_R || p < 1 || p > MAX_P) {
    throw new PasswordSchemeError(`scrypt parameters out of range (ln 1..${MAX_LN}, r 1..${MAX_R}, p 1..${MAX_P})`);
  }
  const b64re = /^[A-Za-z0-9+/]+={0,2}$/;
  if (!b64re.test(parts[3]!) || !b64re.test(parts[4]!)) throw new PasswordSchemeError('malformed scrypt salt or hash (not base64)');
  const salt = Buffer.from(parts[3]!, 'base64');
  const hash = Buffer.from(parts[4]!, 'base64');
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) throw new PasswordSchemeError('scrypt salt or hash has an unusable length');
  return { ln, r, p, salt, hash };
}

// Plain-text comparison goes through an HMAC with a per-process key so that the comparison is
// constant time regardless of the two lengths.
const plainKey = randomBytes(32);
function plainEqual(a: string, b: string): boolean {
  const da = createHmac('sha256', plainKey).update(a, 'utf8').digest();
  const db = createHmac('sha256', plainKey).update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}

/** The scheme of a stored password string, upper case: "SCRYPT" for `$scrypt$…`, else the `{SCHEME}` name, or "" if none. */
export function passwordScheme(stored: string): string {
  if (stored.startsWith('$scrypt$')) return 'SCRYPT';
  const m = /^\{([A-Za-z0-9._-]+)\}/.exec(stored);
  return m ? m[1]!.toUpperCase() : '';
}

/** Why a stored password string cannot be checked here, or null when verifyPassword supports it. */
export function unsupportedReason(stored: string): string | null {
  const scheme = passwordScheme(stored);
  const body = stored.startsWith('{') ? stored.slice(stored.indexOf('}') + 1) : stored;
  switch (scheme) {
    case 'PLAIN':
    case 'CLEAR':
    case 'CLEARTEXT':
      return null;
    case 'PLAIN.B64':
      return /^[A-Za-z0-9+/]*={0,2}$/.test(body) ? null : 'malformed {PLAIN.B64} password (not base64)';
    case 'SCRYPT':
      try {
        parseScrypt(body);
        return null;
      } catch (e) {
        return (e as Error).message;
      }
    case '':
      return 'password has no {SCHEME} prefix and is not a $scrypt$ hash';
    default:
      return `password scheme {${scheme}} is not supported (supported: {PLAIN}, {SCRYPT}, $scrypt$); set a new password with "imapkit user passwd"`;
  }
}

/**
 * Check a password against a stored string: our `$scrypt$…` form, `{SCRYPT}$scrypt$…`, or
 * Dovecot-style `{PLAIN}text` (also `{CLEAR}`, `{CLEARTEXT}`, `{PLAIN.B64}`). Constant time.
 * Throws PasswordSchemeError for any other scheme or a malformed hash.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const reason = unsupportedReason(stored);
  if (reason !== null) throw new PasswordSchemeError(reason);
  const scheme = passwordScheme(stored);
  const body = stored.startsWith('{') ? stored.slice(stored.indexOf('}') + 1) : stored;
  if (scheme === 'PLAIN' || scheme === 'CLEAR' || scheme === 'CLEARTEXT') return plainEqual(password, body);
  if (scheme === 'PLAIN.B64') return plainEqual(password, Buffer.from(body, 'base64').toString('utf8'));
  const p = parseScrypt(body);
  const derived = await scryptAsync(password.normalize('NFC'), p.salt, p.hash.length, p.ln, p.r, p.p);
  return timingSafeEqual(derived, p.hash);
}

const dummySalt = randomBytes(SALT_BYTES);
/** Spend what a real scrypt verify costs (for unknown users, so timing does not reveal who exists). */
export async function dummyVerify(opts: ScryptOptions = {}): Promise<void> {
  const ln = opts.ln ?? DEFAULT_SCRYPT_LN;
  await scryptAsync('dummy password', dummySalt, HASH_BYTES, ln, SCRYPT_R, SCRYPT_P);
}

/** The scrypt cost (log2 N) a stored string would cost to verify, or undefined when it is not scrypt. */
export function scryptCostOf(stored: string): number | undefined {
  if (passwordScheme(stored) !== 'SCRYPT') return undefined;
  try {
    return parseScrypt(stored.startsWith('{') ? stored.slice(stored.indexOf('}') + 1) : stored).ln;
  } catch {
    return undefined;
  }
}

// RFC 3454 table C.1.2 (non-ASCII space characters), mapped to SPACE by SASLprep (RFC 4013 2.1).
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
// RFC 3454 table B.1 (commonly mapped to nothing).
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;

/** SASLprep (RFC 4013) mapping and NFKC normalisation of a password; prohibited-character checks are not done. */
export function saslPrep(s: string): string {
  return s.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ').normalize('NFKC');
}

/**
 * SCRAM-SHA-256 stored credentials (RFC 5802 section 3, RFC 7677): SaltedPassword =
 * PBKDF2-HMAC-SHA-256(SASLprep(password), salt, i); StoredKey = H(HMAC(SaltedPassword, "Client Key"));
 * ServerKey = HMAC(SaltedPassword, "Server Key"). A random 16-byte salt unless one is given.
 */
export function scramCredentials(password: string, iterations = 4096, salt: Buffer = randomBytes(SALT_BYTES)): ScramCredentials {
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError('SCRAM iterations must be a positive integer');
  const salted = pbkdf2Sync(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return { salt: Buffer.from(salt), iterations, storedKey, serverKey };
}
