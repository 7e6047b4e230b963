import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BackendError, isLoopback, parseBackendUrl } from '../../src/proxy/backend.js';
import { compilePattern, parseRouteOutput, RouteError, Router } from '../../src/proxy/router.js';
import { loadProxyConfig, resolveProxySetup } from '../../src/proxy/config.js';
import { ConfigError } from '../../src/config/load.js';

describe('backend URLs', () => {
  it('reads imaps:// as implicit TLS and imap:// as STARTTLS, with default ports', () => {
    expect(parseBackendUrl('imaps://Mail.Example.com')).toMatchObject({ id: 'imaps://mail.example.com:993', port: 993, security: 'tls', tlsVerify: true, servername: 'Mail.Example.com' });
    expect(parseBackendUrl('imap://mail.example.com')).toMatchObject({ port: 143, security: 'starttls', allowPlaintext: false });
    expect(parseBackendUrl('127.0.0.1:1143')).toMatchObject({ id: 'imap://127.0.0.1:1143', allowPlaintext: true, servername: undefined });
    expect(parseBackendUrl('imap://[::1]:143')).toMatchObject({ host: '::1', allowPlaintext: true });
    expect(parseBackendUrl('imap://mail.example.com', { insecure: true }).allowPlaintext).toBe(true);
  });

  it('refuses what cannot be a backend', () => {
    for (const bad of ['http://x', 'imap://u:p@host', 'imaps://host/INBOX', 'imap://host:99999', 'imap://']) {
      expect(() => parseBackendUrl(bad), bad).toThrow(BackendError);
    }
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['10.0.0.1', 'example.com', '::2', 'localhost.example.com']) expect(isLoopback(h), h).toBe(false);
  });
});

describe('Router', () => {
  const a = parseBackendUrl('imap://127.0.0.1:1');
  const b = parseBackendUrl('imap://127.0.0.1:2');
  const c = parseBackendUrl('imap://127.0.0.1:3');
  const d = parseBackendUrl('imap://127.0.0.1:4');

  it('checks the user table, then rules in order, then the default', async () => {
    const r = new Router({
      defaultBackend: d,
      users: new Map([['Special@Example.com', a]]),
      rules: [
        { match: '*@example.com', backend: b },
        { match: '/^test[0-9]$/', backend: c },
        { match: '*', backend: d },
      ],
    });
    expect(await r.route('Special@Example.com')).toBe(a);
    expect(await r.route('special@example.com')).toBe(a);
    expect(await r.route('bob@EXAMPLE.com')).toBe(b);
    expect(await r.route('test7')).toBe(c);
    expect(await r.route('test77')).toBe(d);
    expect(r.backends().map((x) => x.id).sort()).toEqual([a.id, b.id, c.id, d.id].sort());
  });

  it('compiles globs literally apart from * and ?', () => {
    expect(compilePattern('a.b?c*').test('a.bXcYZ')).toBe(true);
    expect(compilePattern('a.b?c*').test('aXbXc')).toBe(false);
    expect(compilePattern('/^x$/i').test('X')).toBe(true);
  });

  it('asks a route command, passing the user as an argument (never through a shell)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-route-'));
    try {
      const script = path.join(dir, 'route.sh');
      writeFileSync(script, '#!/bin/sh\ncase "$1" in\n  eu-*) echo "127.0.0.1 2001" ;;\n  us-*) echo "imaps://127.0.0.1:2002" ;;\n  *) exit 3 ;;\nesac\n', { mode: 0o755 });
      const r = new Router({ routeCommand: [script] });
      expect((await r.route('eu-anna')).id).toBe('imap://127.0.0.1:2001');
      expect((await r.route('us-bob')).id).toBe('imaps://127.0.0.1:2002');
      await expect(r.route('nobody')).rejects.toThrow(RouteError);
      await expect(r.route('eu-x\n')).rejects.toThrow(/not routable/);
      await expect(r.route('eu-$(touch pwned)')).resolves.toMatchObject({ port: 2001 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => parseRouteOutput('')).toThrow(RouteError);
    expect(() => parseRouteOutput('a b c')).toThrow(RouteError);
    await expect(new Router({}).route('x')).rejects.toThrow(/no route/);
  });
});

describe('proxy config', () => {
  it('builds routing, cache and OAuth2 accounts from a TOML file; flags win', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-proxy-config-'));
    try {
      writeFileSync(path.join(dir, 'client.json'), JSON.stringify({ installed: { client_id: 'id', client_secret: 's', token_uri: 'http://127.0.0.1:1/token' } }));
      const file = path.join(dir, 'proxy.toml');
      writeFileSync(
        file,
        `backend = "main"
port = 1430
[backends.main]
url = "imap://127.0.0.1:1143"
[backends.eu]
url = "imaps://eu.example.com"
[cache]
expiry = 60
maxPerUser = 2
[users]
"vip" = "eu"
[[rules]]
match = "*@eu.example"
backend = "eu"
[oauth2]
clientSecretFile = "client.json"
usersFile = "users"
[oauth2.accounts.alice]
upstreamUser = "alice@gmail.com"
tokenFile = "alice.json"
mechanism = "OAUTHBEARER"
`,
      );
      const config = await loadProxyConfig(file);
      const setup = await resolveProxySetup(config, { config: file, port: 1999, debug: true }, file);
      expect(setup.options.listen).toEqual({ host: '127.0.0.1', port: 1999 });
      expect(setup.logLevel).toBe('debug');
      expect(setup.options.pool).toEqual({ expirySeconds: 60, maxPerUser: 2 });
      expect(setup.usersFile).toBe(path.join(dir, 'users'));
      expect((await setup.options.router.route('vip')).id).toBe('imaps://eu.example.com:993');
      expect((await setup.options.router.route('x@eu.example')).id).toBe('imaps://eu.example.com:993');
      expect((await setup.options.router.route('someone')).id).toBe('imap://127.0.0.1:1143');
      const alice = setup.options.oauth2?.get('alice');
      expect(alice).toMatchObject({ upstreamUser: 'alice@gmail.com', mechanism: 'OAUTHBEARER' });
      expect(alice?.tokens.file).toBe(path.join(dir, 'alice.json'));

      writeFileSync(file, 'port = "x"\n[cache]\nbogus = 1\n');
      const err = await loadProxyConfig(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(`${file}: port`);
      expect((err as Error).message).toContain('cache');
      expect(setup.options.forwardClientAddress).toBe(false);
      expect((await resolveProxySetup({ backend: 'imap://127.0.0.1:1143', forwardClientAddress: true }, {})).options.forwardClientAddress).toBe(true);
      expect((await resolveProxySetup({ backend: 'imap://127.0.0.1:1143', forwardClientAddress: true }, { forwardClientAddress: false })).options.forwardClientAddress).toBe(false);
      await expect(resolveProxySetup({}, {})).rejects.toThrow(/no backend/);
      await expect(resolveProxySetup({ backend: 'imap://example.com', tls: { implicitPort: 993 } }, {})).rejects.toThrow(/implicitPort needs/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
