/** The serve configuration: file + flags merged, defaults, and errors that name the key. */
import { describe, expect, it } from 'vitest';
import { resolveServeConfig, defaultStoreSpec } from '../../src/server/config.js';
import { DEFAULT_LIMITS } from '../../src/server/limits.js';
import { flagsToConfig } from '../../src/cli/serve.js';

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
});
