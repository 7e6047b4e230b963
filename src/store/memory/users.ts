/**
 * An in-memory UserDb: scrypt hashes and SCRAM-SHA-256 credentials computed at add/passwd time,
 * gone when the process ends. For demos and tests.
 */
import { DEFAULT_SCRYPT_LN, dummyVerify, hashPassword, scramCredentials, verifyPassword } from '../../auth/password.js';
import { StoreError, type ScramCredentials, type UserDb } from '../contract.js';

interface Credentials {
  hash: string;
  scram: ScramCredentials;
}

/** A UserDb kept in a Map. */
export class MemoryUserDb implements UserDb {
  private readonly users = new Map<string, Credentials>();

  constructor(
    /** scrypt cost (log2 N) of new hashes and of dummy verifies. */
    private readonly scryptLn: number = DEFAULT_SCRYPT_LN,
  ) {}

  /** True when the password matches; unknown users cost a dummy scrypt. */
  async verify(user: string, password: string): Promise<boolean> {
    const c = this.users.get(user);
    if (!c) {
      await dummyVerify({ ln: this.scryptLn });
      return false;
    }
    return verifyPassword(password, c.hash);
  }

  /** SCRAM-SHA-256 credentials stored at add/passwd time, or null for unknown users. */
  async scramCredentials(user: string): Promise<ScramCredentials | null> {
    return this.users.get(user)?.scram ?? null;
  }

  /** Add a user; ALREADYEXISTS if present, CANNOT for an empty name. */
  async addUser(user: string, password: string): Promise<void> {
    if (user.length === 0) throw new StoreError('CANNOT', 'user name must not be empty');
    if (this.users.has(user)) throw new StoreError('ALREADYEXISTS', `user ${user} already exists`);
    const creds = await this.credentials(password);
    // Re-check: another addUser may have finished while we were hashing.
    if (this.users.has(user)) throw new StoreError('ALREADYEXISTS', `user ${user} already exists`);
    this.users.set(user, creds);
  }

  /** Replace a user's password; NONEXISTENT if unknown. */
  async setPassword(user: string, password: string): Promise<void> {
    if (!this.users.has(user)) throw new StoreError('NONEXISTENT', `no such user ${user}`);
    const creds = await this.credentials(password);
    if (!this.users.has(user)) throw new StoreError('NONEXISTENT', `no such user ${user}`);
    this.users.set(user, creds);
  }

  /** Remove a user's credentials (their mail stays); NONEXISTENT if unknown. */
  async deleteUser(user: string): Promise<void> {
    if (!this.users.delete(user)) throw new StoreError('NONEXISTENT', `no such user ${user}`);
  }

  /** User names, sorted. */
  async listUsers(): Promise<string[]> {
    return [...this.users.keys()].sort();
  }

  private async credentials(password: string): Promise<Credentials> {
    return { hash: await hashPassword(password, { ln: this.scryptLn }), scram: scramCredentials(password) };
  }
}
