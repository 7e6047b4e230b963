import { afterEach, describe, expect, it } from 'vitest';
import { ProxyServer } from '../../src/proxy/server.js';
import { Router } from '../../src/proxy/router.js';
import { parseBackendUrl } from '../../src/proxy/backend.js';
import { fetchStats } from '../../src/proxy/admin.js';
import { escapeLabel, formatStatsTable, prometheusText, ProxyStats } from '../../src/proxy/stats.js';
import { FakeBackend } from './fake-backend.js';
import { TestClient } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('statistics', () => {
  it('renders the Prometheus text format', () => {
    const s = new ProxyStats();
    const b = s.backend('imap://h:1');
    b.hits = 3;
    b.misses = 1;
    s.evicted('imap://h:1', 'expired');
    const text = prometheusText(s.snapshot(new Map([['imap://h:1', 2]])));
    expect(text).toContain('# TYPE imapkit_proxy_cache_hits_total counter\nimapkit_proxy_cache_hits_total{backend="imap://h:1"} 3\n');
    expect(text).toContain('imapkit_proxy_cached_connections{backend="imap://h:1"} 2\n');
    expect(text).toContain('imapkit_proxy_cache_hit_ratio{backend="imap://h:1"} 0.75\n');
    expect(text).toContain('imapkit_proxy_cache_evictions_total{backend="imap://h:1",reason="expired"} 1\n');
    // Every sample line: name{labels} number.
    for (const line of text.trim().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) \S+ .+|[a-z_]+(\{.*\})? -?[0-9.e+-]+)$/);
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });

  it('serves /metrics and /stats on the admin port and formats a pimpstat-like table', async () => {
    const fake = new FakeBackend({ users: { alice: 'apw' } });
    await fake.start();
    const proxy = new ProxyServer({
      router: new Router({ defaultBackend: parseBackendUrl(`imap://127.0.0.1:${fake.port}`) }),
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
    });
    await proxy.start();
    cleanups.push(() => fake.stop(), () => proxy.stop());
    for (let i = 0; i < 3; i++) {
      const c = await TestClient.connect(proxy.ports().plain);
      await c.cmd('LOGIN alice apw');
      await c.cmd('LOGOUT');
      await c.closed;
      await new Promise((r) => setTimeout(r, 20));
    }
    const admin = `http://127.0.0.1:${proxy.ports().admin}`;
    const s = await fetchStats(admin);
    expect(s).toMatchObject({ hits: 2, misses: 1, loginsOk: 3, cached: 1, clientsTotal: 3 });
    expect(s.hitRatio).toBeCloseTo(2 / 3);
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    expect(metrics).toMatch(/imapkit_proxy_cache_hits_total\{backend="imap:\/\/127\.0\.0\.1:\d+"\} 2/);
    expect(metrics).toMatch(/imapkit_proxy_logins_total\{backend="imap:\/\/127\.0\.0\.1:\d+",result="ok"\} 3/);
    expect((await fetch(`${admin}/nope`)).status).toBe(404);
    const table = formatStatsTable(s);
    expect(table).toContain('hit ratio 66.7%');
    expect(table).toMatch(/imap:\/\/127\.0\.0\.1:\d+ +0 +1 +2 +1 +66\.7%/);
  });
});
