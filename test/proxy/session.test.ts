/**
 * The proxy end to end against a scripted in-process backend: LOGOUT handling, the connection
 * cache's rules, resets, pipelining, literals, backpressure, TLS both ways, timeouts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { ProxyServer, type ProxyServerOptions } from '../../src/proxy/server.js';
import { Router } from '../../src/proxy/router.js';
import { parseBackendUrl, type Backend } from '../../src/proxy/backend.js';
import { FakeBackend, type FakeBackendOptions } from './fake-backend.js';
import { TestClient, peer, selfSignedCert } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function setup(fakeOpts: FakeBackendOptions = {}, proxyOpts: Partial<ProxyServerOptions> = {}, backend?: (port: number) => Backend) {
  const fake = new FakeBackend({ users: { alice: 'apw', bob: 'bpw', carol: 'cpw' }, ...fakeOpts });
  await fake.start();
  const router = new Router({ defaultBackend: backend ? backend(fake.port) : parseBackendUrl(`imap://127.0.0.1:${fake.port}`) });
  const proxy = new ProxyServer({ router, listen: { host: '127.0.0.1', port: 0 }, ...proxyOpts });
  await proxy.start();
  cleanups.push(() => fake.stop(), () => proxy.stop());
  const connect = async (): Promise<TestClient> => {
    const c = await TestClient.connect(proxy.ports().plain);
    cleanups.push(() => c.close());
    return c;
  };
  return { fake, proxy, connect };
}

async function who(c: TestClient): Promise<{ user: string; conn: number; selected: string }> {
  const r = await c.cmd('XWHO');
  const m = /^\* XWHO (\S+) (\d+) (\S+)$/.exec(r.lines.find((l) => l.startsWith('* XWHO')) ?? '');
  if (!m) throw new Error(`no XWHO in ${r.lines.join('|')}`);
  return { user: m[1], conn: Number(m[2]), selected: m[3] };
}

async function logout(c: TestClient): Promise<string[]> {
  const r = await c.cmd('LOGOUT');
  expect(r.status).toBe('OK');
  await c.closed;
  return r.lines;
}

describe('proxy session', () => {
  it('answers LOGOUT itself, resets with UNSELECT and gives the connection back to the same user', async () => {
    const { fake, proxy, connect } = await setup();
    const c1 = await connect();
    expect(c1.greeting).toMatch(/^\* OK \[CAPABILITY /);
    const login = await c1.cmd('LOGIN alice apw');
    expect(login.line).toMatch(/^t1 OK \[CAPABILITY .*UNSELECT.*\] Logged in$/);
    const first = await who(c1);
    expect(first).toMatchObject({ user: 'alice', selected: '-' });
    expect((await c1.cmd('SELECT INBOX')).status).toBe('OK');
    expect((await logout(c1)).some((l) => l.startsWith('* BYE'))).toBe(true);
    await until(() => proxy.pool.size === 1, 'the connection to be cached');
    const up = fake.connections.find((x) => x.id === first.conn)!;
    expect(up.socket.destroyed).toBe(false);
    expect(up.commands.some((l) => / UNSELECT$/.test(l))).toBe(true);
    expect(up.commands.some((l) => /LOGOUT|CLOSE/i.test(l))).toBe(false);

    const c2 = await connect();
    expect((await c2.cmd('LOGIN alice apw')).status).toBe('OK');
    expect(await who(c2)).toEqual({ user: 'alice', conn: first.conn, selected: '-' });
    await logout(c2);
    const s = proxy.snapshot();
    expect(s).toMatchObject({ hits: 1, misses: 1, loginsOk: 2 });
    expect(fake.connections).toHaveLength(1);
  });

  it('never hands a cached connection to another user or to a wrong password', async () => {
    const { fake, proxy, connect } = await setup();
    const c1 = await connect();
    await c1.cmd('LOGIN alice apw');
    const aliceConn = (await who(c1)).conn;
    await logout(c1);
    await until(() => proxy.pool.size === 1, 'cache');

    const c2 = await connect();
    expect((await c2.cmd('LOGIN bob bpw')).status).toBe('OK');
    const bob = await who(c2);
    expect(bob.user).toBe('bob');
    expect(bob.conn).not.toBe(aliceConn);

    const c3 = await connect();
    const wrong = await c3.cmd('LOGIN alice wrong');
    expect(wrong.status).toBe('NO');
    expect(wrong.text).toContain('AUTHENTICATIONFAILED');
    expect(fake.connections.find((x) => x.id === aliceConn)!.commands.filter((l) => /LOGIN/.test(l))).toHaveLength(1);
    // The wrong password went to the backend on a fresh connection, which said no.
    expect(fake.connections.some((x) => x.authAttempts.some((a) => a.secret === 'wrong'))).toBe(true);
    expect((await c3.cmd('LOGIN alice apw')).status).toBe('OK');
    expect((await who(c3)).conn).toBe(aliceConn);
    expect(proxy.snapshot().hits).toBe(1);
  });

  it('keeps users apart under concurrent logins with right and wrong passwords', async () => {
    const { proxy, connect } = await setup({}, { pool: { maxPerUser: 4 } });
    const users: Array<[string, string]> = [
      ['alice', 'apw'],
      ['bob', 'bpw'],
      ['carol', 'cpw'],
    ];
    let ok = 0;
    let refused = 0;
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        Array.from({ length: 18 }, async (_, i) => {
          const [user, pw] = users[i % 3];
          const wrong = (i + round) % 4 === 0;
          const c = await connect();
          const r = await c.cmd(`LOGIN ${user} ${wrong ? pw + 'x' : pw}`);
          if (wrong) {
            expect(r.status).toBe('NO');
            refused++;
            c.close();
            return;
          }
          expect(r.status).toBe('OK');
          expect((await who(c)).user).toBe(user);
          ok++;
          await logout(c);
        }),
      );
    }
    expect(ok + refused).toBe(72);
    expect(proxy.snapshot().hits).toBeGreaterThan(0);
  });

  it('resets with a failing EXAMINE when the backend has no UNSELECT (never CLOSE)', async () => {
    const { fake, proxy, connect } = await setup({ unselect: false });
    const c1 = await connect();
    await c1.cmd('LOGIN alice apw');
    await c1.cmd('SELECT INBOX');
    const id = (await who(c1)).conn;
    await logout(c1);
    await until(() => proxy.pool.size === 1, 'cache');
    const cmds = fake.connections.find((x) => x.id === id)!.commands;
    expect(cmds.some((l) => /^\S+ EXAMINE "imapkit-reset-[0-9a-f]+"$/.test(l))).toBe(true);
    expect(cmds.some((l) => / CLOSE$/i.test(l))).toBe(false);
    const c2 = await connect();
    await c2.cmd('LOGIN alice apw');
    expect(await who(c2)).toEqual({ user: 'alice', conn: id, selected: '-' });
  });

  it('does not cache a session that ran ENABLE: the backend answers that LOGOUT', async () => {
    const { fake, proxy, connect } = await setup();
    const c = await connect();
    await c.cmd('LOGIN alice apw');
    await c.cmd('ENABLE CONDSTORE');
    const r = await c.cmd('LOGOUT');
    expect(r.lines).toContain('* BYE bye');
    await c.closed;
    await until(() => fake.open().length === 0, 'upstream closed');
    expect(proxy.pool.size).toBe(0);
  });

  it('keeps pipelined commands in order around LOGIN and LOGOUT', async () => {
    const { connect } = await setup();
    const c = await connect();
    c.send('p1 LOGIN alice apw\r\np2 SELECT INBOX\r\np3 XWHO\r\np4 LOGOUT\r\n');
    await c.reply('p4');
    const tags = c.received.filter((l) => /^p\d /.test(l)).map((l) => l.slice(0, 2));
    expect(tags).toEqual(['p1', 'p2', 'p3', 'p4']);
    expect(c.received.some((l) => /^\* XWHO alice \d+ INBOX$/.test(l))).toBe(true);
    const bye = c.received.indexOf('* BYE Logging out');
    expect(bye).toBeGreaterThan(c.received.findIndex((l) => l.startsWith('p3 ')));
  });

  it('passes literals through untouched, even when they contain a LOGOUT line', async () => {
    const { fake, connect } = await setup();
    const c = await connect();
    await c.cmd('LOGIN alice apw');
    const body = 'Subject: x\r\n\r\nz LOGOUT\r\n';
    c.send(`a1 APPEND INBOX {${body.length}}\r\n`);
    await c.waitFor(/^\+ /);
    c.send(`${body}\r\n`);
    expect((await c.reply('a1')).status).toBe('OK');
    const w = await who(c);
    expect(w.user).toBe('alice');
    expect(fake.connections.find((x) => x.id === w.conn)!.commands).toContain(`a1 APPEND INBOX {literal ${body.length}}`);
  });

  it('drops a cached connection that died and does not hand it out', async () => {
    const { fake, proxy, connect } = await setup();
    const c1 = await connect();
    await c1.cmd('LOGIN alice apw');
    const id = (await who(c1)).conn;
    await logout(c1);
    await until(() => proxy.pool.size === 1, 'cache');
    fake.connections.find((x) => x.id === id)!.socket.destroy();
    await until(() => proxy.pool.size === 0, 'dead connection dropped');
    const c2 = await connect();
    expect((await c2.cmd('LOGIN alice apw')).status).toBe('OK');
    expect((await who(c2)).conn).not.toBe(id);
    expect(proxy.snapshot().backends[0].evictions.dead).toBe(1);
  });

  it('does not cache when the client vanishes mid-session, and closes the client when the backend does', async () => {
    const { fake, proxy, connect } = await setup();
    const c1 = await connect();
    await c1.cmd('LOGIN alice apw');
    const id = (await who(c1)).conn;
    c1.close();
    await until(() => fake.connections.find((x) => x.id === id)!.socket.destroyed, 'upstream closed');
    expect(fake.connections.find((x) => x.id === id)!.commands.some((l) => / LOGOUT$/.test(l))).toBe(true);
    expect(proxy.pool.size).toBe(0);

    const c2 = await connect();
    await c2.cmd('LOGIN bob bpw');
    const id2 = (await who(c2)).conn;
    fake.connections.find((x) => x.id === id2)!.socket.destroy();
    await c2.closed;
    await until(() => proxy.snapshot().sessionsActive === 0 && proxy.snapshot().clientsConnected === 0, 'sessions closed');
  });

  it('streams large responses with backpressure, byte for byte', async () => {
    const size = 64 * 1024;
    const count = 400;
    const { proxy } = await setup({ messageSize: size });
    const port = proxy.ports().plain;
    const sock = net.connect(port, '127.0.0.1');
    cleanups.push(() => void sock.destroy());
    let got = Buffer.alloc(0);
    let total = 0;
    const chunks: Buffer[] = [];
    sock.on('data', (d) => {
      total += d.length;
      if (chunks.length < 4 || got.length < 200) chunks.push(d);
    });
    await new Promise((r) => sock.once('connect', r));
    sock.write('a LOGIN alice apw\r\n');
    await until(() => total > 0 && Buffer.concat(chunks).includes('a OK'), 'login');
    got = Buffer.concat(chunks);
    total = 0;
    chunks.length = 0;
    sock.write(`b FETCH 1:${count} BODY[]\r\n`);
    // Stop reading for a while: the proxy must hold back the backend, not buffer everything.
    sock.pause();
    await new Promise((r) => setTimeout(r, 300));
    const active = proxy.snapshot().backends[0];
    expect(active.bytesToClient).toBeLessThan(size * count);
    sock.resume();
    const perMessage = `* 1 FETCH (BODY[] {${size}}\r\n`.length + size + 3;
    let expected = 0;
    for (let i = 1; i <= count; i++) expected += perMessage + String(i).length - 1;
    expected += 'b OK done\r\n'.length;
    await until(() => total >= expected, `all ${expected} bytes (got ${total})`, 30_000);
    expect(total).toBe(expected);
    expect(got.toString()).toContain('a OK');
  });

  it('expires idle cached connections, honours the per-user limit and sends keepalive NOOPs', async () => {
    const { fake, proxy, connect } = await setup({}, { pool: { expirySeconds: 60, maxPerUser: 1, keepaliveSeconds: 0.05 } });
    const [a, b] = [await connect(), await connect()];
    await a.cmd('LOGIN alice apw');
    await b.cmd('LOGIN alice apw');
    const ida = (await who(a)).conn;
    await logout(a);
    await until(() => proxy.pool.size === 1, 'first cached');
    await logout(b);
    await until(() => fake.connections.find((x) => x.id === ida)!.socket.destroyed, 'the older one evicted');
    expect(proxy.pool.size).toBe(1);
    expect(proxy.snapshot().backends[0].evictions.limit).toBe(1);
    const kept = fake.open()[0];
    await until(() => kept.commands.filter((l) => / NOOP$/.test(l)).length >= 3, 'keepalive NOOPs');

    const short = await setup({}, { pool: { expirySeconds: 0.1 } });
    const c = await short.connect();
    await c.cmd('LOGIN carol cpw');
    await logout(c);
    await until(() => short.proxy.snapshot().backends[0].evictions.expired === 1, 'expiry');
    expect(short.proxy.pool.size).toBe(0);
    await until(() => short.fake.open().length === 0, 'expired connection closed');

    const one = await setup({}, { pool: { maxTotal: 1 } });
    for (const [u, p] of [
      ['alice', 'apw'],
      ['bob', 'bpw'],
    ]) {
      const x = await one.connect();
      await x.cmd(`LOGIN ${u} ${p}`);
      await logout(x);
      await until(() => one.proxy.snapshot().backends[0].cachedOnLogout === (u === 'alice' ? 1 : 2), 'cached');
    }
    expect(one.proxy.pool.size).toBe(1);
    expect(one.proxy.pool.sizeFor(one.proxy.snapshot().backends[0].backend, 'bob')).toBe(1);
    expect(one.proxy.snapshot().backends[0].evictions.limit).toBe(1);
  });

  it('says BYE to a client that does not log in in time', async () => {
    const { connect } = await setup({}, { preauthTimeoutSeconds: 0.1 });
    const c = await connect();
    await c.closed;
    expect(c.received).toContain('* BYE Autologout: no login in time');
  });

  it('says UNAVAILABLE when the backend cannot be reached', async () => {
    const { connect, fake } = await setup();
    await fake.stop();
    const c = await connect();
    const r = await c.cmd('LOGIN alice apw');
    expect(r.status).toBe('NO');
    expect(r.text).toMatch(/^\[UNAVAILABLE\]/);
  });
});

describe('proxy TLS', () => {
  const cert = peer('openssl') ? selfSignedCert() : undefined;

  it('verifies backend certificates: refused when untrusted, accepted with the CA configured', async () => {
    if (!cert) return void console.warn('openssl missing: TLS test skipped');
    const bad = await setup({ tls: cert }, {}, (port) => parseBackendUrl(`imaps://127.0.0.1:${port}`, { servername: 'localhost' }));
    const c1 = await bad.connect();
    const r1 = await c1.cmd('LOGIN alice apw');
    expect(r1.status).toBe('NO');
    expect(r1.text).toContain('UNAVAILABLE');
    const good = await setup({ tls: cert }, {}, (port) => parseBackendUrl(`imaps://127.0.0.1:${port}`, { ca: cert.cert, servername: 'localhost' }));
    const c2 = await good.connect();
    expect((await c2.cmd('LOGIN alice apw')).status).toBe('OK');
  });

  it('uses STARTTLS upstream when offered, and refuses plaintext when it is not allowed', async () => {
    if (!cert) return void console.warn('openssl missing: TLS test skipped');
    const s = await setup({ starttls: cert }, {}, (port) => parseBackendUrl(`imap://127.0.0.1:${port}`, { ca: cert.cert, servername: 'localhost' }));
    const c = await s.connect();
    expect((await c.cmd('LOGIN alice apw')).status).toBe('OK');
    expect(s.fake.connections[0].commands.some((l) => / STARTTLS$/.test(l))).toBe(true);
    expect(s.fake.connections[0].socket.constructor.name).toBe('TLSSocket');

    const plain = await setup({}, {}, (port) => ({ ...parseBackendUrl(`imap://127.0.0.1:${port}`), allowPlaintext: false }));
    const p = await plain.connect();
    const r = await p.cmd('LOGIN alice apw');
    expect(r.status).toBe('NO');
    expect(plain.fake.connections.every((x) => x.authAttempts.length === 0)).toBe(true);
  });

  it('offers STARTTLS and implicit TLS to clients', async () => {
    if (!cert) return void console.warn('openssl missing: TLS test skipped');
    const s = await setup({}, { tls: cert, listenTls: { host: '127.0.0.1', port: 0 }, requireTls: true });
    const c = await s.connect();
    expect(c.greeting).toContain('STARTTLS');
    expect(c.greeting).toContain('LOGINDISABLED');
    expect((await c.cmd('LOGIN alice apw')).text).toContain('PRIVACYREQUIRED');
    expect((await c.cmd('STARTTLS')).status).toBe('OK');
    await c.startTls();
    const caps = await c.cmd('CAPABILITY');
    expect(caps.lines[0]).not.toContain('STARTTLS');
    expect((await c.cmd('LOGIN alice apw')).status).toBe('OK');
    expect((await who(c)).user).toBe('alice');

    const t = await TestClient.connect(s.proxy.ports().tls, { tls: true });
    cleanups.push(() => t.close());
    expect(t.greeting).not.toContain('STARTTLS');
    expect((await t.cmd('LOGIN bob bpw')).status).toBe('OK');
    expect((await who(t)).user).toBe('bob');
  });
});
