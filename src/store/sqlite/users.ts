/**
 * The users table of SqliteStore as a UserDb: scrypt hashes and SCRAM-SHA-256 credentials, both
 * computed at add/passwd time. Deleting a user removes the credentials only; the mail stays.
 */
import type Database from 'better-sqlite3';
import { DEFAULT_SCRYPT_LN, dummyVerify, hashPassword, scramCredentials, verifyPassword } from '../../auth/password.js';
import { StoreError, type ScramCredentials, type UserDb } from '../contract.js';

interface CredRow {
  password: string | null;
  scram_salt: Buffer | null;
  scram_iterations: number | null;
  scram_stored_key: Buffer | null;
  scram_server_key: Buffer | null;
}

/** UserDb over the users table of a SqliteStore database. */
export class SqliteUserDb implements UserDb {
  private readonly get: Database.Statement;
  private readonly insert: Database.Statement;
  private readonly set: Database.Statement;
  private readonly clear: Database.Statement;
  private readonly list: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    private readonly scryptLn: number = DEFAULT_SCRYPT_LN,
  ) {
    this.get = db.prepare('SELECT password, scram_salt, scram_iterations, scram_stored_key, scram_server_key FROM users WHERE name = ?');
    this.insert = db.prepare('INSERT INTO users (name) VALUES (?) ON CONFLICT (name) DO NOTHING');
    this.set = db.prepare(
      'UPDATE users SET password = ?, scram_salt = ?, scram_iterations = ?, scram_stored_key = ?, scram_server_key = ? WHERE name = ?',
    );
    this.clear = db.prepare(
      'UPDATE users SET password = NULL, scram_salt = NULL, scram_iterations = NULL, scram_stored_key = NULL, scram_server_key = NULL WHERE name = ?',
    );
    this.list = db.prepare('SELECT name FROM users WHERE password IS NOT NULL ORDER BY name').pluck();
  }

  private row(user: string): CredRow | undefined {
    const r = this.get.get(user) as CredRow | undefined;
    return r && r.password !== null ? r : undefined;
  }

  /** True when the password matches; unknown users cost a dummy scrypt. */
  async verify(user: string, password: string): Promise<boolean> {
    const r = this.row(user);
    if (!r) {
      await dummyVerify({ ln: this.scryptLn });
      return false;
    }
    return verifyPassword(password, r.password!);
  }

  /** Stored SCRAM-SHA-256 credentials, or null. */
  async scramCredentials(user: string): Promise<ScramCredentials | null> {
    const r = this.row(user);
    if (!r || !r.scram_salt || !r.scram_iterations || !r.scram_stored_key || !r.scram_server_key) return null;
    return { salt: r.scram_salt, iterations: r.scram_iterations, storedKey: r.scram_stored_key, serverKey: r.scram_server_key };
  }

  /** Give a user credentials; ALREADYEXISTS if they have some. Mail of an existing mail-only user is kept. */
  async addUser(user: string, password: string): Promise<void> {
    if (user.length === 0) throw new StoreError('CANNOT', 'user name must not be empty');
    if (this.row(user)) throw new StoreError('ALREADYEXISTS', `user ${user} already exists`);
    const hash = await hashPassword(password, { ln: this.scryptLn });
    const scram = scramCredentials(password);
    this.db.transaction(() => {
      // Re-check under the write lock: another process may have added the user meanwhile.
      if (this.row(user)) throw new StoreError('ALREADYEXISTS', `user ${user} already exists`);
      this.insert.run(user);
      this.set.run(hash, scram.salt, scram.iterations, scram.storedKey, scram.serverKey, user);
    }).immediate();
  }

  /** Replace a user's credentials; NONEXISTENT if they have none. */
  async setPassword(user: string, password: string): Promise<void> {
    if (!this.row(user)) throw new StoreError('NONEXISTENT', `no such user ${user}`);
    const hash = await hashPassword(password, { ln: this.scryptLn });
    const scram = scramCredentials(password);
    this.db.transaction(() => {
      if (!this.row(user)) throw new StoreError('NONEXISTENT', `no such user ${user}`);
      this.set.run(hash, scram.salt, scram.iterations, scram.storedKey, scram.serverKey, user);
    }).immediate();
  }

  /** Remove a user's credentials (their mail stays); NONEXISTENT if they have none. */
  async deleteUser(user: string): Promise<void> {
    this.db.transaction(() => {
      if (!this.row(user)) throw new StoreError('NONEXISTENT', `no such user ${user}`);
      this.clear.run(user);
    }).immediate();
  }

  /** Names of users with credentials, sorted. */
  async listUsers(): Promise<string[]> {
    return this.list.all() as string[];
  }
}
