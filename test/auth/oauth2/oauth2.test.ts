import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  clientFromJson,
  gs2SaslName,
  oauthBearerRaw,
  OAuth2Error,
  parseTokenSet,
  readTokenFile,
  refreshTokens,
  TokenSource,
  writeTokenFile,
  xoauth2Base64,
  xoauth2Raw,
} from '../../../src/auth/oauth2/index.js';

describe('SASL strings', () => {
  it('builds XOAUTH2 exactly as Google documents it', () => {
    expect(xoauth2Raw('someuser@example.com', 'ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg')).toBe(
      'user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01',
    );
    expect(Buffer.from(xoauth2Base64('u', 't'), 'base64').toString()).toBe('user=u\x01auth=Bearer t\x01\x01');
  });

  it('builds OAUTHBEARER with the RFC 7628 gs2 header', () => {
    // RFC 7628 section 4.1 example.
    expect(oauthBearerRaw('user@example.com', 'vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==', { host: 'server.example.com', port: 143 })).toBe(
      'n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01',
    );
    expect(oauthBearerRaw('a,b=c', 't')).toBe('n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01');
    expect(gs2SaslName('x=,')).toBe('x=3D=2C');
  });
});

describe('token file', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-oauth2-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses seconds, milliseconds and ISO dates, and rejects bad files without echoing tokens', () => {
    expect(parseTokenSet('{"access_token":"a","refresh_token":"r","expires_at":1700000000}').expires_at).toBe(1700000000);
    expect(parseTokenSet('{"access_token":"a","expires_at":1700000000000}').expires_at).toBe(1700000000);
    expect(parseTokenSet('{"access_token":"a","expires_at":"2023-11-14T22:13:20Z"}').expires_at).toBe(1700000000);
    expect(() => parseTokenSet('{"access_token":"a","expires_at":"soon"}')).toThrow(/expires_at/);
    expect(() => parseTokenSet('{"token":"secret-value"}')).toThrow(/missing/);
    try {
      parseTokenSet('{"access_token": secret-value}');
    } catch (err) {
      expect((err as Error).message).not.toContain('secret-value');
    }
  });

  it('writes atomically with mode 0600, keeping unknown keys', async () => {
    const file = path.join(dir, 'tok.json');
    writeFileSync(file, '{}', { mode: 0o644 });
    await writeTokenFile(file, { access_token: 'A', refresh_token: 'R', expires_at: 5, extra: 'kept' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await readTokenFile(file)).toEqual({ access_token: 'A', refresh_token: 'R', expires_at: 5, extra: 'kept' });
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('reads Google client-secret files and flat ones', () => {
    expect(clientFromJson({ installed: { client_id: 'id', client_secret: 's', token_uri: 'https://t' } }, 'f')).toEqual({ clientId: 'id', clientSecret: 's', tokenUrl: 'https://t' });
    expect(clientFromJson({ client_id: 'id' }, 'f', 'https://fallback')).toEqual({ clientId: 'id', clientSecret: undefined, tokenUrl: 'https://fallback' });
    expect(() => clientFromJson({ web: {} }, 'f')).toThrow(/client_id/);
  });
});

describe('refresh', () => {
  let server: http.Server;
  let url = '';
  const requests: URLSearchParams[] = [];
  let respond: (res: http.ServerResponse) => void = () => undefined;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-oauth2-'));
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        requests.push(new URLSearchParams(body));
        respond(res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/token`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('posts the refresh grant and computes expires_at', async () => {
    requests.length = 0;
    respond = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'NEW', expires_in: 3600, token_type: 'Bearer' }));
    const next = await refreshTokens({ clientId: 'cid', clientSecret: 'csec', tokenUrl: url }, { access_token: 'OLD', refresh_token: 'REF' }, { now: () => 1_000_000 });
    expect(next).toEqual({ access_token: 'NEW', refresh_token: 'REF', expires_at: 1000 + 3600, token_type: 'Bearer' });
    expect(Object.fromEntries(requests[0])).toEqual({ grant_type: 'refresh_token', refresh_token: 'REF', client_id: 'cid', client_secret: 'csec' });
  });

  it('reports the endpoint error code, never the tokens', async () => {
    respond = (res) => res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_grant"}');
    const err = await refreshTokens({ clientId: 'c', tokenUrl: url + '?secret=q' }, { access_token: 'AT-SECRET', refresh_token: 'RT-SECRET' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OAuth2Error);
    expect((err as OAuth2Error).code).toBe('invalid_grant');
    expect((err as Error).message).not.toMatch(/SECRET|secret=q/);
  });

  it('TokenSource refreshes before expiry, once for concurrent callers, and after a failure', async () => {
    const file = path.join(dir, 'src.json');
    let now = 1_000_000_000;
    await writeTokenFile(file, { access_token: 'T0', refresh_token: 'R0', expires_at: now / 1000 + 30 });
    let n = 0;
    requests.length = 0;
    respond = (res) => {
      n++;
      setTimeout(() => res.writeHead(200).end(JSON.stringify({ access_token: `T${n}`, refresh_token: `R${n}`, expires_in: 3600 })), 20);
    };
    const src = new TokenSource({ tokenFile: file, client: { clientId: 'c', tokenUrl: url }, now: () => now });
    const got = await Promise.all([src.accessToken(), src.accessToken(), src.accessToken()]);
    expect(got).toEqual(['T1', 'T1', 'T1']);
    expect(requests).toHaveLength(1);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ access_token: 'T1', refresh_token: 'R1' });
    expect(await src.accessToken()).toBe('T1');
    expect(await src.afterAuthFailure('T1')).toBe('T2');
    expect(requests.map((r) => r.get('refresh_token'))).toEqual(['R0', 'R1']);
    // A stale failure report (someone already refreshed) does not refresh again.
    expect(await src.afterAuthFailure('T1')).toBe('T2');
    now += 3600 * 1000;
    expect(await src.accessToken()).toBe('T3');
    expect(src.refreshes).toBe(3);
  });
});
