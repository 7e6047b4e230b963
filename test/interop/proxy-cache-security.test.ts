/**
 * The connection cache against a real Dovecot: a cached upstream connection is never handed to
 * another user, nor to the same user with a wrong password, including under concurrent logins.
 * Each session proves whose connection it got by listing the owner-<user> mailbox that only that
 * user has.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyServer } from '../../src/proxy/server.js';
import { Router } from '../../src/proxy/router.js';
import { parseBackendUrl } from '../../src/proxy/backend.js';
import { peer, startDovecot, TestClient, type Dovecot } from '../proxy/helpers.js';

const haveDovecot = peer('dovecot');
const USERS = ['test1', 'test2', 'test3', 'test4', 'test5', 'test6', 'test7', 'test8', 'test9'];
let dovecot: Dovecot | undefined;
let proxy: ProxyServer | undefined;

beforeAll(async () => {
  if (!haveDovecot) return;
  dovecot = await startDovecot();
  for (const u of USERS) {
    const c = await TestClient.connect(dovecot.port);
    expect((await c.cmd(`LOGIN ${u} pass`)).status).toBe('OK');
    expect((await c.cmd(`CREATE owner-${u}`)).status).toBe('OK');
    await c.cmd('LOGOUT');
    c.close();
  }
  proxy = new ProxyServer({
    router: new Router({ defaultBackend: parseBackendUrl(`imap://127.0.0.1:${dovecot.port}`) }),
    listen: { host: '127.0.0.1', port: 0 },
    pool: { maxPerUser: 30, maxTotal: 1000 },
  });
  await proxy.start();
});

afterAll(async () => {
  await proxy?.stop();
  dovecot?.stop();
});

/** Log in through the proxy; when it works, return the owner-* mailboxes the session can see. */
async function session(user: string, password: string, work = true): Promise<{ ok: boolean; owners: string[] }> {
  const c = await TestClient.connect(proxy!.ports().plain);
  try {
    const r = await c.cmd(`LOGIN ${user} ${password}`);
    if (r.status !== 'OK') return { ok: false, owners: [] };
    const list = await c.cmd('LIST "" "owner-*"');
    const owners = list.lines.map((l) => /"\/" "?(owner-[^"]+)"?$/.exec(l)?.[1] ?? l);
    if (work) {
      expect((await c.cmd('SELECT INBOX')).status).toBe('OK');
      expect((await c.cmd('UID FETCH 1:* (FLAGS)')).status).toBe('OK');
    }
    expect((await c.cmd('LOGOUT')).status).toBe('OK');
    return { ok: true, owners };
  } finally {
    c.close();
  }
}

async function cached(n: number): Promise<void> {
  for (let i = 0; i < 500 && proxy!.pool.size < n; i++) await new Promise((r) => setTimeout(r, 10));
}

describe('connection cache security (Dovecot backend)', () => {
  it('hands a cached connection only to the same user with the same password', async () => {
    if (!haveDovecot) return;
    expect(await session('test1', 'pass')).toEqual({ ok: true, owners: ['owner-test1'] });
    await cached(1);
    expect(proxy!.pool.size).toBe(1);
    expect(await session('test2', 'pass')).toEqual({ ok: true, owners: ['owner-test2'] });
    expect(proxy!.snapshot().hits).toBe(0);
    expect(await session('test1', 'pass')).toEqual({ ok: true, owners: ['owner-test1'] });
    expect(proxy!.snapshot().hits).toBe(1);
  });

  it('keeps users apart under many concurrent logins', async () => {
    if (!haveDovecot) return;
    for (let round = 0; round < 4; round++) {
      const results = await Promise.all(
        Array.from({ length: 27 }, async (_, i) => {
          const user = USERS[(i + round) % USERS.length];
          return { user, ...(await session(user, 'pass', i % 2 === 0)) };
        }),
      );
      for (const r of results) expect(r, r.user).toEqual({ user: r.user, ok: true, owners: [`owner-${r.user}`] });
    }
    const s = proxy!.snapshot();
    expect(s.hits).toBeGreaterThan(27);
    expect(s.loginsFailed).toBe(0);
  });

  it('refuses wrong passwords even while right ones are served from the cache concurrently', async () => {
    if (!haveDovecot) return;
    await cached(9);
    const before = proxy!.snapshot();
    // Wrong passwords go last in this file: Dovecot slows down every login from an address after a failure.
    const results = await Promise.all(
      Array.from({ length: 18 }, async (_, i) => {
        const user = USERS[i % USERS.length];
        const wrong = i % 3 === 0;
        return { user, wrong, ...(await session(user, wrong ? 'pass-but-wrong' : 'pass', false)) };
      }),
    );
    for (const r of results) {
      if (r.wrong) expect(r, r.user).toMatchObject({ ok: false, owners: [] });
      else expect(r, r.user).toEqual({ user: r.user, wrong: false, ok: true, owners: [`owner-${r.user}`] });
    }
    const after = proxy!.snapshot();
    expect(after.loginsFailed - before.loginsFailed).toBe(6);
    expect(after.hits - before.hits).toBeGreaterThan(0);
  });
});
