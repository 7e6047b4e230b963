/** A fake OAuth2 identity provider on loopback for login tests: authorize, token, device endpoints. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

/** What the fake IdP saw and how it should behave. */
export interface FakeIdp {
  url: string;
  /** Requests to /token, as parsed forms. */
  tokenRequests: URLSearchParams[];
  /** Device polls answer these errors in turn before succeeding. */
  devicePlan: string[];
  /** Refuse the sign-in with this error at /authorize. */
  denyWith?: string;
  close(): Promise<void>;
}

const b64url = (b: Buffer): string => b.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/** Start the fake IdP. Client "cid" with secret "csecret". */
export async function startFakeIdp(): Promise<FakeIdp> {
  const codes = new Map<string, { challenge: string; redirectUri: string }>();
  const idp: FakeIdp = { url: '', tokenRequests: [], devicePlan: [], close: async () => undefined };
  let n = 0;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const json = (status: number, obj: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(obj));
      };
      if (u.pathname === '/authorize') {
        const q = u.searchParams;
        const redirect = new URL(q.get('redirect_uri') ?? 'http://invalid/');
        if (q.get('client_id') !== 'cid' || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge') || q.get('response_type') !== 'code') {
          res.writeHead(400).end('bad request');
          return;
        }
        if (idp.denyWith) {
          redirect.searchParams.set('error', idp.denyWith);
        } else {
          const code = `code-${++n}`;
          codes.set(code, { challenge: q.get('code_challenge')!, redirectUri: q.get('redirect_uri')! });
          redirect.searchParams.set('code', code);
        }
        redirect.searchParams.set('state', q.get('state') ?? '');
        res.writeHead(302, { location: redirect.toString() }).end();
        return;
      }
      const form = new URLSearchParams(body);
      if (u.pathname === '/device') {
        if (form.get('client_id') !== 'cid') return json(400, { error: 'invalid_client' });
        return json(200, { device_code: 'dev-1', user_code: 'ABCD-EFGH', verification_url: `${idp.url}/activate`, expires_in: 600, interval: 5 });
      }
      if (u.pathname === '/token') {
        idp.tokenRequests.push(form);
        if (form.get('client_id') !== 'cid' || form.get('client_secret') !== 'csecret') return json(401, { error: 'invalid_client' });
        const grant = form.get('grant_type');
        if (grant === 'authorization_code') {
          const c = codes.get(form.get('code') ?? '');
          codes.delete(form.get('code') ?? '');
          if (!c || c.redirectUri !== form.get('redirect_uri')) return json(400, { error: 'invalid_grant' });
          const verifier = form.get('code_verifier') ?? '';
          if (b64url(createHash('sha256').update(verifier).digest()) !== c.challenge) return json(400, { error: 'invalid_grant', error_description: 'PKCE mismatch' });
          return json(200, { access_token: 'at-code', refresh_token: 'rt-code', expires_in: 3599, token_type: 'Bearer', scope: 'mail' });
        }
        if (grant === 'urn:ietf:params:oauth:grant-type:device_code') {
          if (form.get('device_code') !== 'dev-1') return json(400, { error: 'invalid_grant' });
          const next = idp.devicePlan.shift();
          if (next) return json(400, { error: next });
          return json(200, { access_token: 'at-device', refresh_token: 'rt-device', expires_in: 3600 });
        }
        return json(400, { error: 'unsupported_grant_type' });
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  idp.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  idp.close = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); });
  return idp;
}
