/**
 * A token file that keeps itself fresh: hands out an access token, refreshing it shortly before
 * it expires and again after the server rejected it. Concurrent callers share one refresh.
 */
import { readTokenFile, writeTokenFile, type TokenSet } from './token-file.js';
import { refreshTokens, type FetchLike, type OAuth2Client } from './client.js';

/** Options of a TokenSource. */
export interface TokenSourceOptions {
  tokenFile: string;
  client: OAuth2Client;
  /** Refresh when the token expires within this many seconds (default 120). */
  refreshSkewSeconds?: number;
  fetch?: FetchLike;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

/** Access tokens from a token file, refreshed before expiry and after an authentication failure. */
export class TokenSource {
  private cached: TokenSet | undefined;
  private refreshing: Promise<TokenSet> | undefined;
  private readonly skew: number;
  private readonly now: () => number;
  /** Number of successful refreshes (statistics, tests). */
  refreshes = 0;

  constructor(private readonly opts: TokenSourceOptions) {
    this.skew = opts.refreshSkewSeconds ?? 120;
    this.now = opts.now ?? Date.now;
  }

  /** The token file path. */
  get file(): string {
    return this.opts.tokenFile;
  }

  /** A valid access token: from the file, or freshly refreshed when missing or about to expire. */
  async accessToken(): Promise<string> {
    // Re-read the file each time it is needed: another process (imapkit auth login) may have replaced it.
    const tokens = await readTokenFile(this.opts.tokenFile);
    this.cached = tokens;
    if (tokens.access_token && !this.expiresSoon(tokens)) return tokens.access_token;
    return (await this.refresh(tokens.access_token)).access_token;
  }

  /**
   * Call after the server rejected `rejectedToken`: refreshes unless another caller already
   * replaced that token, and returns the token to retry with.
   */
  async afterAuthFailure(rejectedToken: string): Promise<string> {
    const tokens = await readTokenFile(this.opts.tokenFile);
    if (tokens.access_token && tokens.access_token !== rejectedToken && !this.expiresSoon(tokens)) return tokens.access_token;
    return (await this.refresh(rejectedToken)).access_token;
  }

  /** Refresh now (shared between concurrent callers) and store the result atomically. */
  refresh(staleToken?: string): Promise<TokenSet> {
    if (this.refreshing) return this.refreshing;
    this.refreshing = (async () => {
      try {
        const current = await readTokenFile(this.opts.tokenFile);
        // Someone else refreshed in the meantime: use theirs.
        if (staleToken !== undefined && current.access_token && current.access_token !== staleToken && !this.expiresSoon(current)) {
          return current;
        }
        const next = await refreshTokens(this.opts.client, current, { fetch: this.opts.fetch, now: this.now });
        await writeTokenFile(this.opts.tokenFile, next);
        this.cached = next;
        this.refreshes++;
        return next;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** Seconds until the last known token expires (undefined when unknown). */
  secondsLeft(): number | undefined {
    const exp = this.cached?.expires_at;
    return exp === undefined ? undefined : exp - this.now() / 1000;
  }

  private expiresSoon(tokens: TokenSet): boolean {
    if (tokens.expires_at === undefined) return false;
    return tokens.expires_at - this.now() / 1000 <= this.skew;
  }
}
