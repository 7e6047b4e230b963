import { mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PasswdFileUserDb } from '../../src/auth/passwd-file.js';
import { hashPassword } from '../../src/auth/password.js';
import { StoreError } from '../../src/store/contract.js';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imapkit-passwd-'));
  file = join(dir, 'passwd');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('PasswdFileUserDb', () => {
  it('verifies {PLAIN}, {SCRYPT} and $scrypt$ entries', async () => {
    const h = await hashPassword('s3', { ln: 4 });
    await writeFile(
      file,
      [
        '# comment line',
        'alice:{PLAIN}wonderland:1000:1000::/home/alice::userdb_quota_rule=*:storage=1G',
        `bob:{SCRYPT}${h}::::::`,
        `carol:${h}`,
        '',
      ].join('\n'),
    );
    const db = new PasswdFileUserDb(file, { scryptLn: 4 });
    expect(await db.verify('alice', 'wonderland')).toBe(true);
    expect(await db.verify('alice', 'wonderland2')).toBe(false);
    expect(await db.verify('bob', 's3')).toBe(true);
    expect(await db.verify('carol', 's3')).toBe(true);
    expect(await db.verify('carol', 'nope')).toBe(false);
    expect(await db.verify('dave', 's3')).toBe(false);
    expect(await db.listUsers()).toEqual(['alice', 'bob', 'carol']);
  });

  it('refuses unsupported schemes and reports why', async () => {
    await writeFile(file, 'eve:{SHA512-CRYPT}$6$salt$hash::::::\nmallory\n');
    const reported: string[] = [];
    const db = new PasswdFileUserDb(file, { scryptLn: 4, onProblem: (m) => reported.push(m) });
    expect(await db.verify('eve', 'x')).toBe(false);
    expect(await db.verify('mallory', '')).toBe(false);
    const problems = await db.problems();
    expect(problems.some((p) => /eve.*SHA512-CRYPT.*not supported/.test(p))).toBe(true);
    expect(problems.some((p) => /mallory.*no password/.test(p))).toBe(true);
    expect(reported).toEqual(problems);
  });

  it('derives SCRAM credentials only for plain entries, stable while unchanged', async () => {
    const h = await hashPassword('x', { ln: 4 });
    await writeFile(file, `alice:{PLAIN}pw\nbob:${h}\n`);
    const db = new PasswdFileUserDb(file, { scryptLn: 4 });
    const a1 = await db.scramCredentials('alice');
    const a2 = await db.scramCredentials('alice');
    expect(a1).not.toBeNull();
    expect(a1!.iterations).toBe(4096);
    expect(a2!.salt.equals(a1!.salt)).toBe(true);
    expect(await db.scramCredentials('bob')).toBeNull();
    expect(await db.scramCredentials('nobody')).toBeNull();
  });

  it('adds, changes and deletes users atomically, keeping other lines', async () => {
    await writeFile(file, '# users\nalice:{PLAIN}pw:1000:1000::/home/alice::extra=1\n');
    const db = new PasswdFileUserDb(file, { scryptLn: 4 });
    await db.addUser('bob', 'builder');
    expect(await db.verify('bob', 'builder')).toBe(true);
    await expect(db.addUser('bob', 'x')).rejects.toMatchObject({ code: 'ALREADYEXISTS' });

    await db.setPassword('alice', 'new');
    expect(await db.verify('alice', 'new')).toBe(true);
    expect(await db.verify('alice', 'pw')).toBe(false);
    let text = await readFile(file, 'utf8');
    expect(text).toMatch(/^# users\n/);
    expect(text).toMatch(/^alice:\{SCRYPT\}\$scrypt\$ln=4,r=8,p=1\$[^:]+:1000:1000::\/home\/alice::extra=1$/m);
    expect(text).not.toContain('{PLAIN}');
    expect(await db.scramCredentials('alice')).toBeNull();

    await db.deleteUser('bob');
    expect(await db.listUsers()).toEqual(['alice']);
    await expect(db.deleteUser('bob')).rejects.toBeInstanceOf(StoreError);
    await expect(db.setPassword('bob', 'x')).rejects.toMatchObject({ code: 'NONEXISTENT' });
    text = await readFile(file, 'utf8');
    expect(text).not.toContain('bob');
    // no temporary files left behind
    expect(await readdir(dir)).toEqual(['passwd']);
  });

  it('creates a missing file with private permissions', async () => {
    const db = new PasswdFileUserDb(file, { scryptLn: 4 });
    expect(await db.listUsers()).toEqual([]);
    expect(await db.verify('x', 'y')).toBe(false);
    await db.addUser('first', 'pw');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await new PasswdFileUserDb(file).verify('first', 'pw')).toBe(true);
  });

  it('serialises concurrent additions', async () => {
    const db = new PasswdFileUserDb(file, { scryptLn: 4 });
    await Promise.all(['u1', 'u2', 'u3', 'u4', 'u5'].map((u) => db.addUser(u, u)));
    expect((await db.listUsers()).sort()).toEqual(['u1', 'u2', 'u3', 'u4', 'u5']);
  });

  it('sees edits made to the file by someone else', async () => {
    await writeFile(file, 'a:{PLAIN}1\n');
    const db = new PasswdFileUserDb(file, { scryptLn: 4 });
    expect(await db.verify('a', '1')).toBe(true);
    await writeFile(file, 'a:{PLAIN}2\nb:{PLAIN}3\n');
    expect(await db.verify('a', '2')).toBe(true);
    expect(await db.listUsers()).toEqual(['a', 'b']);
  });

  it('rejects user names that would break the file', async () => {
    const db = new PasswdFileUserDb(file, { scryptLn: 4 });
    for (const bad of ['', 'a:b', 'a\nb', '#x', ' x']) {
      await expect(db.addUser(bad, 'pw')).rejects.toMatchObject({ code: 'CANNOT' });
    }
  });
});
