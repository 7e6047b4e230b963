/** imapkit proxy: connection caching, routing and OAuth2 translation in front of IMAP servers. */
export { ProxyServer, type ProxyServerOptions } from './server.js';
export { Router, RouteError, compilePattern, parseRouteOutput, type RouterOptions, type RouteRule } from './router.js';
export { parseBackendUrl, isLoopback, BackendError, type Backend, type BackendOptions } from './backend.js';
export { ConnectionPool, DEFAULT_POOL_OPTIONS, type PoolOptions, type PoolEviction } from './pool.js';
export { Upstream, UpstreamError, type UpstreamAuth, type UpstreamOptions, type TaggedReply } from './upstream.js';
export { PreAuthSession, type PreAuthAction, type PreAuthOptions, type LoginOutcome } from './preauth.js';
export { CommandFramer, DEFAULT_FRAMER_LIMITS, literalAtEnd, type FramerLimits, type FrameEvent } from './framer.js';
export { ClientStreamScanner, TaggedReplyWatcher, type ScanResult } from './scanner.js';
export { LoginResolver, LoginRefused, type ClientLogin, type LoginPlan, type OAuth2Account, type LocalPasswords } from './login.js';
export { ProxyStats, prometheusText, formatStatsTable, type StatsSnapshot, type BackendCounters } from './stats.js';
export { startAdminServer, fetchStats } from './admin.js';
export { proxyConfigSchema, loadProxyConfig, resolveProxySetup, PROXY_DEFAULTS, type ProxyConfig, type ProxyFlags, type ResolvedProxySetup } from './config.js';
