/** The serve configuration: file + flags merged, defaults, and errors that name the key. */
import { describe, expect, it } from 'vitest';
import { resolveServeConfig, defaultStoreSpec } from '../../src/server/config.js';
import { DEFAULT_LIMITS } from '../../src/server/limits.js';
import { flagsToConfig, loadServeConfig } from '../../src/cli/serve.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = { XDG_DATA_HOME: '/data' };

describe('resolveServeConfig', () => {
  it('fills defaults: SQLite under XDG_DATA_HOME, port 1143, the store users', () => {
    const c = resolveServeConfig(undefined, {}, env);
    expect(c).toMatchObject({ host: '0.0.0.0', port: 1143, store: 'sqlite:/data/imapkit/imapkit.db', users: 'store', allowPlaintextLogin: false, logLevel: 'info', debug: false });
    expect(c.limits).toEqual(DEFAULT_LIMITS);
    expect(defaultStoreSpec({})).toMatch(/\/\.local\/share\/imapkit\/imapkit\.db$/);
  });

  it('lets flags override the file, key by key, limits included', () => {
    const file = { path: 'imapkit.toml', data: { port: 2000, host: '::', limits: { appendLimit: 10, maxConnections: 5 }, tls: { cert: 'c.pem', key: 'k.pem' } } };
    const c = resolveServeConfig(file, flagsToConfig({ port: 3000, appendLimit: 20, tlsPort: 993 }), env);
    expect(c.port).toBe(3000);
    expect(c.host).toBe('::');
    expect(c.limits.appendLimit).toBe(20);
    expect(c.limits.maxConnections).toBe(5);
    expect(c.tls).toEqual({ cert: 'c.pem', key: 'k.pem', implicitPort: 993 });
  });

  it('--debug turns on debug logging', () => {
    expect(resolveServeConfig(undefined, { debug: true, logLevel: 'warn' }, env).logLevel).toBe('debug');
  });

  it('names the file and key of a bad value', () => {
    const file = { path: 'bad.toml', data: { port: 'x', limits: { nope: 1 } } };
    expect(() => resolveServeConfig(file, {}, env)).toThrow(/bad\.toml: port: /);
    expect(() => resolveServeConfig({ path: 'u.toml', data: { users: 'ldap' } }, {}, env)).toThrow(/u\.toml: users: expected "store" or "passwd:PATH"/);
    expect(() => resolveServeConfig({ path: 'l.toml', data: { limits: { nope: 1 } } }, {}, env)).toThrow(/l\.toml: limits/);
    expect(() => resolveServeConfig(undefined, { port: 70000 }, env)).toThrow(/command line: port/);
  });

  it('needs both certificate and key', () => {
    expect(() => resolveServeConfig(undefined, flagsToConfig({ tlsCert: 'c.pem' }), env)).toThrow(/tls/);
  });

  it('reads lmtp as PORT (on loopback), HOST:PORT or a socket path, from the file or --lmtp', () => {
    expect(resolveServeConfig({ path: 'f.toml', data: { lmtp: 2424 } }, {}, env).lmtp).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 2424 });
    expect(resolveServeConfig({ path: 'f.toml', data: { lmtp: '0.0.0.0:24' } }, flagsToConfig({}), env).lmtp).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 24 });
    expect(resolveServeConfig({ path: 'f.toml', data: { lmtp: 2424 } }, flagsToConfig({ lmtp: '/run/imapkit/lmtp' }), env).lmtp).toEqual({ kind: 'unix', path: '/run/imapkit/lmtp' });
    expect(resolveServeConfig(undefined, {}, env).lmtp).toBeUndefined();
  });

  it('names the file and the lmtp key of a bad LMTP address, and what is expected', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imapkit-config-'));
    try {
      const file = join(dir, 'serve.toml');
      await writeFile(file, 'port = 1143\nlmtp = "localhost"\n');
      await expect(loadServeConfig({ config: file }, env)).rejects.toThrow(`${file}: lmtp: expected PORT, HOST:PORT or the absolute path of a unix socket`);
      await writeFile(file, 'lmtp = true\n');
      await expect(loadServeConfig({ config: file }, env)).rejects.toThrow(`${file}: lmtp: expected PORT, HOST:PORT`);
      await expect(loadServeConfig({ lmtp: '99999' }, env)).rejects.toThrow(/command line: lmtp: expected PORT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
