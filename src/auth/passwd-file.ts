/**
 * A UserDb over a Dovecot-style passwd-file: one user a line, `user:{SCHEME}secret:uid:gid:gecos:home:shell:extra`.
 * Lines starting with '#' and blank lines are kept as they are. The file is re-read when it changes
 * on disk; addUser/setPassword/deleteUser rewrite it atomically (temporary file, fsync, rename).
 * Writes from this process are serialised; two processes editing the same file at once: last rename wins.
 */
import { promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { StoreError, type ScramCredentials, type UserDb } from '../store/contract.js';
import {
  DEFAULT_SCRYPT_LN,
  dummyVerify,
  hashPassword,
  passwordScheme,
  scramCredentials,
  unsupportedReason,
  verifyPassword,
} from './password.js';

/** Options of PasswdFileUserDb. */
export interface PasswdFileOptions {
  /** scrypt cost (log2 N) of hashes written by addUser/setPassword and of dummy verifies; default 15. */
  scryptLn?: number;
  /** Told about entries that can never log in (unsupported scheme, malformed line), once per load. */
  onProblem?: (message: string) => void;
}

interface Entry {
  user: string;
  password: string;
  /** Everything after the password field, verbatim (":uid:gid:..."), so rewrites keep it. */
  rest: string;
}

interface Loaded {
  /** Raw lines (without newline) in file order. */
  lines: string[];
  /** User name -> index into lines. */
  index: Map<string, number>;
  entries: Map<string, Entry>;
  problems: string[];
  stamp: string;
}

/** Check a user name fits a passwd-file line; throws StoreError CANNOT otherwise. */
export function checkUserName(user: string): void {
  if (user.length === 0 || user.length > 255) throw new StoreError('CANNOT', 'user name must be 1 to 255 characters');
  if (/[:\x00-\x1f\x7f]/.test(user) || user.startsWith('#') || user.trim() !== user) {
    throw new StoreError('CANNOT', `user name ${JSON.stringify(user)} contains ':', a control character, surrounding spaces or starts with '#'`);
  }
}

function parseLine(line: string): Entry | null {
  if (line.trim() === '' || line.trimStart().startsWith('#')) return null;
  const first = line.indexOf(':');
  if (first <= 0) return { user: line, password: '', rest: '' };
  const second = line.indexOf(':', first + 1);
  const password = second < 0 ? line.slice(first + 1) : line.slice(first + 1, second);
  const rest = second < 0 ? '' : line.slice(second);
  return { user: line.slice(0, first), password, rest };
}

/** A read-mostly UserDb backed by a Dovecot-style passwd-file. */
export class PasswdFileUserDb implements UserDb {
  private loaded: Loaded | undefined;
  private writing: Promise<unknown> = Promise.resolve();
  private readonly scram = new Map<string, { password: string; creds: ScramCredentials }>();
  private readonly ln: number;

  constructor(
    /** Path of the passwd-file; it need not exist until the first addUser. */
    readonly path: string,
    private readonly opts: PasswdFileOptions = {},
  ) {
    this.ln = opts.scryptLn ?? DEFAULT_SCRYPT_LN;
  }

  /** Entries that can never log in, with the reason (as of the last load). */
  async problems(): Promise<string[]> {
    return [...(await this.load()).problems];
  }

  /** True when the password matches; false for unknown users or unusable entries (after the same scrypt cost). */
  async verify(user: string, password: string): Promise<boolean> {
    const entry = (await this.load()).entries.get(user);
    if (!entry || unsupportedReason(entry.password) !== null) {
      await dummyVerify({ ln: this.ln });
      return false;
    }
    if (passwordScheme(entry.password) !== 'SCRYPT') {
      // Plain-text entries are cheap to compare; spend the scrypt cost anyway so the response time
      // does not tell which users exist or how their passwords are stored.
      await dummyVerify({ ln: this.ln });
    }
    return verifyPassword(password, entry.password);
  }

  /** SCRAM-SHA-256 credentials derived from a {PLAIN} entry (cached), or null for hashed entries and unknown users. */
  async scramCredentials(user: string): Promise<ScramCredentials | null> {
    const entry = (await this.load()).entries.get(user);
    if (!entry) return null;
    const scheme = passwordScheme(entry.password);
    let plain: string;
    if (scheme === 'PLAIN' || scheme === 'CLEAR' || scheme === 'CLEARTEXT') plain = entry.password.slice(entry.password.indexOf('}') + 1);
    else if (scheme === 'PLAIN.B64' && unsupportedReason(entry.password) === null) {
      plain = Buffer.from(entry.password.slice(entry.password.indexOf('}') + 1), 'base64').toString('utf8');
    } else return null;
    // Keep one salt per user while the password is unchanged: clients may cache SaltedPassword by salt.
    const cached = this.scram.get(user);
    if (cached && cached.password === plain) return cached.creds;
    const creds = scramCredentials(plain);
    this.scram.set(user, { password: plain, creds });
    return creds;
  }

  /** Add a user with an scrypt hash; ALREADYEXISTS if the name is taken. */
  async addUser(user: string, password: string): Promise<void> {
    checkUserName(user);
    const hash = await hashPassword(password, { ln: this.ln });
    await this.rewrite((lines, index) => {
      if (index.has(user)) throw new StoreError('ALREADYEXISTS', `user ${user} already exists`);
      lines.push(`${user}:{SCRYPT}${hash}::::::`);
    });
  }

  /** Replace a user's password with an scrypt hash, keeping the other fields; NONEXISTENT if unknown. */
  async setPassword(user: string, password: string): Promise<void> {
    const hash = await hashPassword(password, { ln: this.ln });
    await this.rewrite((lines, index) => {
      const i = index.get(user);
      if (i === undefined) throw new StoreError('NONEXISTENT', `no such user ${user}`);
      const entry = parseLine(lines[i]!)!;
      lines[i] = `${user}:{SCRYPT}${hash}${entry.rest}`;
    });
  }

  /** Remove a user's line; NONEXISTENT if unknown. */
  async deleteUser(user: string): Promise<void> {
    await this.rewrite((lines, index) => {
      const i = index.get(user);
      if (i === undefined) throw new StoreError('NONEXISTENT', `no such user ${user}`);
      lines.splice(i, 1);
    });
  }

  /** All user names in file order. */
  async listUsers(): Promise<string[]> {
    return [...(await this.load()).entries.keys()];
  }

  private async load(): Promise<Loaded> {
    let stamp: string;
    let text = '';
    try {
      const st = await fs.stat(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (this.loaded && this.loaded.stamp === stamp) return this.loaded;
      text = await fs.readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      stamp = 'missing';
      if (this.loaded && this.loaded.stamp === stamp) return this.loaded;
    }
    const lines = text.split(/\r?\n/);
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    const index = new Map<string, number>();
    const entries = new Map<string, Entry>();
    const problems: string[] = [];
    lines.forEach((line, i) => {
      const entry = parseLine(line);
      if (!entry) return;
      if (entries.has(entry.user)) {
        problems.push(`${this.path}:${i + 1}: duplicate user ${entry.user} ignored (the first line wins)`);
        return;
      }
      index.set(entry.user, i);
      entries.set(entry.user, entry);
      const reason = entry.password === '' ? 'no password field' : unsupportedReason(entry.password);
      if (reason !== null) problems.push(`${this.path}:${i + 1}: user ${entry.user} cannot log in: ${reason}`);
    });
    this.loaded = { lines, index, entries, problems, stamp };
    this.scram.clear();
    for (const p of problems) this.opts.onProblem?.(p);
    return this.loaded;
  }

  private rewrite(edit: (lines: string[], index: Map<string, number>) => void): Promise<void> {
    const run = async (): Promise<void> => {
      const loaded = await this.load();
      const lines = [...loaded.lines];
      edit(lines, loaded.index);
      await writeAtomically(this.path, lines.length ? lines.join('\n') + '\n' : '');
      this.loaded = undefined;
    };
    const p = this.writing.then(run, run);
    this.writing = p.catch(() => undefined);
    return p;
  }
}

/** Replace a file's content atomically: write a temporary sibling, fsync it, rename it over, fsync the directory. */
async function writeAtomically(path: string, content: string): Promise<void> {
  let mode = 0o600;
  try {
    mode = (await fs.stat(path)).mode & 0o7777;
  } catch {
    // new file: private by default, it holds password hashes
  }
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await fs.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(content, 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close();
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  try {
    const dir = await fs.open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // some filesystems refuse fsync on directories; the rename itself is still atomic
  }
}
