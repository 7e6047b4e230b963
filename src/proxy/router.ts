/**
 * Routing: which backend serves a user. Checked in order: the per-user table, the pattern rules
 * (first match wins), the route command, then the default backend.
 */
import { execFile } from 'node:child_process';
import { parseBackendUrl, type Backend, type BackendOptions } from './backend.js';

/** One pattern rule: a glob (`*`, `?`, case-insensitive) or `/regex/flags`, and its backend. */
export interface RouteRule {
  match: string;
  backend: Backend;
}

/** What the router is built from. */
export interface RouterOptions {
  defaultBackend?: Backend;
  /** Exact user name → backend (a lower-cased lookup is tried second). */
  users?: Map<string, Backend>;
  rules?: RouteRule[];
  /** argv of a program that prints the backend for the user appended as its last argument. */
  routeCommand?: string[];
  routeCommandTimeoutMs?: number;
  /** How long a route command answer is reused, seconds (default 60; 0 disables). */
  routeCacheSeconds?: number;
  /** Options for URLs printed by the route command. */
  backendOptions?: BackendOptions;
}

/** Compile a glob (`*` any run, `?` one character) or `/re/flags` into a RegExp. */
export function compilePattern(pattern: string): RegExp {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  if (re) return new RegExp(re[1], re[2]);
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** Reasons a user cannot be routed (the client sees a generic NO; the log gets this). */
export class RouteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RouteError';
  }
}

/** Parse a route command's output: `imaps://host:port`, `imap://host:port`, `host port` or `host:port`. */
export function parseRouteOutput(out: string, opts: BackendOptions = {}): Backend {
  const line = out.split(/\r?\n/).find((l) => l.trim() !== '')?.trim();
  if (!line) throw new RouteError('route command printed nothing');
  const parts = line.split(/\s+/);
  if (parts.length === 2 && /^\d+$/.test(parts[1])) {
    const host = parts[0].includes(':') && !parts[0].startsWith('[') ? `[${parts[0]}]` : parts[0];
    return parseBackendUrl(`imap://${host}:${parts[1]}`, opts);
  }
  if (parts.length !== 1) throw new RouteError('route command output is not "host port" or a URL');
  return parseBackendUrl(line, opts);
}

/** Maps a user name to a backend. */
export class Router {
  private readonly rules: Array<{ re: RegExp; backend: Backend }>;
  private readonly lowerUsers = new Map<string, Backend>();
  private readonly cache = new Map<string, { backend: Backend; until: number }>();

  constructor(private readonly opts: RouterOptions) {
    this.rules = (opts.rules ?? []).map((r) => ({ re: compilePattern(r.match), backend: r.backend }));
    for (const [name, backend] of opts.users ?? []) this.lowerUsers.set(name.toLowerCase(), backend);
  }

  /** Every backend the static configuration names (for statistics). */
  backends(): Backend[] {
    const all = new Map<string, Backend>();
    if (this.opts.defaultBackend) all.set(this.opts.defaultBackend.id, this.opts.defaultBackend);
    for (const b of this.opts.users?.values() ?? []) all.set(b.id, b);
    for (const r of this.rules) all.set(r.backend.id, r.backend);
    return [...all.values()];
  }

  /** The backend for `user`; throws RouteError when none applies. */
  async route(user: string): Promise<Backend> {
    const direct = this.opts.users?.get(user) ?? this.lowerUsers.get(user.toLowerCase());
    if (direct) return direct;
    for (const rule of this.rules) if (rule.re.test(user)) return rule.backend;
    if (this.opts.routeCommand && this.opts.routeCommand.length > 0) return this.viaCommand(user);
    if (this.opts.defaultBackend) return this.opts.defaultBackend;
    throw new RouteError('no route for this user and no default backend');
  }

  private async viaCommand(user: string): Promise<Backend> {
    // The name comes from an unauthenticated client: refuse anything a program might misread.
    if (user.length === 0 || user.length > 256 || /[\x00-\x1f\x7f]/.test(user)) throw new RouteError('user name not routable');
    const now = Date.now();
    const hit = this.cache.get(user);
    if (hit && hit.until > now) return hit.backend;
    const [file, ...args] = this.opts.routeCommand as string[];
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        file,
        [...args, user],
        { timeout: this.opts.routeCommandTimeoutMs ?? 5000, maxBuffer: 64 * 1024, env: { ...process.env, IMAPKIT_USER: user } },
        (err, stdout) => (err ? reject(new RouteError(`route command failed: ${err.message.split('\n')[0]}`)) : resolve(stdout)),
      );
    });
    const backend = parseRouteOutput(out, this.opts.backendOptions);
    const ttl = this.opts.routeCacheSeconds ?? 60;
    if (ttl > 0) {
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(user, { backend, until: now + ttl * 1000 });
    }
    return backend;
  }
}
