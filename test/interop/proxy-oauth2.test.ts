/**
 * OAuth2 translation against a real Dovecot whose oauth2 passdb checks tokens at an introspection
 * endpoint served by this test; the token endpoint the proxy refreshes against is served here too.
 * Clients log in with a local password; Dovecot only ever sees XOAUTH2 / OAUTHBEARER.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { ProxyServer } from '../../src/proxy/server.js';
import { Router } from '../../src/proxy/router.js';
import { parseBackendUrl } from '../../src/proxy/backend.js';
import { TokenSource, readTokenFile, writeTokenFile } from '../../src/auth/oauth2/index.js';
import { PasswdFileUserDb } from '../../src/auth/passwd-file.js';
import { createLogger } from '../../src/log/logger.js';
import type { OAuth2Account } from '../../src/proxy/login.js';
import { peer, startDovecot, TestClient, type Dovecot } from '../proxy/helpers.js';

const haveDovecot = peer('dovecot');
let dovecot: Dovecot | undefined;
let proxy: ProxyServer | undefined;
let http1: http.Server | undefined;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imapkit-proxy-oauth2-'));
/** Tokens the introspection endpoint accepts, and whose they are. */
const active = new Map<string, string>();
const introspected: string[] = [];
const refreshes: string[] = [];
const logLines: string[] = [];
let issued = 0;

beforeAll(async () => {
  if (!haveDovecot) return;
  http1 = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      if (req.url === '/introspect') {
        const token = form.get('token') ?? '';
        introspected.push(token);
        const user = active.get(token);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(user ? { active: true, username: user } : { active: false }));
      } else if (req.url === '/token' && form.get('grant_type') === 'refresh_token') {
        const rt = form.get('refresh_token') ?? '';
        refreshes.push(rt);
        const user = rt.replace(/^refresh-/, '').replace(/-SECRET$/, '');
        const token = `at-${user}-${++issued}-SECRET`;
        active.set(token, user);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: token, expires_in: 3600, token_type: 'Bearer' }));
      } else {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}');
      }
    });
  });
  await new Promise<void>((r) => http1!.listen(0, '127.0.0.1', () => r()));
  const hp = (http1.address() as { port: number }).port;
  dovecot = await startDovecot({ DOVECOT_OAUTH2_URL: `http://127.0.0.1:${hp}/introspect` });

  const users = new PasswdFileUserDb(path.join(tmp, 'users'), { scryptLn: 10 });
  await users.addUser('alice', 'alice-local-SECRET');
  await users.addUser('bob', 'bob-local-SECRET');
  const client = { clientId: 'imapkit-test', clientSecret: 'client-SECRET', tokenUrl: `http://127.0.0.1:${hp}/token` };
  const now = Math.floor(Date.now() / 1000);
  // alice: expired token in the file; bob: a token the file thinks is fine but the server revoked.
  await writeTokenFile(path.join(tmp, 'alice.json'), { access_token: 'at-test1-old-SECRET', refresh_token: 'refresh-test1-SECRET', expires_at: now - 60 });
  await writeTokenFile(path.join(tmp, 'bob.json'), { access_token: 'at-test2-revoked-SECRET', refresh_token: 'refresh-test2-SECRET', expires_at: now + 3000 });
  const accounts = new Map<string, OAuth2Account>([
    ['alice', { localUser: 'alice', upstreamUser: 'test1', mechanism: 'XOAUTH2', tokens: new TokenSource({ tokenFile: path.join(tmp, 'alice.json'), client }) }],
    ['bob', { localUser: 'bob', upstreamUser: 'test2', mechanism: 'OAUTHBEARER', tokens: new TokenSource({ tokenFile: path.join(tmp, 'bob.json'), client }) }],
  ]);
  const dest = new Writable({
    write(chunk: Buffer, _e, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  proxy = new ProxyServer({
    router: new Router({ defaultBackend: parseBackendUrl(`imap://127.0.0.1:${dovecot.port}`) }),
    listen: { host: '127.0.0.1', port: 0 },
    oauth2: accounts,
    passwords: users,
    log: createLogger({ level: 'debug', destination: dest }),
  });
  await proxy.start();
});

afterAll(async () => {
  await proxy?.stop();
  dovecot?.stop();
  await new Promise((r) => (http1 ? http1.close(r) : r(undefined)));
  rmSync(tmp, { recursive: true, force: true });
});

async function login(user: string, password: string): Promise<{ status: string; inbox?: string }> {
  const c = await TestClient.connect(proxy!.ports().plain);
  try {
    const r = await c.cmd(`LOGIN ${user} ${password}`);
    if (r.status !== 'OK') return { status: r.status };
    const sel = await c.cmd('SELECT INBOX');
    await c.cmd('LOGOUT');
    return { status: 'OK', inbox: sel.status };
  } finally {
    c.close();
  }
}

describe('OAuth2 translation (Dovecot oauth2 passdb)', () => {
  it('refreshes an expired token before logging in with XOAUTH2', async () => {
    if (!haveDovecot) return;
    expect(await login('alice', 'alice-local-SECRET')).toEqual({ status: 'OK', inbox: 'OK' });
    expect(refreshes).toEqual(['refresh-test1-SECRET']);
    expect(introspected).toEqual(['at-test1-1-SECRET']);
    expect((await readTokenFile(path.join(tmp, 'alice.json'))).access_token).toBe('at-test1-1-SECRET');
    // Dovecot's log shows the mechanism it saw.
    expect(readFileSync(path.join(dovecot!.dir, 'dovecot.log'), 'utf8')).toMatch(/Login: user=<test1>, method=XOAUTH2/);
  });

  it('refreshes after Dovecot rejects a revoked token and retries with OAUTHBEARER', async () => {
    if (!haveDovecot) return;
    expect(await login('bob', 'bob-local-SECRET')).toEqual({ status: 'OK', inbox: 'OK' });
    expect(refreshes).toEqual(['refresh-test1-SECRET', 'refresh-test2-SECRET']);
    expect(introspected.slice(-2)).toEqual(['at-test2-revoked-SECRET', 'at-test2-2-SECRET']);
    expect(readFileSync(path.join(dovecot!.dir, 'dovecot.log'), 'utf8')).toMatch(/Login: user=<test2>, method=OAUTHBEARER/);
  });

  it('refuses a wrong local password without touching the backend, and never logs secrets', async () => {
    if (!haveDovecot) return;
    const n = introspected.length;
    expect(await login('alice', 'not-her-password-SECRET')).toEqual({ status: 'NO' });
    expect(introspected.length).toBe(n);
    const all = logLines.join('');
    expect(all).toContain('"user":"alice"');
    expect(all).toContain('"level":20');
    expect(all).not.toContain('SECRET');
  });
});
