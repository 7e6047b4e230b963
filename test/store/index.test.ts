/**
 * openStore spec parsing and the store-kind registry.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore, SqliteStore, expandPath, openStore, registerStoreKind, storeKinds, type MailStore } from '../../src/store/index.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('openStore', () => {
  it('opens a memory store', async () => {
    const s = await openStore('memory');
    expect(s).toBeInstanceOf(MemoryStore);
    expect(s.kind).toBe('memory');
    await expect(openStore('memory:x')).rejects.toThrow(/memory store takes no argument/);
  });

  it('opens a sqlite store at a path, relative paths under dataDir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imapkit-open-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const a = await openStore(`sqlite:${join(dir, 'abs.db')}`);
    cleanups.unshift(() => a.close());
    expect(a).toBeInstanceOf(SqliteStore);
    expect((a as SqliteStore).path).toBe(join(dir, 'abs.db'));
    const b = await openStore('sqlite:nested/rel.db', { dataDir: dir });
    cleanups.unshift(() => b.close());
    expect((b as SqliteStore).path).toBe(join(dir, 'nested', 'rel.db'));
    expect((await stat(join(dir, 'nested', 'rel.db'))).isFile()).toBe(true);
    const c = await openStore('sqlite', { dataDir: dir });
    cleanups.unshift(() => c.close());
    expect((c as SqliteStore).path).toBe(join(dir, 'imapkit.sqlite'));
    await expect(openStore('sqlite')).rejects.toThrow(/sqlite:PATH/);
  });

  it('expands ~ to the home directory', () => {
    expect(expandPath('~/mail/db.sqlite')).toBe(join(homedir(), 'mail', 'db.sqlite'));
    expect(expandPath('~')).toBe(homedir());
    expect(expandPath('/abs/x', '/elsewhere')).toBe('/abs/x');
    expect(expandPath('x', '~/data')).toBe(join(homedir(), 'data', 'x'));
  });

  it('names the accepted forms for an unknown spec', async () => {
    await expect(openStore('postgres://db')).rejects.toThrow(/unknown store "postgres:\/\/db": accepted forms are .*"memory".*"sqlite:PATH"/);
    await expect(openStore('')).rejects.toThrow(/accepted forms/);
  });

  it('lets other modules register a kind', async () => {
    const seen: string[] = [];
    registerStoreKind('test-kind', async (rest, opts) => {
      seen.push(`${rest}|${opts.dataDir ?? ''}`);
      return new MemoryStore();
    });
    const s: MailStore = await openStore('test-kind:some:path', { dataDir: '/d' });
    expect(s.kind).toBe('memory');
    expect(seen).toEqual(['some:path|/d']);
    expect(storeKinds()).toContain('test-kind');
    await expect(openStore('nope')).rejects.toThrow(/"test-kind:PATH"/);
    expect(() => registerStoreKind('Bad Prefix', async () => new MemoryStore())).toThrow(/prefix/);
  });
});
