/**
 * Where the LMTP listener listens: `PORT` (127.0.0.1:PORT, because LMTP has no authentication and
 * must not be reachable from other hosts unless the administrator says so), `HOST:PORT`
 * (`[v6]:PORT` for IPv6) or the absolute path of a unix socket.
 */

/** A parsed LMTP listen address. */
export type LmtpListen = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** What the config error says is expected. */
export const LMTP_ADDRESS_EXPECTED = 'expected PORT, HOST:PORT or the absolute path of a unix socket (e.g. 2424, 127.0.0.1:2424, /run/imapkit/lmtp)';

function toPort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

/** Parse `PORT`, `HOST:PORT` or `/path`; throws an Error saying what is expected. */
export function parseLmtpAddress(spec: string | number): LmtpListen {
  const text = String(spec).trim();
  const bad = (): Error => new Error(`${LMTP_ADDRESS_EXPECTED}, got ${JSON.stringify(spec)}`);
  if (text.startsWith('/')) {
    // A NUL cannot be in a path; a trailing slash would name a directory.
    if (text.includes('\0') || text.endsWith('/')) throw bad();
    return { kind: 'unix', path: text };
  }
  const bare = toPort(text);
  if (bare !== undefined) return { kind: 'tcp', host: '127.0.0.1', port: bare };
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text) ?? /^([^:\s[\]]+):(\d+)$/.exec(text);
  const port = m ? toPort(m[2]!) : undefined;
  if (!m || port === undefined) throw bad();
  return { kind: 'tcp', host: m[1]!, port };
}

/** The address as people write it (for the start-up line and logs). */
export function formatLmtpAddress(listen: LmtpListen): string {
  if (listen.kind === 'unix') return listen.path;
  return listen.host.includes(':') ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`;
}
