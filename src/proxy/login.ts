/**
 * What a client login means upstream: which backend, which cache key, and how to authenticate
 * there: pass the client's credentials through, or (OAuth2 translation) check a local password
 * and log in with the account's stored, refreshed token.
 */
import type { OAuth2Mechanism } from '../auth/oauth2/sasl.js';
import type { TokenSource } from '../auth/oauth2/token-source.js';
import type { Backend } from './backend.js';
import type { ConnectionPool } from './pool.js';
import type { Router } from './router.js';
import type { UpstreamAuth } from './upstream.js';

/** A client's credentials as received (LOGIN or AUTHENTICATE PLAIN). */
export interface ClientLogin {
  user: string;
  password: string;
  authzid?: string;
  mechanism: 'LOGIN' | 'PLAIN';
}

/** One local user whose upstream login uses OAuth2. */
export interface OAuth2Account {
  /** The name the client logs in with. */
  localUser: string;
  /** The account name at the backend (the `user=` of XOAUTH2, the authzid of OAUTHBEARER). */
  upstreamUser: string;
  mechanism: OAuth2Mechanism;
  tokens: TokenSource;
  /** Overrides routing for this account. */
  backend?: Backend;
}

/** Checks local passwords (the proxy's user table). */
export interface LocalPasswords {
  verify(user: string, password: string): Promise<boolean>;
}

/** How one login is carried out. */
export interface LoginPlan {
  backend: Backend;
  /** Identity in the cache (never shared between pass-through and OAuth2 logins). */
  poolUser: string;
  /** HMAC of the secret that proves this login; a cached connection must carry the same. */
  mac: Buffer;
  /** OAuth2 translation: the local password check (skipped when a cached connection's HMAC matches). */
  verifyLocal?: () => Promise<boolean>;
  /** Credentials for a new upstream connection. */
  upstreamAuth: () => Promise<UpstreamAuth>;
  /** After the backend refused `failed`: new credentials to retry with once (OAuth2: refreshed token). */
  retryAuth?: (failed: UpstreamAuth) => Promise<UpstreamAuth | undefined>;
  /** For logs: "passthrough" or "oauth2". */
  mode: 'passthrough' | 'oauth2';
}

/** Options of the resolver. */
export interface LoginResolverOptions {
  router: Router;
  pool: ConnectionPool;
  /** OAuth2 translation accounts by local user name. */
  oauth2?: Map<string, OAuth2Account>;
  /** Local password table for OAuth2 accounts. Required when `oauth2` has entries. */
  passwords?: LocalPasswords;
  /** Allow logins that are not OAuth2 accounts to pass through (default true). */
  passthrough?: boolean;
}

/** Users that may not log in at all (the caller answers NO [AUTHENTICATIONFAILED]). */
export class LoginRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoginRefused';
  }
}

/** Turns client logins into LoginPlans. */
export class LoginResolver {
  constructor(private readonly opts: LoginResolverOptions) {}

  /** Plan a login; throws RouteError or LoginRefused when it cannot go anywhere. */
  async plan(login: ClientLogin): Promise<LoginPlan> {
    const account = this.opts.oauth2?.get(login.user);
    if (account && (login.authzid === undefined || login.authzid === login.user)) return this.oauth2Plan(account, login);
    if (this.opts.passthrough === false) throw new LoginRefused('not an OAuth2 account and pass-through is off');
    const identity = login.authzid ?? login.user;
    const backend = await this.opts.router.route(identity);
    const poolUser = login.authzid !== undefined ? `${login.authzid}\0${login.user}` : login.user;
    const auth: UpstreamAuth =
      login.mechanism === 'PLAIN'
        ? { kind: 'plain', authzid: login.authzid, user: login.user, password: login.password }
        : { kind: 'login', user: login.user, password: login.password };
    return {
      backend,
      poolUser,
      mac: this.opts.pool.mac(backend.id, poolUser, login.password),
      upstreamAuth: () => Promise.resolve(auth),
      mode: 'passthrough',
    };
  }

  private async oauth2Plan(account: OAuth2Account, login: ClientLogin): Promise<LoginPlan> {
    const backend = account.backend ?? (await this.opts.router.route(login.user));
    // Client-supplied names never contain NUL, so this key cannot collide with a pass-through one.
    const poolUser = `\0oauth2\0${account.upstreamUser}`;
    const passwords = this.opts.passwords;
    if (!passwords) throw new LoginRefused('no local password table configured');
    const make = (accessToken: string): UpstreamAuth => ({ kind: 'oauth2', mechanism: account.mechanism, user: account.upstreamUser, accessToken });
    return {
      backend,
      poolUser,
      mac: this.opts.pool.mac(backend.id, poolUser, `${account.localUser}\0${login.password}`),
      verifyLocal: () => passwords.verify(account.localUser, login.password),
      upstreamAuth: async () => make(await account.tokens.accessToken()),
      retryAuth: async (failed) => {
        if (failed.kind !== 'oauth2') return undefined;
        const next = await account.tokens.afterAuthFailure(failed.accessToken);
        return next === failed.accessToken ? undefined : make(next);
      },
      mode: 'oauth2',
    };
  }
}
