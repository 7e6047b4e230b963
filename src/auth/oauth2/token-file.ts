/**
 * The OAuth2 token file: JSON `{ access_token, refresh_token, expires_at }` (expires_at in Unix
 * seconds; an ISO date is accepted on read). Written atomically (temp file + rename) with mode 0600
 * so a crash never leaves a half-written file and other users can never read it.
 */
import { open, readFile, rename, unlink, chmod } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Tokens as kept on disk; other keys found in the file are preserved on rewrite. */
export interface TokenSet {
  access_token: string;
  refresh_token?: string;
  /** Unix time in seconds when access_token expires; undefined when unknown. */
  expires_at?: number;
  token_type?: string;
  scope?: string;
  [key: string]: unknown;
}

/** A token file that cannot be read or has the wrong shape (the message never contains a token). */
export class TokenFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenFileError';
  }
}

/** Parse token file JSON text; normalises expires_at to Unix seconds. */
export function parseTokenSet(text: string, file = 'token file'): TokenSet {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new TokenFileError(`${file}: not valid JSON`);
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new TokenFileError(`${file}: expected a JSON object`);
  const obj = data as Record<string, unknown>;
  if (typeof obj.access_token !== 'string' && typeof obj.refresh_token !== 'string') {
    throw new TokenFileError(`${file}: access_token or refresh_token missing`);
  }
  if (obj.refresh_token !== undefined && typeof obj.refresh_token !== 'string') {
    throw new TokenFileError(`${file}: refresh_token must be a string`);
  }
  const out: TokenSet = { ...obj, access_token: typeof obj.access_token === 'string' ? obj.access_token : '' };
  const exp = obj.expires_at;
  if (typeof exp === 'number' && Number.isFinite(exp)) {
    // Milliseconds slipped in by some tools: anything past year 5000 in seconds is treated as ms.
    out.expires_at = exp > 1e11 ? Math.floor(exp / 1000) : exp;
  } else if (typeof exp === 'string' && exp !== '') {
    const ms = Date.parse(exp);
    if (Number.isNaN(ms)) throw new TokenFileError(`${file}: expires_at is not a date`);
    out.expires_at = Math.floor(ms / 1000);
  } else if (exp !== undefined && exp !== null) {
    throw new TokenFileError(`${file}: expires_at must be Unix seconds or an ISO date`);
  } else {
    delete out.expires_at;
  }
  return out;
}

/** Read and parse a token file. */
export async function readTokenFile(file: string): Promise<TokenSet> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new TokenFileError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parseTokenSet(text, file);
}

/** Replace a file atomically with mode 0600: write a temp file beside it, fsync, rename over. */
export async function writeFileAtomic0600(file: string, data: string | Buffer): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    // The umask may have narrowed the mode but never widened it; chmod makes 0600 exact.
    await fh.chmod(0o600);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  // The rename is durable only once the directory entry is on disk; best effort (not all FS allow it).
  try {
    const dh = await open(dir, 'r');
    await dh.sync().catch(() => undefined);
    await dh.close();
  } catch {
    /* directories cannot be opened for sync on every platform */
  }
  await chmod(file, 0o600).catch(() => undefined);
}

/** Write a token file atomically with mode 0600. */
export async function writeTokenFile(file: string, tokens: TokenSet): Promise<void> {
  await writeFileAtomic0600(file, JSON.stringify(tokens, null, 2) + '\n');
}
