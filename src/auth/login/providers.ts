/**
 * OAuth2 endpoints and IMAP scopes of the providers `imapkit auth login` knows, and how a client
 * secret file plus command-line overrides become one complete provider description.
 */
import { readFile } from 'node:fs/promises';
import { clientFromJson, OAuth2Error, type OAuth2Client } from '../oauth2/client.js';

/** Provider names accepted by `--provider` and by config files. */
export type ProviderName = 'google' | 'microsoft' | 'custom';

/** Everything a login flow needs to know about an identity provider. */
export interface ProviderEndpoints {
  /** Authorization endpoint of the installed-app (authorization code) flow. */
  authUrl?: string;
  /** Token endpoint (code exchange, device polling, refresh). */
  tokenUrl?: string;
  /** Device authorization endpoint (RFC 8628 3.1). */
  deviceUrl?: string;
  /** Space-separated scopes. */
  scope?: string;
  /** Host part of the loopback redirect URI (RFC 8252 7.3): an IP literal unless the provider insists. */
  redirectHost?: string;
  /** Extra parameters for the authorization request (e.g. Google's access_type=offline). */
  extraAuthParams?: Record<string, string>;
}

/**
 * Built-in presets. Google wants access_type=offline and prompt=consent to hand out a refresh
 * token every time; Microsoft needs offline_access in the scope for the same, and registers
 * loopback redirects for desktop apps as http://localhost (any port).
 */
export const PROVIDERS: Record<Exclude<ProviderName, 'custom'>, Required<Omit<ProviderEndpoints, 'extraAuthParams'>> & { extraAuthParams: Record<string, string> }> = {
  google: {
    authUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
    tokenUrl: 'https://oauth2.googleapis.com/token',
    deviceUrl: 'https://oauth2.googleapis.com/device/code',
    scope: 'https://mail.google.com/',
    redirectHost: '127.0.0.1',
    extraAuthParams: { access_type: 'offline', prompt: 'consent' },
  },
  microsoft: {
    authUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
    tokenUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
    deviceUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/devicecode',
    scope: 'https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
    redirectHost: 'localhost',
    extraAuthParams: {},
  },
};

/** A provider with its client: the result of resolveProvider. */
export interface ResolvedProvider extends ProviderEndpoints {
  name: ProviderName;
  client: OAuth2Client;
}

/** Is `name` a provider name? */
export function isProviderName(name: string): name is ProviderName {
  return name === 'google' || name === 'microsoft' || name === 'custom';
}

/** The token endpoint of a preset (for refreshing with a client secret file that names none). */
export function presetTokenUrl(name: ProviderName): string | undefined {
  return name === 'custom' ? undefined : PROVIDERS[name].tokenUrl;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * Combine a preset, the client secret file (Google's download format, or a flat JSON object with
 * client_id, client_secret, auth_uri, token_uri, device_authorization_uri, scope, and for
 * Microsoft tenant) and explicit
 * overrides; later sources win. For `custom` the endpoints must come from the file or overrides.
 */
export async function resolveProvider(name: ProviderName, clientSecretFile: string, overrides: ProviderEndpoints = {}): Promise<ResolvedProvider> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(clientSecretFile, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new OAuth2Error(`${clientSecretFile}: ${code ? `cannot read: ${code}` : 'not valid JSON'}`);
  }
  const top = (data && typeof data === 'object' ? data : {}) as Record<string, unknown>;
  const inner = (top.installed ?? top.web ?? top) as Record<string, unknown>;
  let preset: ProviderEndpoints = name === 'custom' ? {} : PROVIDERS[name];
  const tenant = str(inner.tenant);
  if (name === 'microsoft' && tenant) {
    // Single-tenant apps must use their own tenant instead of "common".
    const t = (u: string | undefined): string | undefined => u?.replace('/common/', `/${encodeURIComponent(tenant)}/`);
    preset = { ...preset, authUrl: t(preset.authUrl), tokenUrl: t(preset.tokenUrl), deviceUrl: t(preset.deviceUrl) };
  }
  const fromFile: ProviderEndpoints = {
    authUrl: str(inner.auth_uri) ?? str(inner.authorization_endpoint),
    tokenUrl: str(inner.token_uri) ?? str(inner.token_url) ?? str(inner.token_endpoint),
    deviceUrl: str(inner.device_authorization_uri) ?? str(inner.device_authorization_endpoint),
    scope: str(inner.scope),
  };
  const pick = <K extends keyof ProviderEndpoints>(k: K): ProviderEndpoints[K] => overrides[k] ?? (name === 'custom' ? fromFile[k] : undefined) ?? preset[k] ?? fromFile[k];
  const merged: ProviderEndpoints = {
    // A preset's own endpoints are trusted over a file's (Google's file names an older auth URI).
    authUrl: pick('authUrl'),
    tokenUrl: overrides.tokenUrl ?? fromFile.tokenUrl ?? preset.tokenUrl,
    deviceUrl: pick('deviceUrl'),
    scope: pick('scope'),
    redirectHost: overrides.redirectHost ?? preset.redirectHost ?? '127.0.0.1',
    extraAuthParams: { ...(preset.extraAuthParams ?? {}), ...(overrides.extraAuthParams ?? {}) },
  };
  const client = clientFromJson(data, clientSecretFile, merged.tokenUrl);
  if (overrides.tokenUrl) client.tokenUrl = overrides.tokenUrl;
  return { name, client, ...merged };
}
