/**
 * OAuth2 translation against the scripted backend: local password (scrypt) in, XOAUTH2 or
 * OAUTHBEARER out, token refreshed before expiry and after a rejection; and no password, token or
 * SASL string ever reaches a log line, at debug level included.
 */
import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { ProxyServer } from '../../src/proxy/server.js';
import { Router } from '../../src/proxy/router.js';
import { parseBackendUrl } from '../../src/proxy/backend.js';
import { TokenSource, writeTokenFile, readTokenFile, xoauth2Base64, oauthBearerBase64 } from '../../src/auth/oauth2/index.js';
import { PasswdFileUserDb } from '../../src/auth/passwd-file.js';
import { createLogger } from '../../src/log/logger.js';
import type { OAuth2Account } from '../../src/proxy/login.js';
import { FakeBackend } from './fake-backend.js';
import { TestClient } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function captureLog(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', destination: dest }) };
}

describe('OAuth2 translation', () => {
  it('logs in upstream with a refreshed token for a local password, and never logs a secret', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-proxy-oauth2-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // Token endpoint: hands out T1, T2, ... for the refresh token.
    let issued = 0;
    const grants: string[] = [];
    const tokenServer = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        grants.push(`${form.get('grant_type')}:${form.get('refresh_token')}:${form.get('client_secret')}`);
        issued++;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `access-token-${issued}-SECRET`, expires_in: 3600 }));
      });
    });
    await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => tokenServer.close(() => r())));
    const tokenUrl = `http://127.0.0.1:${(tokenServer.address() as { port: number }).port}/token`;

    // The backend accepts only the newest token.
    let valid = 'access-token-1-SECRET';
    const fake = new FakeBackend({ users: { plainuser: 'plain-password-SECRET' }, tokenOk: (user, token) => user === 'alice@example.com' && token === valid });
    await fake.start();
    cleanups.push(() => fake.stop());

    const tokenFile = path.join(dir, 'alice.json');
    await writeTokenFile(tokenFile, { access_token: 'access-token-0-SECRET', refresh_token: 'refresh-token-SECRET', expires_at: Math.floor(Date.now() / 1000) - 10 });
    const users = new PasswdFileUserDb(path.join(dir, 'users'), { scryptLn: 10 });
    await users.addUser('alice', 'local-password-SECRET');
    const client = { clientId: 'client-id', clientSecret: 'client-secret-SECRET', tokenUrl };
    const oauth2 = new Map<string, OAuth2Account>([
      ['alice', { localUser: 'alice', upstreamUser: 'alice@example.com', mechanism: 'XOAUTH2', tokens: new TokenSource({ tokenFile, client }) }],
    ]);
    const { lines, logger } = captureLog();
    const proxy = new ProxyServer({
      router: new Router({ defaultBackend: parseBackendUrl(`imap://127.0.0.1:${fake.port}`) }),
      listen: { host: '127.0.0.1', port: 0 },
      oauth2,
      passwords: users,
      log: logger,
    });
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const port = proxy.ports().plain;

    // 1. Expired token: refreshed before the upstream login.
    const c1 = await TestClient.connect(port);
    cleanups.push(() => c1.close());
    expect((await c1.cmd('LOGIN alice local-password-SECRET')).status).toBe('OK');
    const x1 = await c1.cmd('XWHO');
    expect(x1.lines[0]).toMatch(/^\* XWHO alice@example.com /);
    expect(fake.connections[0].authAttempts.map((a) => a.mechanism)).toEqual(['XOAUTH2']);
    expect((await readTokenFile(tokenFile)).access_token).toBe('access-token-1-SECRET');
    await c1.cmd('LOGOUT');
    await c1.closed;

    // 2. Wrong local password: refused without asking the backend, and never matched to the cache.
    const c2 = await TestClient.connect(port);
    cleanups.push(() => c2.close());
    const bad = await c2.cmd('AUTHENTICATE PLAIN ' + Buffer.from('\0alice\0wrong-password-SECRET').toString('base64'));
    expect(bad.status).toBe('NO');
    expect(fake.connections).toHaveLength(1);

    // 3. Cached connection for the right local password (no scrypt, no token use).
    expect((await c2.cmd('LOGIN alice local-password-SECRET')).status).toBe('OK');
    expect(proxy.snapshot().hits).toBe(1);
    c2.close();

    // 4. The backend revokes the token: the proxy refreshes and retries once.
    valid = 'access-token-2-SECRET';
    await new Promise((r) => setTimeout(r, 50));
    const c3 = await TestClient.connect(port);
    cleanups.push(() => c3.close());
    expect((await c3.cmd('LOGIN alice local-password-SECRET')).status).toBe('OK');
    const last = fake.connections[fake.connections.length - 1];
    expect(last.authAttempts.map((a) => a.secret)).toEqual(['access-token-1-SECRET', 'access-token-2-SECRET']);
    expect(grants).toEqual(['refresh_token:refresh-token-SECRET:client-secret-SECRET', 'refresh_token:refresh-token-SECRET:client-secret-SECRET']);
    await c3.cmd('LOGOUT');

    // 5. A pass-through user alongside, by LOGIN and AUTHENTICATE PLAIN.
    const c4 = await TestClient.connect(port);
    cleanups.push(() => c4.close());
    expect((await c4.cmd('LOGIN plainuser plain-password-SECRET')).status).toBe('OK');
    c4.close();
    const c5 = await TestClient.connect(port);
    cleanups.push(() => c5.close());
    c5.send('a AUTHENTICATE PLAIN\r\n');
    await c5.waitFor(/^\+/);
    c5.send(Buffer.from('\0plainuser\0plain-password-SECRET').toString('base64') + '\r\n');
    expect((await c5.reply('a')).status).toBe('OK');
    await c5.cmd('LOGOUT');
    await new Promise((r) => setTimeout(r, 50));

    const all = lines.join('');
    expect(lines.length).toBeGreaterThan(10);
    expect(all).toContain('"level":20');
    expect(all).toContain('alice');
    const secrets = [
      'SECRET',
      Buffer.from('\0alice\0wrong-password-SECRET').toString('base64'),
      Buffer.from('\0plainuser\0plain-password-SECRET').toString('base64'),
      xoauth2Base64('alice@example.com', 'access-token-1-SECRET'),
      oauthBearerBase64('alice@example.com', 'access-token-1-SECRET'),
    ];
    for (const s of secrets) expect(all, s).not.toContain(s);
  });
});
