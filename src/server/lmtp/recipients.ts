/**
 * RCPT TO address → imapkit user (and optional folder). Users are names in the UserDb, which may
 * be full addresses ("alice@example.org") or bare names ("alice"), so both are tried, as Postfix's
 * virtual delivery would pass either. A `+detail` in the local part (RFC 5233 subaddress) selects
 * a folder of that name when it exists; the user is found without it.
 */
import type { UserDb } from '../../store/contract.js';
import { splitAddress } from './envelope.js';

/** The separator of the subaddress ("alice+lists@example.org"), as Postfix's recipient_delimiter. */
export const DETAIL_DELIMITER = '+';

/** An accepted recipient. */
export interface Recipient {
  /** The address as given in RCPT TO (for Delivered-To and replies). */
  address: string;
  /** The imapkit user it maps to. */
  user: string;
  /** The subaddress, when the user was found only without it: a folder to try first. */
  detail?: string;
}

/** The names to look up, best first, each with the detail it leaves over. */
export function candidateUsers(address: string): Array<{ name: string; detail?: string }> {
  const { local, domain } = splitAddress(address);
  const out: Array<{ name: string; detail?: string }> = [{ name: address }];
  if (domain !== '') out.push({ name: local });
  const plus = local.indexOf(DETAIL_DELIMITER);
  if (plus > 0) {
    const base = local.slice(0, plus);
    const detail = local.slice(plus + 1);
    if (domain !== '') out.push({ name: `${base}@${domain}`, detail });
    out.push({ name: base, detail });
  }
  return out.map((c) => (c.detail === '' ? { name: c.name } : c));
}

/**
 * Map an address to a user among `users`: exact names first, then a case-insensitive match
 * (domains are case-insensitive and MTAs often lower-case the whole address), which must be unique.
 */
export function matchRecipient(address: string, users: readonly string[]): Recipient | null {
  const candidates = candidateUsers(address);
  const exact = new Set(users);
  for (const c of candidates) if (exact.has(c.name)) return { address, user: c.name, ...(c.detail !== undefined ? { detail: c.detail } : {}) };
  const folded = new Map<string, string | null>();
  for (const u of users) {
    const k = u.toLowerCase();
    folded.set(k, folded.has(k) ? null : u);
  }
  for (const c of candidates) {
    const u = folded.get(c.name.toLowerCase());
    if (u) return { address, user: u, ...(c.detail !== undefined ? { detail: c.detail } : {}) };
  }
  return null;
}

/**
 * The user list, re-read when a name is not in it (so a user added a moment ago is found) and at
 * most every `maxAgeMs` otherwise (so a deleted user stops receiving soon). One read serves every
 * RCPT of a busy MTA instead of one database scan each.
 */
export class UserDirectory {
  private cached: { users: string[]; at: number } | undefined;
  private loading: Promise<string[]> | undefined;

  constructor(
    private readonly db: Pick<UserDb, 'listUsers'>,
    private readonly maxAgeMs = 2_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Resolve an address; null for an unknown user. Rejects when the user database cannot be read. */
  async resolve(address: string): Promise<Recipient | null> {
    const c = this.cached;
    if (c && this.now() - c.at < this.maxAgeMs) {
      const hit = matchRecipient(address, c.users);
      if (hit) return hit;
    }
    return matchRecipient(address, await this.reload());
  }

  private reload(): Promise<string[]> {
    // Concurrent RCPTs of several connections share one read.
    this.loading ??= this.db
      .listUsers()
      .then((users) => {
        this.cached = { users, at: this.now() };
        return users;
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }
}
