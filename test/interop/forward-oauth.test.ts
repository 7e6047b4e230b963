/**
 * XOAUTH2 checked by a real server: the target Dovecot's oauth2 passdb asks a token-introspection
 * endpoint served here, and imapkit refreshes its tokens against a token endpoint served here
 * too. The access token stops working mid-run (the server drops the session, as Gmail does when a
 * token expires); the forward refreshes it and goes on, losing and doubling nothing. A token
 * about to expire is refreshed before it is used.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendRaw, duplicates, forwardBlock, haveDovecot, listMailbox, message, rawLogin, startDovecot, startForward, startOAuth, waitFor, type TestDovecot, type TestOAuth } from '../forward/helpers.js';

const enabled = haveDovecot();
let src: TestDovecot;
let dst: TestDovecot;
let oauth: TestOAuth;
let dir: string;

beforeAll(async () => {
  if (!enabled) return;
  oauth = await startOAuth();
  // Only XOAUTH2 is offered, so every login of the forward is an XOAUTH2 one.
  [src, dst] = await Promise.all([startDovecot(), startDovecot({ DOVECOT_OAUTH2_URL: oauth.introspectUrl, DOVECOT_OAUTH2_MECHANISMS: 'xoauth2' })]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-fwd-oauth-'));
});
afterAll(async () => {
  src?.destroy();
  dst?.destroy();
  await oauth?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function countLogins(log: string, method: string): number {
  return log.split('\n').filter((l) => l.includes('Login: user=<test1>') && l.includes(`method=${method}`)).length;
}

describe('imapkit forward to an OAuth2 target', () => {
  it('logs in with XOAUTH2, refreshes a token the server stopped accepting and one about to expire, and forwards exactly once', async () => {
    if (!enabled) return;
    const secret = path.join(dir, 'client.json');
    const tokenFile = path.join(dir, 'token.json');
    writeFileSync(secret, JSON.stringify({ installed: { client_id: 'cid', client_secret: 'csecret', token_uri: oauth.tokenUrl } }));
    const first = oauth.mint('test1');
    writeFileSync(tokenFile, JSON.stringify({ access_token: first, refresh_token: 'rt-test1', expires_at: Math.floor(Date.now() / 1000) + 3600 }), { mode: 0o600 });
    const toml = forwardBlock({
      name: 'gmailish',
      src: src.port,
      srcUser: 'test1',
      dst: dst.port,
      dstUser: 'test1',
      targetExtra: `[forward.target.oauth2]\nprovider = "custom"\nclientSecretFile = "client.json"\ntokenFile = "token.json"\n`,
    });
    // With protocol traces on: they must not show a token either.
    const fwd = await startForward(dir, toml, { debug: true });
    const feed = await rawLogin(src.port, 'test1');
    const sent: string[] = [];
    const send = async (n: number, prefix: string): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const id = `<${prefix}-${i}@family.example>`;
        await appendRaw(feed, 'INBOX', message({ id: id.slice(1, -1) }));
        sent.push(id);
        await new Promise((r) => setTimeout(r, 40));
      }
    };
    const arrived = async (): Promise<boolean> => (await listMailbox(dst.port, 'test1')).length >= sent.length;
    try {
      await send(5, 'a');
      await waitFor('the first messages', arrived, 15_000);
      expect(oauth.refreshes).toBe(0);
      expect(countLogins(dst.log(), 'XOAUTH2')).toBeGreaterThan(0);

      // The token stops working at the server and the session is dropped, while mail keeps coming.
      oauth.revokeAll();
      dst.kick('test1');
      await send(10, 'b');
      await waitFor('mail after the token expired', arrived, 20_000);
      expect(oauth.refreshes).toBeGreaterThanOrEqual(1);
      const stored = JSON.parse(readFileSync(tokenFile, 'utf8')) as { access_token: string; refresh_token: string };
      expect(stored.access_token).not.toBe(first);
      expect(stored.refresh_token).toBe('rt-test1');
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      expect(dst.log()).toMatch(/auth failed.*method=XOAUTH2/);

      // A token that expires within the refresh margin is refreshed before the next login, not after a failure.
      oauth.refreshTtlMs = 100_000;
      writeFileSync(tokenFile, JSON.stringify({ access_token: oauth.mint('test1', 100_000), refresh_token: 'rt-test1', expires_at: Math.floor(Date.now() / 1000) + 100 }), { mode: 0o600 });
      const failuresBefore = (dst.log().match(/auth failed/g) ?? []).length;
      const refreshesBefore = oauth.refreshes;
      dst.kick('test1');
      await send(5, 'c');
      await waitFor('mail after the proactive refresh', arrived, 20_000);
      expect(oauth.refreshes).toBeGreaterThan(refreshesBefore);
      expect((dst.log().match(/auth failed/g) ?? []).length).toBe(failuresBefore);
    } finally {
      await feed.close();
      await fwd.stop();
    }
    const got = await listMailbox(dst.port, 'test1');
    expect(duplicates(got)).toEqual([]);
    expect(got.map((m) => m.messageId).sort()).toEqual([...sent].sort());
    // No token ever reaches the log, in clear or inside a base64 SASL response ("user=" is dXNlcj1).
    const logText = JSON.stringify(fwd.logs());
    expect(logText).toMatch(/AUTHENTICATE/);
    expect(logText).not.toMatch(/at-test1-/);
    expect(logText).not.toMatch(/dXNlcj1|bixhPQ/);
  });
});
