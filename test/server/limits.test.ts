/** Limits: connections per address, failed-login slowdown, inactivity timeouts, server close. */
import { describe, expect, it } from 'vitest';
import { ConnectionLimiter, LoginThrottle, resolveLimits, DEFAULT_LIMITS } from '../../src/server/limits.js';
import { TestClient, loggedIn, startTestServer } from './helpers.js';

describe('ConnectionLimiter', () => {
  it('counts per address and in total, and frees on release', () => {
    const l = new ConnectionLimiter({ maxConnectionsPerAddress: 2, maxConnections: 3 });
    expect(l.acquire('a')).toBe(true);
    expect(l.acquire('a')).toBe(true);
    expect(l.acquire('a')).toBe(false);
    expect(l.acquire('b')).toBe(true);
    expect(l.acquire('c')).toBe(false);
    expect(l.count()).toBe(3);
    l.release('a');
    expect(l.count('a')).toBe(1);
    expect(l.acquire('c')).toBe(true);
  });

  it('treats 0 as unlimited', () => {
    const l = new ConnectionLimiter({ maxConnectionsPerAddress: 0, maxConnections: 0 });
    for (let i = 0; i < 1000; i++) expect(l.acquire('x')).toBe(true);
  });
});

describe('LoginThrottle', () => {
  it('doubles the delay per failure up to the ceiling, per address and user', () => {
    const t = new LoginThrottle({ failedLoginDelayMs: 100, failedLoginMaxDelayMs: 500 }, () => 0);
    expect(t.fail('1.2.3.4', 'bob')).toBe(100);
    expect(t.fail('1.2.3.4', 'bob')).toBe(200);
    expect(t.fail('1.2.3.4', 'BOB')).toBe(400);
    expect(t.fail('1.2.3.4', 'bob')).toBe(500);
    // Another user from the same address, or the same user elsewhere, starts afresh.
    expect(t.fail('1.2.3.4', 'alice')).toBe(100);
    expect(t.fail('5.6.7.8', 'bob')).toBe(100);
    t.succeed('1.2.3.4', 'bob');
    expect(t.failures('1.2.3.4', 'bob')).toBe(0);
    expect(t.fail('1.2.3.4', 'bob')).toBe(100);
  });

  it('forgets failures after 15 minutes', () => {
    let now = 0;
    const t = new LoginThrottle({ failedLoginDelayMs: 100, failedLoginMaxDelayMs: 10_000 }, () => now);
    t.fail('a', 'u');
    t.fail('a', 'u');
    now += 15 * 60_000;
    expect(t.failures('a', 'u')).toBe(0);
    expect(t.fail('a', 'u')).toBe(100);
  });
});

describe('resolveLimits', () => {
  it('keeps defaults for keys not given', () => {
    const l = resolveLimits({ appendLimit: 10, idleTimeoutMs: undefined });
    expect(l.appendLimit).toBe(10);
    expect(l.idleTimeoutMs).toBe(DEFAULT_LIMITS.idleTimeoutMs);
    expect(DEFAULT_LIMITS.idleTimeoutMs).toBeGreaterThanOrEqual(30 * 60_000);
  });
});

describe('server limits', () => {
  it('refuses connections beyond the per-address limit with BYE [LIMIT]', async () => {
    const srv = await startTestServer({ limits: { maxConnectionsPerAddress: 2 } });
    const one = await TestClient.connect(srv.port);
    const two = await TestClient.connect(srv.port);
    const three = await TestClient.connect(srv.port);
    expect(one.greeting).toMatch(/^\* OK/);
    expect(two.greeting).toMatch(/^\* OK/);
    expect(three.greeting).toBe('* BYE [LIMIT] Too many connections from your address.');
    three.client.close();
    one.client.close();
    // Once the server has seen the close, a new connection is admitted again.
    while (srv.server.connections > 1) await new Promise((r) => setImmediate(r));
    const four = await TestClient.connect(srv.port);
    expect(four.greeting).toMatch(/^\* OK/);
    two.client.close();
    four.client.close();
    await srv.close();
  });

  it('disconnects an idle unauthenticated client with BYE', async () => {
    const srv = await startTestServer({ limits: { preAuthTimeoutMs: 100 } });
    const { client } = await TestClient.connect(srv.port);
    expect(await client.readLine()).toBe('* BYE Disconnected for inactivity.');
    await expect(client.readLine()).rejects.toThrow(/closed/);
    await srv.close();
  });

  it('close() says BYE to every session and resolves when they are gone', async () => {
    const srv = await startTestServer();
    const a = await loggedIn(srv.port);
    const b = (await TestClient.connect(srv.port)).client;
    await a.command('SELECT INBOX');
    const closing = srv.close();
    expect(await a.readLine()).toBe('* BYE Server shutting down.');
    expect(await b.readLine()).toBe('* BYE Server shutting down.');
    a.close();
    b.close();
    await closing;
    expect(srv.server.connections).toBe(0);
  });

  it('answers NO to each failed login while the slowdown is on, and a success resets it', async () => {
    const srv = await startTestServer({ limits: { failedLoginDelayMs: 1, failedLoginMaxDelayMs: 4 } });
    const c = (await TestClient.connect(srv.port)).client;
    for (let i = 0; i < 4; i++) expect((await c.command('LOGIN test1 wrong')).tagged).toMatch(/^NO \[AUTHENTICATIONFAILED\]/);
    // A success resets the count; the session goes on normally.
    expect((await c.command('LOGIN test1 pass')).tagged).toMatch(/^OK/);
    c.close();
    await srv.close();
  });
});
