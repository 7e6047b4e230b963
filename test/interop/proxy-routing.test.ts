/**
 * Routing against two real Dovecot instances: users go to the backend the table, a pattern rule,
 * the route command or the default names, and cached connections stay with their backend.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProxyServer } from '../../src/proxy/server.js';
import { Router } from '../../src/proxy/router.js';
import { parseBackendUrl } from '../../src/proxy/backend.js';
import { peer, startDovecot, TestClient, type Dovecot } from '../proxy/helpers.js';

const haveDovecot = peer('dovecot');
let a: Dovecot | undefined;
let b: Dovecot | undefined;
const servers: ProxyServer[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imapkit-proxy-routing-'));

async function mark(d: Dovecot, name: string): Promise<void> {
  for (const u of ['test1', 'test2', 'test3', 'test5', 'test9']) {
    const c = await TestClient.connect(d.port);
    await c.cmd(`LOGIN ${u} pass`);
    expect((await c.cmd(`CREATE instance-${name}`)).status).toBe('OK');
    await c.cmd('LOGOUT');
    c.close();
  }
}

beforeAll(async () => {
  if (!haveDovecot) return;
  [a, b] = await Promise.all([startDovecot(), startDovecot()]);
  await mark(a, 'A');
  await mark(b, 'B');
});

afterAll(async () => {
  for (const s of servers) await s.stop();
  a?.stop();
  b?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function instanceOf(port: number, user: string): Promise<string> {
  const c = await TestClient.connect(port);
  try {
    expect((await c.cmd(`LOGIN ${user} pass`)).status).toBe('OK');
    const r = await c.cmd('LIST "" "instance-*"');
    await c.cmd('LOGOUT');
    return r.lines.map((l) => /instance-(\w)/.exec(l)?.[1]).join(',');
  } finally {
    c.close();
  }
}

describe('routing to two Dovecot backends', () => {
  it('follows the user table, pattern rules and the default', async () => {
    if (!haveDovecot) return;
    const A = parseBackendUrl(`imap://127.0.0.1:${a!.port}`);
    const B = parseBackendUrl(`imap://127.0.0.1:${b!.port}`);
    const proxy = new ProxyServer({
      router: new Router({ defaultBackend: B, users: new Map([['test1', A]]), rules: [{ match: '/^test[2-4]$/', backend: A }] }),
      listen: { host: '127.0.0.1', port: 0 },
    });
    servers.push(proxy);
    await proxy.start();
    const port = proxy.ports().plain;
    expect(await instanceOf(port, 'test1')).toBe('A');
    expect(await instanceOf(port, 'test2')).toBe('A');
    expect(await instanceOf(port, 'test5')).toBe('B');
    expect(await instanceOf(port, 'test9')).toBe('B');
    // Cached connections stay with their backend.
    for (let i = 0; i < 50 && proxy.pool.size < 4; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await instanceOf(port, 'test1')).toBe('A');
    expect(await instanceOf(port, 'test5')).toBe('B');
    const s = proxy.snapshot();
    expect(s.hits).toBe(2);
    expect(s.backends.map((x) => [x.backend, x.loginsOk])).toEqual(
      [
        [A.id, 3],
        [B.id, 3],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
  });

  it('asks a route command for host and port', async () => {
    if (!haveDovecot) return;
    const script = path.join(tmp, 'route.sh');
    writeFileSync(script, `#!/bin/sh\ncase "$1" in\n  test3) echo "127.0.0.1 ${a!.port}" ;;\n  test*) echo "imap://127.0.0.1:${b!.port}" ;;\n  *) exit 1 ;;\nesac\n`, { mode: 0o755 });
    const proxy = new ProxyServer({ router: new Router({ routeCommand: [script] }), listen: { host: '127.0.0.1', port: 0 } });
    servers.push(proxy);
    await proxy.start();
    const port = proxy.ports().plain;
    expect(await instanceOf(port, 'test3')).toBe('A');
    expect(await instanceOf(port, 'test2')).toBe('B');
    const c = await TestClient.connect(port);
    const r = await c.cmd('LOGIN nobody pass');
    expect(r.status).toBe('NO');
    c.close();
  });
});
