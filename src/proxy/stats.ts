/**
 * Proxy statistics: counters per backend, a JSON snapshot for `imapkit proxy stats` and the
 * Prometheus text exposition format (version 0.0.4) for scrapers.
 */

/** Counters kept per backend. */
export interface BackendCounters {
  active: number;
  hits: number;
  misses: number;
  loginsOk: number;
  loginsFailed: number;
  loginErrors: number;
  upstreamConnects: number;
  bytesToServer: number;
  bytesToClient: number;
  cachedOnLogout: number;
  evictions: Record<string, number>;
}

/** What `GET /stats` returns and `imapkit proxy stats` prints. */
export interface StatsSnapshot {
  uptimeSeconds: number;
  clientsConnected: number;
  clientsTotal: number;
  sessionsActive: number;
  cached: number;
  hits: number;
  misses: number;
  /** hits / (hits + misses), 0 when there were none. */
  hitRatio: number;
  loginsOk: number;
  loginsFailed: number;
  preauthErrors: number;
  backends: Array<{ backend: string; cached: number; hitRatio: number } & Omit<BackendCounters, 'evictions'> & { evictions: Record<string, number> }>;
}

function emptyCounters(): BackendCounters {
  return {
    active: 0,
    hits: 0,
    misses: 0,
    loginsOk: 0,
    loginsFailed: 0,
    loginErrors: 0,
    upstreamConnects: 0,
    bytesToServer: 0,
    bytesToClient: 0,
    cachedOnLogout: 0,
    evictions: {},
  };
}

/** Live counters of one proxy process. */
export class ProxyStats {
  readonly started = Date.now();
  clientsConnected = 0;
  clientsTotal = 0;
  /** Local-user (OAuth2 translation) login failures and failures before any backend was chosen. */
  loginsFailedLocal = 0;
  preauthErrors = 0;
  private readonly perBackend = new Map<string, BackendCounters>();

  /** Counters of one backend (created on first use). */
  backend(id: string): BackendCounters {
    let c = this.perBackend.get(id);
    if (!c) this.perBackend.set(id, (c = emptyCounters()));
    return c;
  }

  /** Count an eviction from the cache. */
  evicted(id: string, reason: string): void {
    const c = this.backend(id);
    c.evictions[reason] = (c.evictions[reason] ?? 0) + 1;
  }

  /** A consistent snapshot; `cached` comes from the pool. */
  snapshot(cachedByBackend: Map<string, number>): StatsSnapshot {
    for (const id of cachedByBackend.keys()) this.backend(id);
    let hits = 0;
    let misses = 0;
    let loginsOk = 0;
    let loginsFailed = this.loginsFailedLocal;
    let active = 0;
    let cached = 0;
    const backends: StatsSnapshot['backends'] = [];
    for (const [id, c] of [...this.perBackend].sort((a, b) => a[0].localeCompare(b[0]))) {
      const cachedHere = cachedByBackend.get(id) ?? 0;
      hits += c.hits;
      misses += c.misses;
      loginsOk += c.loginsOk;
      loginsFailed += c.loginsFailed;
      active += c.active;
      cached += cachedHere;
      backends.push({ backend: id, ...c, evictions: { ...c.evictions }, cached: cachedHere, hitRatio: ratio(c.hits, c.misses) });
    }
    return {
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      clientsConnected: this.clientsConnected,
      clientsTotal: this.clientsTotal,
      sessionsActive: active,
      cached,
      hits,
      misses,
      hitRatio: ratio(hits, misses),
      loginsOk,
      loginsFailed,
      preauthErrors: this.preauthErrors,
      backends,
    };
  }
}

function ratio(hits: number, misses: number): number {
  return hits + misses === 0 ? 0 : hits / (hits + misses);
}

/** Escape a Prometheus label value: backslash, double quote and newline. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Render a snapshot in the Prometheus text exposition format. */
export function prometheusText(s: StatsSnapshot): string {
  const out: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: Array<[Record<string, string>, number]>): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      out.push(`${name}${l ? `{${l}}` : ''} ${Number.isFinite(value) ? value : 0}`);
    }
  };
  const per = (f: (b: StatsSnapshot['backends'][number]) => number): Array<[Record<string, string>, number]> =>
    s.backends.map((b) => [{ backend: b.backend }, f(b)]);
  metric('imapkit_proxy_uptime_seconds', 'gauge', 'Seconds since the proxy started.', [[{}, s.uptimeSeconds]]);
  metric('imapkit_proxy_client_connections', 'gauge', 'Client connections open now (any state).', [[{}, s.clientsConnected]]);
  metric('imapkit_proxy_client_connections_total', 'counter', 'Client connections accepted.', [[{}, s.clientsTotal]]);
  metric('imapkit_proxy_preauth_errors_total', 'counter', 'Protocol errors and limit violations before authentication.', [[{}, s.preauthErrors]]);
  metric('imapkit_proxy_sessions_active', 'gauge', 'Authenticated sessions being piped now.', per((b) => b.active));
  metric('imapkit_proxy_cached_connections', 'gauge', 'Idle upstream connections in the cache.', per((b) => b.cached));
  metric('imapkit_proxy_cache_hits_total', 'counter', 'Logins served by a cached upstream connection.', per((b) => b.hits));
  metric('imapkit_proxy_cache_misses_total', 'counter', 'Logins that needed a new upstream connection.', per((b) => b.misses));
  metric('imapkit_proxy_cache_hit_ratio', 'gauge', 'hits / (hits + misses).', per((b) => b.hitRatio));
  metric('imapkit_proxy_logins_total', 'counter', 'Client logins by result.', [
    ...s.backends.flatMap((b): Array<[Record<string, string>, number]> => [
      [{ backend: b.backend, result: 'ok' }, b.loginsOk],
      [{ backend: b.backend, result: 'failed' }, b.loginsFailed],
      [{ backend: b.backend, result: 'error' }, b.loginErrors],
    ]),
    [{ backend: '', result: 'failed' }, s.loginsFailed - s.backends.reduce((n, b) => n + b.loginsFailed, 0)],
  ]);
  metric('imapkit_proxy_upstream_connects_total', 'counter', 'New connections opened to the backend.', per((b) => b.upstreamConnects));
  metric('imapkit_proxy_cache_stores_total', 'counter', 'Upstream connections kept in the cache after a client logged out.', per((b) => b.cachedOnLogout));
  metric('imapkit_proxy_cache_evictions_total', 'counter', 'Cached connections dropped, by reason.', s.backends.flatMap((b) =>
    Object.entries(b.evictions).map(([reason, n]): [Record<string, string>, number] => [{ backend: b.backend, reason }, n]),
  ));
  metric('imapkit_proxy_bytes_total', 'counter', 'Bytes piped after authentication, by direction.', s.backends.flatMap((b): Array<[Record<string, string>, number]> => [
    [{ backend: b.backend, direction: 'to_server' }, b.bytesToServer],
    [{ backend: b.backend, direction: 'to_client' }, b.bytesToClient],
  ]));
  return out.join('\n') + '\n';
}

/** Render a snapshot as a table like up-imapproxy's pimpstat. */
export function formatStatsTable(s: StatsSnapshot): string {
  const pct = (r: number): string => `${(r * 100).toFixed(1)}%`;
  const lines = [
    `uptime ${s.uptimeSeconds}s   clients ${s.clientsConnected} (total ${s.clientsTotal})   active sessions ${s.sessionsActive}   cached ${s.cached}`,
    `cache hits ${s.hits}   misses ${s.misses}   hit ratio ${pct(s.hitRatio)}   logins ok ${s.loginsOk}   failed ${s.loginsFailed}`,
    '',
  ];
  const header = ['backend', 'active', 'cached', 'hits', 'misses', 'ratio', 'logins', 'failed', 'connects'];
  const rows = s.backends.map((b) => [b.backend, b.active, b.cached, b.hits, b.misses, pct(b.hitRatio), b.loginsOk, b.loginsFailed, b.upstreamConnects].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  lines.push(fmt(header));
  for (const r of rows) lines.push(fmt(r));
  return lines.join('\n') + '\n';
}
