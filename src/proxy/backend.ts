/**
 * Backends as the proxy sees them: `imaps://host[:993]` (implicit TLS), `imap://host[:143]`
 * (STARTTLS where the backend offers it; plaintext only on loopback or when explicitly allowed).
 */
import net from 'node:net';

/** How to reach one IMAP backend. */
export interface Backend {
  /** Stable identity (`imaps://host:port`): the pool keys cached connections by it. */
  id: string;
  host: string;
  port: number;
  /** `tls`: implicit TLS; `starttls`: upgrade if offered, else plaintext if `allowPlaintext`. */
  security: 'tls' | 'starttls';
  /** Plaintext permitted when STARTTLS is not offered (loopback, or the operator said insecure). */
  allowPlaintext: boolean;
  /** Verify the backend's certificate (default true). */
  tlsVerify: boolean;
  /** Extra trusted CA certificates, PEM. */
  ca?: string;
  /** TLS server name (SNI and certificate check); defaults to host when it is a name. */
  servername?: string;
}

/** A backend URL that cannot be used, or a plaintext backend not allowed. */
export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

/** True for addresses that never leave the machine: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/** Options applied while parsing a backend URL. */
export interface BackendOptions {
  /** Allow plaintext to a non-loopback host (`--backend-insecure`). */
  insecure?: boolean;
  tlsVerify?: boolean;
  ca?: string;
  servername?: string;
}

/**
 * Parse `imaps://host:port` or `imap://host:port` (also a bare `host:port`, read as imap://).
 * Throws BackendError naming the problem.
 */
export function parseBackendUrl(spec: string, opts: BackendOptions = {}): Backend {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(spec) ? spec : `imap://${spec}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new BackendError(`backend "${spec}": not a URL (expected imaps://host:port or imap://host:port)`);
  }
  const scheme = url.protocol.replace(/:$/, '').toLowerCase();
  if (scheme !== 'imap' && scheme !== 'imaps') throw new BackendError(`backend "${spec}": scheme must be imap:// or imaps://`);
  if (url.username || url.password) throw new BackendError(`backend "${spec}": credentials do not belong in the backend URL`);
  if ((url.pathname && url.pathname !== '/') || url.search || url.hash) {
    throw new BackendError(`backend "${spec}": only scheme, host and port are allowed`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new BackendError(`backend "${spec}": host missing`);
  const port = url.port ? Number(url.port) : scheme === 'imaps' ? 993 : 143;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BackendError(`backend "${spec}": bad port`);
  const security = scheme === 'imaps' ? 'tls' : 'starttls';
  const hostForId = net.isIPv6(host) ? `[${host}]` : host.toLowerCase();
  return {
    id: `${scheme}://${hostForId}:${port}`,
    host,
    port,
    security,
    allowPlaintext: security === 'starttls' && (isLoopback(host) || opts.insecure === true),
    tlsVerify: opts.tlsVerify ?? true,
    ca: opts.ca,
    servername: opts.servername ?? (net.isIP(host) ? undefined : host),
  };
}
