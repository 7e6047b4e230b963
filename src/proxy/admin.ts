/**
 * The admin HTTP endpoint: `GET /metrics` (Prometheus text format), `GET /stats` (JSON for
 * `imapkit proxy stats`) and `GET /healthz`. Read-only; bind it to loopback unless protected.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { prometheusText, type StatsSnapshot } from './stats.js';

/** Start the admin server; resolves once listening. */
export async function startAdminServer(host: string, port: number, snapshot: () => StatsSnapshot): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(prometheusText(snapshot()));
    } else if (path === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(snapshot()) + '\n');
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** Fetch and parse `/stats` from a running proxy's admin URL. */
export async function fetchStats(adminUrl: string): Promise<StatsSnapshot> {
  const url = new URL('/stats', adminUrl);
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${url.href}: HTTP ${res.status}`);
  return (await res.json()) as StatsSnapshot;
}

/** The port a server listens on. */
export function portOf(server: { address(): AddressInfo | string | null }): number {
  const a = server.address();
  return a && typeof a === 'object' ? a.port : 0;
}
