/**
 * The UserDb of the stores that carry one (memory, sqlite), and quota limits they enforce.
 */
import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MailStore } from '../../src/store/contract.js';
import { MemoryStore } from '../../src/store/memory/store.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import type { QuotaLimits } from '../../src/store/common.js';

const dirs: string[] = [];
const stores: MailStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const factories: Array<{ name: string; make(quota?: QuotaLimits): Promise<MailStore> }> = [
  { name: 'memory', make: async (quota) => new MemoryStore({ scryptLn: 4, quota }) },
  {
    name: 'sqlite',
    async make(quota) {
      const d = await mkdtemp(join(tmpdir(), 'imapkit-users-'));
      dirs.push(d);
      return new SqliteStore(join(d, 'db.sqlite'), { scryptLn: 4, quota });
    },
  },
];

describe.each(factories)('UserDb of $name', (f) => {
  async function make(quota?: QuotaLimits): Promise<MailStore> {
    const s = await f.make(quota);
    stores.push(s);
    return s;
  }

  it('adds, verifies, changes and deletes users', async () => {
    const users = (await make()).users!;
    expect(await users.listUsers()).toEqual([]);
    await users.addUser('bob', 'one');
    await users.addUser('alice', 'two');
    expect(await users.listUsers()).toEqual(['alice', 'bob']);
    expect(await users.verify('bob', 'one')).toBe(true);
    expect(await users.verify('bob', 'two')).toBe(false);
    expect(await users.verify('carol', 'one')).toBe(false);
    await expect(users.addUser('bob', 'x')).rejects.toMatchObject({ code: 'ALREADYEXISTS' });
    await users.setPassword('bob', 'three');
    expect(await users.verify('bob', 'one')).toBe(false);
    expect(await users.verify('bob', 'three')).toBe(true);
    await expect(users.setPassword('carol', 'x')).rejects.toMatchObject({ code: 'NONEXISTENT' });
    await users.deleteUser('bob');
    expect(await users.listUsers()).toEqual(['alice']);
    expect(await users.verify('bob', 'three')).toBe(false);
    await expect(users.deleteUser('bob')).rejects.toMatchObject({ code: 'NONEXISTENT' });
  });

  it('stores SCRAM-SHA-256 credentials that match the password', async () => {
    const users = (await make()).users!;
    await users.addUser('alice', 'pencil');
    const c = await users.scramCredentials('alice');
    expect(c).not.toBeNull();
    expect(c!.iterations).toBeGreaterThanOrEqual(4096);
    // A client that knows the password derives the same StoredKey and ServerKey.
    const { pbkdf2Sync } = await import('node:crypto');
    const salted = pbkdf2Sync('pencil', c!.salt, c!.iterations, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    expect(createHash('sha256').update(clientKey).digest().equals(c!.storedKey)).toBe(true);
    expect(createHmac('sha256', salted).update('Server Key').digest().equals(c!.serverKey)).toBe(true);
    expect(await users.scramCredentials('nobody')).toBeNull();
    await users.setPassword('alice', 'other');
    const c2 = await users.scramCredentials('alice');
    expect(c2!.storedKey.equals(c!.storedKey)).toBe(false);
  });

  it('a user whose credentials are deleted keeps their mail', async () => {
    const store = await make();
    await store.users!.addUser('alice', 'pw');
    const u = await store.openUser('alice');
    await u.append('INBOX', [{ data: Buffer.from('keep me') }]);
    await store.users!.deleteUser('alice');
    expect((await (await store.openUser('alice')).status('INBOX')).messages).toBe(1);
  });

  it('enforces quota limits on append and copy', async () => {
    const store = await make({ messagesLimit: 3, storageLimitKiB: 2 });
    const u = await store.openUser('alice');
    await u.createMailbox('Other');
    await u.append('INBOX', [{ data: Buffer.alloc(100) }, { data: Buffer.alloc(100) }]);
    await expect(u.append('INBOX', [{ data: Buffer.alloc(1) }, { data: Buffer.alloc(1) }])).rejects.toMatchObject({ code: 'OVERQUOTA' });
    const h = await u.open('INBOX');
    await expect(h.copy([1, 2], 'Other')).rejects.toMatchObject({ code: 'OVERQUOTA' });
    // MOVE does not add usage.
    await h.move([1, 2], 'Other');
    await expect(u.append('INBOX', [{ data: Buffer.alloc(2000) }])).rejects.toMatchObject({ code: 'OVERQUOTA' });
    await u.append('INBOX', [{ data: Buffer.alloc(1000) }]);
    const q = await u.quota();
    expect(q).toEqual({ root: '', storageUsedKiB: 2, storageLimitKiB: 2, messagesUsed: 3, messagesLimit: 3 });
  });
});
