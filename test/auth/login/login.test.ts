import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { login, resolveProvider, authorizationUrl, s256, createPkce, browserCommand } from '../../../src/auth/login/index.js';
import { startFakeIdp, type FakeIdp } from './fake-idp.js';

let dir: string;
let idp: FakeIdp;
let secretFile: string;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-login-'));
  idp = await startFakeIdp();
  secretFile = path.join(dir, 'client.json');
  writeFileSync(secretFile, JSON.stringify({
    installed: { client_id: 'cid', client_secret: 'csecret', auth_uri: `${idp.url}/authorize`, token_uri: `${idp.url}/token`, device_authorization_uri: `${idp.url}/device`, scope: 'mail' },
  }));
});
afterEach(async () => {
  await idp.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A "browser" that follows the authorization redirect to the loopback listener. */
async function browse(url: string): Promise<{ status: number; location: string }> {
  const r1 = await fetch(url, { redirect: 'manual' });
  const location = r1.headers.get('location') ?? '';
  const r2 = await fetch(location);
  await r2.text();
  return { status: r2.status, location };
}

describe('installed-app flow', () => {
  it('signs in through the loopback redirect with PKCE and writes a 0600 token file', async () => {
    const tokenFile = path.join(dir, 'token.json');
    const lines: string[] = [];
    let redirectStatus = 0;
    const tokens = await login({
      provider: 'custom', clientSecretFile: secretFile, tokenFile, print: (l) => lines.push(l),
      openBrowser: async (url) => {
        redirectStatus = (await browse(url)).status;
        return true;
      },
    });
    expect(redirectStatus).toBe(200);
    expect(tokens.access_token).toBe('at-code');
    const onDisk = JSON.parse(readFileSync(tokenFile, 'utf8')) as Record<string, unknown>;
    expect(onDisk.refresh_token).toBe('rt-code');
    expect(typeof onDisk.expires_at).toBe('number');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const req = idp.tokenRequests[0]!;
    expect(req.get('grant_type')).toBe('authorization_code');
    expect(req.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(req.get('code_verifier')!.length).toBeGreaterThanOrEqual(43);
    // The URL is printed even when the browser opened, in case the window went elsewhere.
    expect(lines.some((l) => l.includes(`${idp.url}/authorize?`))).toBe(true);
  });

  it('prints the URL when no browser opens and accepts the pasted redirect address', async () => {
    const paste = new PassThrough();
    const lines: string[] = [];
    const tokens = await login({
      provider: 'custom', clientSecretFile: secretFile, tokenFile: path.join(dir, 't.json'), print: (l) => lines.push(l),
      openBrowser: async () => false,
      pasteInput: paste,
      onAuthUrl: (url) => {
        void (async () => {
          // The browser elsewhere cannot reach our listener: the user copies its address bar.
          const r = await fetch(url, { redirect: 'manual' });
          paste.write('not a url at all\n');
          paste.write(`${r.headers.get('location')}\n`);
        })();
      },
    });
    expect(tokens.refresh_token).toBe('rt-code');
    expect(lines[0]).toMatch(/^Open this address/);
    expect(lines.some((l) => l.includes('holds no code'))).toBe(true);
  });

  it('ignores a redirect with a foreign state and reports a refused sign-in clearly', async () => {
    idp.denyWith = 'access_denied';
    let foreign = 0;
    const p = login({
      provider: 'custom', clientSecretFile: secretFile, tokenFile: path.join(dir, 't.json'), print: () => undefined,
      openBrowser: async (url) => {
        const redirect = new URL(url).searchParams.get('redirect_uri')!;
        foreign = (await fetch(`${redirect}?code=stolen&state=other`)).status;
        await browse(url);
        return true;
      },
    });
    await expect(p).rejects.toThrow(/sign-in refused: access_denied/);
    expect(foreign).toBe(400);
    expect(idp.tokenRequests).toHaveLength(0);
  });

  it('builds Google and Microsoft authorization requests from the presets', async () => {
    const f = path.join(dir, 'g.json');
    writeFileSync(f, JSON.stringify({ installed: { client_id: 'g-id', client_secret: 'g-s', auth_uri: 'https://accounts.google.com/o/oauth2/auth', token_uri: 'https://oauth2.googleapis.com/token' } }));
    const g = await resolveProvider('google', f);
    const u = new URL(authorizationUrl(g, 'http://127.0.0.1:5000/', 'st', 'ch'));
    expect(u.origin + u.pathname).toBe('https://accounts.google.com/o/oauth2/v2/auth');
    expect(u.searchParams.get('scope')).toBe('https://mail.google.com/');
    expect(u.searchParams.get('access_type')).toBe('offline');
    expect(u.searchParams.get('code_challenge_method')).toBe('S256');
    const m = path.join(dir, 'm.json');
    writeFileSync(m, JSON.stringify({ client_id: 'm-id', tenant: 'contoso.onmicrosoft.com' }));
    const ms = await resolveProvider('microsoft', m);
    expect(ms.client.tokenUrl).toBe('https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token');
    expect(ms.scope).toContain('offline_access');
    expect(ms.redirectHost).toBe('localhost');
    expect(ms.client.clientSecret).toBeUndefined();
  });

  it('computes the RFC 7636 appendix B S256 challenge', () => {
    expect(s256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
    const p = createPkce();
    expect(p.verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.challenge).toBe(s256(p.verifier));
  });

  it('does not try xdg-open without a display', () => {
    expect(browserCommand('linux', {})).toBeUndefined();
    expect(browserCommand('linux', { DISPLAY: ':0' })).toEqual(['xdg-open']);
    expect(browserCommand('darwin', {})).toEqual(['open']);
  });
});

describe('device flow', () => {
  it('polls through authorization_pending and slow_down, then stores the tokens', async () => {
    idp.devicePlan = ['authorization_pending', 'slow_down'];
    const sleeps: number[] = [];
    const lines: string[] = [];
    const tokenFile = path.join(dir, 'dev.json');
    const tokens = await login({
      provider: 'custom', clientSecretFile: secretFile, tokenFile, device: true, print: (l) => lines.push(l),
      sleep: async (ms) => { sleeps.push(ms); },
    });
    expect(tokens.access_token).toBe('at-device');
    expect(sleeps).toEqual([5000, 5000, 10000]);
    expect(lines.join('\n')).toContain('ABCD-EFGH');
    expect(lines.join('\n')).toContain(`${idp.url}/activate`);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(idp.tokenRequests.map((r) => r.get('grant_type'))).toEqual(Array(3).fill('urn:ietf:params:oauth:grant-type:device_code'));
  });

  it('stops with a clear error when the user refuses', async () => {
    idp.devicePlan = ['access_denied'];
    await expect(login({ provider: 'custom', clientSecretFile: secretFile, tokenFile: path.join(dir, 'x.json'), device: true, print: () => undefined, sleep: async () => undefined }))
      .rejects.toThrow(/refused on the other device/);
  });
});
