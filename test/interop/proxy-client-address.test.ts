/**
 * The proxy's forwardClientAddress against a real Dovecot that trusts it (login_trusted_networks):
 * Dovecot then records the client's own address for the login, not the proxy's. The client
 * connects from 127.0.0.2 (all of 127/8 is loopback) while the proxy talks to Dovecot from 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ProxyServer } from '../../src/proxy/server.js';
import { Router } from '../../src/proxy/router.js';
import { parseBackendUrl } from '../../src/proxy/backend.js';
import { clientAddressFields } from '../../src/proxy/session.js';
import { peer, startDovecot, type Dovecot } from '../proxy/helpers.js';

const haveDovecot = peer('dovecot');
let dovecot: Dovecot | undefined;
const proxies: ProxyServer[] = [];

beforeAll(async () => {
  if (haveDovecot) dovecot = await startDovecot({ DOVECOT_TRUSTED_NETWORKS: '127.0.0.1/32' });
});

afterAll(async () => {
  for (const p of proxies) await p.stop();
  dovecot?.stop();
});

/** LOGIN and LOGOUT through a proxy from 127.0.0.2; returns the whole exchange. */
async function loginFrom(port: number, user: string): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  const until = async (re: RegExp): Promise<void> => {
    for (let i = 0; i < 200 && !re.test(text); i++) await new Promise((r) => setTimeout(r, 25));
    expect(text).toMatch(re);
  };
  await until(/^\* OK/);
  socket.write(`a LOGIN ${user} pass\r\n`);
  await until(/\r\na OK/);
  socket.write('b LOGOUT\r\n');
  await until(/\r\nb OK/);
  socket.destroy();
  return text;
}

/** Dovecot's login log lines for a user. */
function loginLines(user: string): string[] {
  return readFileSync(path.join(dovecot!.dir, 'dovecot.log'), 'utf8')
    .split('\n')
    .filter((l) => /imap-login: (Info: )?Login:/.test(l) && l.includes(`user=<${user}>`));
}

async function proxyTo(forwardClientAddress: boolean): Promise<number> {
  const proxy = new ProxyServer({
    router: new Router({ defaultBackend: parseBackendUrl(`imap://127.0.0.1:${dovecot!.port}`) }),
    listen: { host: '127.0.0.1', port: 0 },
    // No caching: every login here reaches Dovecot.
    pool: { expirySeconds: 0 },
    forwardClientAddress,
  });
  proxies.push(proxy);
  await proxy.start();
  return proxy.ports().plain;
}

describe('forwarding the client address to the backend', () => {
  it('Dovecot records the client address when the proxy forwards it, and the proxy address otherwise', async () => {
    if (!haveDovecot) return;
    expect(await loginFrom(await proxyTo(true), 'test3')).toMatch(/a OK/);
    expect(await loginFrom(await proxyTo(false), 'test4')).toMatch(/a OK/);
    // Dovecot writes its log line a moment after the login.
    for (let i = 0; i < 100 && (loginLines('test3').length === 0 || loginLines('test4').length === 0); i++) await new Promise((r) => setTimeout(r, 50));
    const forwarded = loginLines('test3');
    const plain = loginLines('test4');
    expect(forwarded.length).toBe(1);
    expect(forwarded[0]).toMatch(/rip=127\.0\.0\.2\b/);
    expect(plain.length).toBe(1);
    expect(plain[0]).toMatch(/rip=127\.0\.0\.1\b/);
  });

  it('names both ends of a TCP connection, unwraps IPv4-mapped addresses and sends nothing for a unix socket', () => {
    expect(clientAddressFields({ remoteAddress: '::ffff:192.0.2.7', remotePort: 50000, localAddress: '::ffff:10.0.0.1', localPort: 143 })).toEqual([
      'x-originating-ip',
      '192.0.2.7',
      'x-originating-port',
      '50000',
      'x-connected-ip',
      '10.0.0.1',
      'x-connected-port',
      '143',
    ]);
    expect(clientAddressFields({ remoteAddress: '2001:db8::1', remotePort: 1, localAddress: undefined, localPort: undefined })).toEqual(['x-originating-ip', '2001:db8::1', 'x-originating-port', '1']);
    expect(clientAddressFields({ remoteAddress: undefined, remotePort: undefined, localAddress: undefined, localPort: undefined })).toEqual([]);
    expect(clientAddressFields({ remoteAddress: '1.2.3.4" "x', remotePort: 1, localAddress: undefined, localPort: undefined })).toEqual([]);
  });
});
