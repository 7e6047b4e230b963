/**
 * A Repository over an IMAP account, through imapflow: a pool of up to maxConnections
 * connections, CONDSTORE/QRESYNC when the server offers them, message ranges in one UID FETCH,
 * LIST-STATUS for all folder counters in one round trip, and appends through ImapAppender
 * (MULTIAPPEND / LITERAL+, which imapflow does not do) with imapflow's APPEND as the fallback.
 *
 * TLS is verified against the system CAs by default; `caFile` adds a CA, `fingerprint` pins the
 * server certificate's SHA-256 instead (checked before anything, credentials included, is sent);
 * `tls: false` must be said explicitly.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { ImapFlow, type FetchMessageObject, type ListResponse } from 'imapflow';
import { ImapAppender } from './imap-append.js';
import { normalizeMessageId } from './message.js';
import {
  RepositoryError,
  normalizeFlags,
  type AppendItem,
  type AppendResult,
  type FetchedMessage,
  type FolderChanges,
  type FolderInfo,
  type FolderSnapshot,
  type FolderStatus,
  type MessageEntry,
  type RemoveMode,
  type Repository,
  type RepositoryCapabilities,
  type SnapshotOptions,
} from './repository.js';

/** TLS mode of a connection. */
export type TlsMode = 'implicit' | 'starttls' | false;

/** Options of an ImapRepository. */
export interface ImapRepositoryOptions {
  host: string;
  /** Default 993 for implicit TLS, else 143. */
  port?: number;
  tls: TlsMode;
  user: string;
  /** The password, or a function that produces it when first needed (not needed with oauth2). */
  password?: string | (() => Promise<string>);
  /**
   * OAuth2 bearer tokens instead of a password (SASL OAUTHBEARER or XOAUTH2, as imapflow picks
   * from the server's capabilities): a token for each new connection, and a fresh one to retry
   * with once after the server rejected it (forward).
   */
  oauth2?: { accessToken(): Promise<string>; afterAuthFailure(rejected: string): Promise<string> };
  /** IDLE is ended and re-issued after this long (default 25 minutes; RFC 2177 allows 29). */
  idleRenewMs?: number;
  /** imapflow's logger (a pino-like object) for protocol traces; imapflow masks passwords and tokens. */
  logger?: object | false;
  /** PEM file of a CA to trust (in addition to the system's). */
  caFile?: string;
  /** SHA-256 fingerprint of the server certificate (hex, colons optional): pins it instead of CA verification. */
  fingerprint?: string;
  /** Connections at most (default 4). */
  maxConnections?: number;
  /** Messages per APPEND command at most (default 100). */
  appendBatch?: number;
  /** Label for messages; default imap(s)://user@host:port. */
  label?: string;
  /** Seconds to wait for a connection (default 30). */
  connectTimeoutSec?: number;
  /** Receives warnings (unmappable folder names, ...). */
  warn?: (message: string) => void;
  /** Use raw appends (MULTIAPPEND / LITERAL+) when offered (default true). */
  fastAppend?: boolean;
}

interface Conn {
  client: ImapFlow;
  selected: string | null;
  broken: boolean;
}

/** Normalise a fingerprint to upper-case colon-separated hex, as Node reports fingerprint256. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/^sha256[:/]?/i, '').replace(/[^0-9a-f]/gi, '').toUpperCase();
  if (hex.length !== 64) throw new RepositoryError('config', `fingerprint must be a SHA-256 (64 hex digits), got ${JSON.stringify(fp)}`);
  return hex.match(/../g)!.join(':');
}

/** Compress ascending UIDs into an IMAP sequence set ("1:4,7,9:12"). */
export function uidSet(uids: readonly number[]): string {
  const sorted = [...new Set(uids)].sort((x, y) => x - y);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}:${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Turn an imapflow / socket error into a RepositoryError with advice-friendly kind. */
export function classifyImapError(err: unknown, label: string, what: string): RepositoryError {
  if (err instanceof RepositoryError) return err;
  const e = err as Error & { code?: string; authenticationFailed?: boolean; responseText?: string; serverResponseCode?: string; tlsFailed?: boolean };
  const code = e.code ?? '';
  const text = e.responseText ? ` (${e.responseText})` : '';
  if (e.authenticationFailed) return new RepositoryError('auth', `${label}: login failed${text}`, err);
  if (/STARTTLS/i.test(e.message ?? '') && /support|not (offered|available)/i.test(e.message ?? '')) {
    return new RepositoryError('tls', `${label}: the server offers no STARTTLS (say tls = false to connect without TLS, only on a trusted network such as loopback)`, err);
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|DEPTH_ZERO|HOSTNAME|ALTNAME/i.test(code) || e.tlsFailed) {
    return new RepositoryError('tls', `${label}: TLS certificate not trusted: ${e.message}`, err);
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'ECONNRESET', 'EPIPE', 'NoConnection', 'EConnectionClosed'].includes(code)) {
    return new RepositoryError('connect', `${label}: ${what}: ${e.message}`, err);
  }
  const rc = (e.serverResponseCode ?? '').toUpperCase();
  if (rc === 'OVERQUOTA' || rc === 'LIMIT') return new RepositoryError('full', `${label}: ${what}: server says ${rc}${text}`, err);
  if (rc === 'TOOBIG' || rc === 'APPENDLIMIT') return new RepositoryError('toobig', `${label}: ${what}: message too big${text}`, err);
  if (rc === 'NONEXISTENT' || rc === 'TRYCREATE') return new RepositoryError('nonexistent', `${label}: ${what}: no such folder${text}`, err);
  return new RepositoryError('protocol', `${label}: ${what}: ${e.message}${text}`, err);
}

/** A Repository over IMAP. */
export class ImapRepository implements Repository {
  readonly label: string;
  private readonly max: number;
  private readonly idle: Conn[] = [];
  private readonly busy = new Set<Conn>();
  private readonly waiters: Array<{ resolve: (c: Conn) => void; reject: (e: unknown) => void }> = [];
  private opening = 0;
  private password: string | undefined;
  private caps: RepositoryCapabilities = { condstore: false, qresync: false, keywords: true, batchAppend: false, idle: false };
  private delimiter: string | null = '/';
  private prefix = '';
  private tlsOptions: ConnectionOptions | undefined;
  private pin: string | undefined;
  private appender: ImapAppender | undefined;
  private watchers = new Map<string, Watcher>();
  private closed = false;
  /** The last LIST, handed to new connections (primeFolders). */
  private listed: ListResponse[] = [];
  private serverCaps = new Map<string, boolean | number>();

  constructor(private readonly opts: ImapRepositoryOptions) {
    const port = opts.port ?? (opts.tls === 'implicit' ? 993 : 143);
    this.label = opts.label ?? `${opts.tls === 'implicit' ? 'imaps' : 'imap'}://${opts.user}@${opts.host}:${port}`;
    this.max = Math.max(1, opts.maxConnections ?? 4);
  }

  private get port(): number {
    return this.opts.port ?? (this.opts.tls === 'implicit' ? 993 : 143);
  }

  /** Connect the first connection (to learn capabilities and the namespace). */
  async open(): Promise<void> {
    if (this.idle.length > 0 || this.busy.size > 0) return;
    if (this.opts.tls !== false) {
      // SNI takes host names only (RFC 6066); an IP address is still checked against the certificate.
      const tls: ConnectionOptions = { rejectUnauthorized: true, ...(isIP(this.opts.host) ? {} : { servername: this.opts.host }) };
      if (this.opts.caFile) {
        try {
          tls.ca = readFileSync(this.opts.caFile);
        } catch (err) {
          throw new RepositoryError('config', `${this.label}: cannot read caFile ${this.opts.caFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
      }
      if (this.opts.fingerprint) {
        this.pin = normalizeFingerprint(this.opts.fingerprint);
        // The pin replaces CA verification; it is checked on the socket before the greeting is read.
        tls.rejectUnauthorized = false;
      }
      this.tlsOptions = tls;
    }
    const c = await this.connect();
    const client = c.client;
    this.serverCaps = client.capabilities;
    const ns = client.namespace;
    if (ns) {
      this.delimiter = ns.delimiter || null;
      this.prefix = ns.prefix ?? '';
    }
    this.caps = {
      condstore: client.enabled.has('CONDSTORE'),
      qresync: client.enabled.has('QRESYNC'),
      keywords: true,
      // The raw appender logs in with LOGIN only: OAuth2 accounts append through imapflow.
      batchAppend: this.opts.fastAppend !== false && !this.opts.oauth2 && (client.capabilities.has('MULTIAPPEND') || client.capabilities.has('LITERAL+')),
      idle: client.capabilities.has('IDLE'),
    };
    this.idle.push(c);
  }

  /** Capabilities learned at open(). */
  capabilities(): RepositoryCapabilities {
    return this.caps;
  }

  /** Whether the server announced a capability (known after open()), e.g. X-GM-EXT-1. */
  hasCapability(name: string): boolean {
    return this.serverCaps.has(name.toUpperCase());
  }

  private async getPassword(): Promise<string> {
    const src = this.opts.password;
    if (src === undefined) throw new RepositoryError('config', `${this.label}: no password`);
    if (this.password === undefined) this.password = typeof src === 'string' ? src : await src();
    return this.password;
  }

  /** Socket-level TLS settings shared with the appender. */
  connectionSettings(): { host: string; port: number; tls: TlsMode; tlsOptions?: ConnectionOptions; pin?: string; user: string; timeoutMs: number } {
    const s: { host: string; port: number; tls: TlsMode; tlsOptions?: ConnectionOptions; pin?: string; user: string; timeoutMs: number } = {
      host: this.opts.host,
      port: this.port,
      tls: this.opts.tls,
      user: this.opts.user,
      timeoutMs: (this.opts.connectTimeoutSec ?? 30) * 1000,
    };
    if (this.tlsOptions) s.tlsOptions = this.tlsOptions;
    if (this.pin) s.pin = this.pin;
    return s;
  }

  private async newClient(accessToken?: string): Promise<ImapFlow> {
    const auth = this.opts.oauth2 ? { user: this.opts.user, accessToken: accessToken ?? (await this.opts.oauth2.accessToken()) } : { user: this.opts.user, pass: await this.getPassword() };
    const timeout = (this.opts.connectTimeoutSec ?? 30) * 1000;
    const client = new ImapFlow({
      host: this.opts.host,
      port: this.port,
      secure: this.opts.tls === 'implicit',
      doSTARTTLS: this.opts.tls === 'starttls' ? true : this.opts.tls === false ? false : undefined,
      ...(this.tlsOptions ? { tls: this.tlsOptions } : {}),
      auth,
      logger: (this.opts.logger ?? false) as false,
      disableAutoIdle: true,
      maxIdleTime: this.opts.idleRenewMs ?? 25 * 60_000,
      qresync: true,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: 10 * 60 * 1000,
      clientInfo: { name: 'imapkit' },
    });
    if (this.pin) {
      // imapflow calls configureSocket() once the TLS handshake is done and before it reads the
      // greeting (for implicit TLS and after STARTTLS alike): the pin is checked there, so a
      // mismatch ends the connection before credentials are sent.
      const pin = this.pin;
      const label = this.label;
      const target = client as unknown as { configureSocket: (s: TLSSocket) => void };
      const original = target.configureSocket.bind(client);
      target.configureSocket = (socket: TLSSocket) => {
        if (typeof socket.getPeerCertificate === 'function') {
          const fp = socket.getPeerCertificate()?.fingerprint256;
          if (fp !== pin) {
            const err = new RepositoryError('tls', `${label}: server certificate fingerprint ${fp ?? '(none)'} does not match the pinned ${pin}`);
            socket.destroy(err);
            throw err;
          }
        }
        original(socket);
      };
    }
    return client;
  }

  private async connect(): Promise<Conn> {
    const conn: Conn = { client: undefined as unknown as ImapFlow, selected: null, broken: false };
    conn.client = await this.connectClient((client) => {
      client.on('error', () => {
        conn.broken = true;
      });
      client.on('close', () => {
        conn.broken = true;
      });
    });
    this.primeFolders(conn.client);
    return conn;
  }

  /** A connected, authenticated client; with OAuth2 a rejected token is refreshed and tried once more. */
  private async connectClient(setup: (client: ImapFlow) => void = () => undefined): Promise<ImapFlow> {
    let token = this.opts.oauth2 ? await this.opts.oauth2.accessToken() : undefined;
    for (let attempt = 0; ; attempt++) {
      const client = await this.newClient(token);
      setup(client);
      try {
        await client.connect();
        return client;
      } catch (err) {
        client.close();
        if (this.opts.oauth2 && token !== undefined && attempt === 0 && (err as { authenticationFailed?: boolean }).authenticationFailed) {
          token = await this.opts.oauth2.afterAuthFailure(token);
          continue;
        }
        throw classifyImapError(err, this.label, 'cannot connect');
      }
    }
  }

  /**
   * imapflow runs LIST and LSUB before a SELECT of a folder its connection has not listed: giving
   * every connection the listing we already have saves those two round trips per folder.
   */
  private primeFolders(client: ImapFlow): void {
    const cache = (client as unknown as { folders?: Map<string, ListResponse> }).folders;
    if (!(cache instanceof Map)) return;
    for (const f of this.listed) if (!cache.has(f.path)) cache.set(f.path, f);
  }

  private async acquire(prefer?: string): Promise<Conn> {
    if (this.closed) throw new RepositoryError('connect', `${this.label}: closed`);
    for (let i = this.idle.length - 1; i >= 0; i--) {
      if (this.idle[i]!.broken || !this.idle[i]!.client.usable) {
        this.idle[i]!.client.close();
        this.idle.splice(i, 1);
      }
    }
    let i = prefer === undefined ? -1 : this.idle.findIndex((c) => c.selected === prefer);
    if (i < 0 && this.idle.length > 0) i = this.idle.length - 1;
    if (i >= 0) {
      const c = this.idle.splice(i, 1)[0]!;
      this.busy.add(c);
      return c;
    }
    if (this.busy.size + this.opening < this.max) {
      this.opening++;
      try {
        const c = await this.connect();
        this.busy.add(c);
        return c;
      } finally {
        this.opening--;
      }
    }
    return new Promise<Conn>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private release(c: Conn): void {
    this.busy.delete(c);
    if (c.broken || !c.client.usable || this.closed) {
      c.client.close();
      const w = this.waiters.shift();
      if (w) {
        this.opening++;
        this.connect()
          .then((n) => {
            this.busy.add(n);
            w.resolve(n);
          }, w.reject)
          .finally(() => this.opening--);
      }
      return;
    }
    const w = this.waiters.shift();
    if (w) {
      this.busy.add(c);
      w.resolve(c);
    } else this.idle.push(c);
  }

  /**
   * Run fn on a pooled connection, with `folder` selected when given; `fresh` tells fn whether the
   * SELECT just happened. `reselect` selects again even when the connection already has the folder
   * selected: a pooled connection hears of changes only when it sends a command, and the counters
   * a sync starts from (HIGHESTMODSEQ above all) come only with a SELECT.
   */
  private async with<T>(folder: string | undefined, what: string, fn: (client: ImapFlow, path: string, fresh: boolean) => Promise<T>, reselect = false): Promise<T> {
    const c = await this.acquire(folder);
    try {
      const p = folder === undefined ? '' : this.toServer(folder);
      let fresh = false;
      if (folder !== undefined && (c.selected !== folder || reselect)) {
        c.selected = null;
        await c.client.mailboxOpen(p);
        c.selected = folder;
        fresh = true;
      }
      return await fn(c.client, p, fresh);
    } catch (err) {
      c.selected = null;
      throw classifyImapError(err, this.label, what);
    } finally {
      this.release(c);
    }
  }

  /** Server path of a '/'-separated name. */
  toServer(name: string): string {
    if (name === 'INBOX') return 'INBOX';
    const parts = name.split('/');
    if (this.delimiter === null) {
      if (parts.length > 1) throw new RepositoryError('config', `${this.label}: the server has no folder hierarchy; cannot use ${name}`);
      return this.prefix + name;
    }
    if (this.delimiter !== '/' && parts.some((p) => p.includes(this.delimiter!))) {
      throw new RepositoryError('config', `${this.label}: folder name ${JSON.stringify(name)} contains the server's delimiter ${JSON.stringify(this.delimiter)}`);
    }
    return (parts[0] === 'INBOX' ? '' : this.prefix) + parts.join(this.delimiter);
  }

  /** '/'-separated name of a server path, or null when it cannot be expressed. */
  fromServer(path: string, delimiter: string | null): string | null {
    if (path.toUpperCase() === 'INBOX') return 'INBOX';
    let p = path;
    if (this.prefix && p.startsWith(this.prefix)) p = p.slice(this.prefix.length);
    const d = delimiter ?? this.delimiter;
    const parts = d ? p.split(d) : [p];
    if (d !== '/' && parts.some((x) => x.includes('/'))) return null;
    if (parts.some((x) => x === '')) return null;
    if (parts[0]!.toUpperCase() === 'INBOX') parts[0] = 'INBOX';
    return parts.join('/');
  }

  /** LIST (with LIST-STATUS when offered, so counters come in the same round trip). */
  async listFolders(): Promise<Array<FolderInfo & { status?: FolderStatus }>> {
    return this.with(undefined, 'cannot list folders', async (client) => {
      // A server answers STATUS (and LIST-STATUS) for the mailbox this connection has selected
      // from the session's own view, which only a command brings up to date: without this NOOP
      // a pooled connection (daemon mode) reports its folder unchanged and its news are missed.
      if (client.mailbox) await client.noop();
      const statusQuery = this.serverCaps.has('LIST-STATUS') ? { messages: true, uidNext: true, uidValidity: true, ...(this.caps.condstore ? { highestModseq: true } : {}) } : undefined;
      const list: ListResponse[] = await client.list(statusQuery ? { statusQuery } : {});
      this.listed = list;
      for (const c of [...this.idle, ...this.busy]) this.primeFolders(c.client);
      const out: Array<FolderInfo & { status?: FolderStatus }> = [];
      for (const f of list) {
        const name = this.fromServer(f.path, f.delimiter || null);
        if (name === null) {
          this.opts.warn?.(`${this.label}: folder ${JSON.stringify(f.path)} cannot be named with '/' levels; skipped`);
          continue;
        }
        const info: FolderInfo & { status?: FolderStatus } = { name };
        if (f.specialUse && f.specialUseSource !== 'name') info.specialUse = f.specialUse;
        if (f.flags.has('\\Noselect') || f.flags.has('\\NonExistent')) info.noSelect = true;
        const s = f.status;
        if (s && s.uidValidity !== undefined && s.uidNext !== undefined && s.messages !== undefined) {
          info.status = { uidValidity: Number(s.uidValidity), uidNext: s.uidNext, messages: s.messages };
          if (s.highestModseq !== undefined) info.status.highestModSeq = s.highestModseq;
        }
        out.push(info);
      }
      return out;
    });
  }

  /** CREATE (parents first where the server needs them); an existing folder is fine. */
  async createFolder(name: string): Promise<void> {
    await this.with(undefined, `cannot create folder ${name}`, async (client) => {
      const existing = new Set((await client.list()).map((f) => this.fromServer(f.path, f.delimiter || null)));
      const parts = name.split('/');
      for (let i = 1; i <= parts.length; i++) {
        const n = parts.slice(0, i).join('/');
        if (existing.has(n) || n === 'INBOX') continue;
        try {
          await client.mailboxCreate(this.toServer(n));
        } catch (err) {
          const code = ((err as { serverResponseCode?: string }).serverResponseCode ?? '').toUpperCase();
          if (code !== 'ALREADYEXISTS') throw err;
        }
      }
    });
  }

  /** STATUS. */
  async status(folder: string): Promise<FolderStatus> {
    return this.with(undefined, `cannot get the status of ${folder}`, async (client) => {
      if (client.mailbox) await client.noop(); // see listFolders
      const s = await client.status(this.toServer(folder), { messages: true, uidNext: true, uidValidity: true, ...(this.caps.condstore ? { highestModseq: true } : {}) });
      if (!s || s.uidValidity === undefined) throw new RepositoryError('nonexistent', `${this.label}: no folder ${folder}`);
      const st: FolderStatus = { uidValidity: Number(s.uidValidity), uidNext: s.uidNext ?? 0, messages: s.messages ?? 0 };
      if (s.highestModseq !== undefined) st.highestModSeq = s.highestModseq;
      return st;
    });
  }

  private statusOfSelected(client: ImapFlow): FolderStatus {
    const mb = client.mailbox;
    if (!mb) throw new RepositoryError('protocol', `${this.label}: no folder selected`);
    const st: FolderStatus = { uidValidity: Number(mb.uidValidity), uidNext: mb.uidNext, messages: mb.exists };
    if (mb.highestModseq !== undefined && !mb.noModseq) st.highestModSeq = mb.highestModseq;
    return st;
  }

  private entryOf(m: FetchMessageObject): MessageEntry {
    const e: MessageEntry = { uid: m.uid, flags: normalizeFlags(m.flags ?? []), size: m.size ?? 0 };
    if (m.modseq !== undefined) e.modSeq = m.modseq;
    return e;
  }

  /** SELECT, then one UID FETCH of UID FLAGS RFC822.SIZE over the range. */
  async snapshot(folder: string, opts: SnapshotOptions = {}): Promise<FolderSnapshot> {
    return this.with(folder, `cannot read folder ${folder}`, async (client, _path, fresh) => {
      // A connection that kept the folder selected sees only what the server told it by the end
      // of its last command, and a server evaluates "N:*" against that view: a NOOP brings the
      // new messages in first (forward and watch mode depend on it).
      if (!fresh) await client.noop();
      // The counters as of the SELECT, before the FETCH: a message that arrives during the FETCH
      // (and may be missing from it) then shows as a change next time, never as "unchanged".
      const status = this.statusOfSelected(client);
      const messages: MessageEntry[] = [];
      const min = opts.minUid ?? 1;
      if (status.messages > 0) {
        for await (const m of client.fetch(`${min}:*`, { uid: true, flags: true, size: true, internalDate: opts.withDates === true }, { uid: true })) {
          if (m.uid < min) continue;
          const e = this.entryOf(m);
          if (m.internalDate) e.internalDate = new Date(m.internalDate);
          messages.push(e);
        }
      }
      messages.sort((x, y) => x.uid - y.uid);
      return { status, messages };
    }, true);
  }

  /**
   * UID FETCH 1:* (FLAGS) (CHANGEDSINCE m VANISHED); null without CONDSTORE or when the server's
   * mod-sequence went back. With `current` counters read this run, a pooled connection that has
   * the folder selected is brought up to date with a NOOP instead of a new SELECT (which costs a
   * server tens of milliseconds on a big folder); the answer then carries `current` as its status:
   * anything newer that the FETCH also returns is seen again, harmlessly, next run.
   */
  async changesSince(folder: string, modSeq: bigint, current?: FolderStatus): Promise<FolderChanges | null> {
    if (!this.caps.condstore) return null;
    const reuse = current?.highestModSeq !== undefined && this.idle.some((c) => c.selected === folder);
    return this.with(folder, `cannot read changes of ${folder}`, async (client, _path, fresh) => {
      let status = this.statusOfSelected(client);
      if (!fresh && current) {
        // The session's view must include every message the counters count before "1:*" is read.
        await client.noop();
        if (current.uidValidity !== status.uidValidity || current.highestModSeq === undefined) {
          await client.mailboxOpen(this.toServer(folder));
          status = this.statusOfSelected(client);
        } else status = { ...current };
      }
      if (status.highestModSeq === undefined || status.highestModSeq < modSeq) return null;
      const changed: MessageEntry[] = [];
      const vanished: number[] = [];
      const onExpunge = (e: { vanished?: boolean; uid?: number; earlier?: boolean }) => {
        if (e.vanished && e.uid !== undefined) vanished.push(e.uid);
      };
      client.on('expunge', onExpunge);
      try {
        if (status.highestModSeq > modSeq && status.messages > 0) {
          for await (const m of client.fetch('1:*', { uid: true, flags: true, size: true }, { uid: true, changedSince: modSeq })) changed.push(this.entryOf(m));
        } else if (status.highestModSeq > modSeq && this.caps.qresync) {
          // An empty folder whose messages all vanished: still ask, to learn which.
          await client.fetchAll('1:*', { uid: true }, { uid: true, changedSince: modSeq });
        }
      } finally {
        client.off('expunge', onExpunge);
      }
      changed.sort((x, y) => x.uid - y.uid);
      return { status, changed, vanished: this.caps.qresync ? vanished : null };
    }, !reuse);
  }

  /** UID SEARCH ALL. */
  async uids(folder: string): Promise<number[]> {
    return this.with(folder, `cannot list messages of ${folder}`, async (client) => {
      if (!client.mailbox || client.mailbox.exists === 0) return [];
      const r = await client.search({ all: true }, { uid: true });
      return (Array.isArray(r) ? r : []).sort((x, y) => x - y);
    }, true);
  }

  /** One UID FETCH of BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] over the set. */
  async messageIds(folder: string, uids: number[]): Promise<Map<number, { messageId: string | null; size: number }>> {
    const out = new Map<number, { messageId: string | null; size: number }>();
    if (uids.length === 0) return out;
    return this.with(folder, `cannot read headers in ${folder}`, async (client) => {
      for (const chunk of chunks(uids, 5000)) {
        for await (const m of client.fetch(uidSet(chunk), { uid: true, size: true, headers: ['message-id'] }, { uid: true })) {
          const text = m.headers ? m.headers.toString('latin1') : '';
          const value = /^message-id[ \t]*:([\s\S]*)$/im.exec(text.replace(/\r?\n[ \t]+/g, ' '))?.[1] ?? '';
          out.set(m.uid, { messageId: normalizeMessageId(value), size: m.size ?? 0 });
        }
      }
      return out;
    });
  }

  /** One UID FETCH (UID FLAGS INTERNALDATE BODY.PEEK[]) per chunk, streamed. */
  async fetch(folder: string, uids: number[], onMessage: (m: FetchedMessage) => Promise<void> | void): Promise<void> {
    if (uids.length === 0) return;
    await this.with(folder, `cannot fetch messages from ${folder}`, async (client) => {
      for await (const m of client.fetch(uidSet(uids), { uid: true, flags: true, internalDate: true, source: true }, { uid: true })) {
        if (!m.source) continue;
        const fm: FetchedMessage = { uid: m.uid, data: m.source, flags: normalizeFlags(m.flags ?? []) };
        if (m.internalDate) fm.internalDate = new Date(m.internalDate);
        await onMessage(fm);
      }
    });
  }

  /** MULTIAPPEND / pipelined LITERAL+ APPENDs through the appender, else imapflow's APPEND one by one. */
  async append(folder: string, items: AppendItem[]): Promise<AppendResult> {
    if (items.length === 0) return { uids: [] };
    const path = this.toServer(folder);
    if (this.caps.batchAppend) {
      if (!this.appender) this.appender = new ImapAppender({ ...this.connectionSettings(), password: () => this.getPassword(), label: this.label, caps: this.serverCaps });
      try {
        return await this.appender.append(path, items, this.opts.appendBatch ?? 100);
      } catch (err) {
        throw classifyImapError(err, this.label, `cannot append to ${folder}`);
      }
    }
    return this.with(undefined, `cannot append to ${folder}`, async (client) => {
      const uids: Array<number | null> = [];
      let uidValidity: number | undefined;
      for (const it of items) {
        const r = await client.append(path, it.data, it.flags, it.internalDate);
        if (!r) throw new RepositoryError('protocol', `${this.label}: APPEND to ${folder} not possible`);
        uids.push(r.uid ?? null);
        if (r.uidValidity !== undefined) uidValidity = Number(r.uidValidity);
      }
      const res: AppendResult = { uids };
      if (uidValidity !== undefined) res.uidValidity = uidValidity;
      return res;
    });
  }

  /** UID STORE (+/-)FLAGS.SILENT. */
  async updateFlags(folder: string, uids: number[], action: 'add' | 'remove' | 'set', flags: string[]): Promise<void> {
    if (uids.length === 0) return;
    await this.with(folder, `cannot change flags in ${folder}`, async (client) => {
      for (const chunk of chunks(uids, 2000)) {
        const set = uidSet(chunk);
        if (action === 'add') await client.messageFlagsAdd(set, flags, { uid: true, silent: true });
        else if (action === 'remove') await client.messageFlagsRemove(set, flags, { uid: true, silent: true });
        else await client.messageFlagsSet(set, flags, { uid: true, silent: true });
      }
    });
  }

  /** UID MOVE to the trash folder (COPY + expunge where MOVE is missing), or \Deleted + UID EXPUNGE. */
  async remove(folder: string, uids: number[], mode: RemoveMode): Promise<void> {
    if (uids.length === 0) return;
    if (mode.kind === 'trash' && mode.folder !== folder) {
      const trash = mode.folder;
      const exists = (await this.listFolders()).some((f) => f.name === trash);
      if (!exists) await this.createFolder(trash);
      await this.with(folder, `cannot move messages to ${trash}`, async (client) => {
        for (const chunk of chunks(uids, 2000)) await client.messageMove(uidSet(chunk), this.toServer(trash), { uid: true });
      });
      return;
    }
    await this.with(folder, `cannot delete messages in ${folder}`, async (client) => {
      for (const chunk of chunks(uids, 2000)) await client.messageDelete(uidSet(chunk), { uid: true });
    });
  }

  /** Gmail (X-GM-EXT-1): add labels to messages with UID STORE +X-GM-LABELS. */
  async addLabels(folder: string, uids: number[], labels: string[]): Promise<void> {
    if (uids.length === 0 || labels.length === 0) return;
    await this.with(folder, `cannot label messages in ${folder}`, async (client) => {
      await client.messageFlagsAdd(uidSet(uids), labels, { uid: true, useLabels: true, silent: true });
    });
  }

  /** UID SEARCH HEADER Message-ID. */
  async searchMessageId(folder: string, messageId: string): Promise<number[]> {
    return this.with(folder, `cannot search ${folder}`, async (client) => {
      const r = await client.search({ header: { 'message-id': messageId } }, { uid: true });
      return (Array.isArray(r) ? r : []).sort((x, y) => x - y);
    });
  }

  /** IDLE on one dedicated connection per folder; resolves on EXISTS/EXPUNGE/FETCH, abort, or fallbackMs. */
  async waitForChange(folders: string[], signal: AbortSignal, fallbackMs: number): Promise<void> {
    const listeners: Array<{ set: Set<() => void>; fn: () => void }> = [];
    await new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        for (const l of listeners) l.set.delete(l.fn);
        resolve();
      };
      const timer = setTimeout(finish, fallbackMs);
      signal.addEventListener('abort', finish);
      if (signal.aborted) return finish();
      for (const f of folders) {
        this.watcher(f).then(
          (w) => {
            if (done) return;
            // A change seen while nobody was waiting (during the caller's own sync) counts now.
            if (w.pending) {
              w.pending = false;
              finish();
              return;
            }
            w.listeners.add(finish);
            listeners.push({ set: w.listeners, fn: finish });
          },
          () => undefined,
        );
      }
    });
  }

  /**
   * Start IDLE on these folders now (idempotent) so that changes from here on are remembered until
   * the next waitForChange(); throws when a folder cannot be watched.
   */
  async startWatching(folders: string[]): Promise<void> {
    try {
      await Promise.all(folders.map((f) => this.watcher(f)));
    } catch (err) {
      throw classifyImapError(err, this.label, `cannot watch ${folders.join(', ')}`);
    }
  }

  private async watcher(folder: string): Promise<Watcher> {
    const existing = this.watchers.get(folder);
    if (existing && existing.client.usable) return existing;
    const listeners = new Set<() => void>();
    const w: Watcher = { client: undefined as unknown as ImapFlow, listeners, pending: false };
    const notify = () => {
      if (listeners.size === 0) w.pending = true;
      for (const l of [...listeners]) l();
    };
    const client = await this.connectClient((c) => {
      c.on('exists', notify);
      c.on('expunge', notify);
      c.on('flags', notify);
      c.on('error', () => {
        if (this.watchers.get(folder) === w) this.watchers.delete(folder);
      });
      c.on('close', () => {
        if (this.watchers.get(folder) === w) this.watchers.delete(folder);
        notify();
      });
    });
    w.client = client;
    w.pending = false;
    this.watchers.set(folder, w);
    await client.mailboxOpen(this.toServer(folder));
    // IDLE until the connection ends; imapflow re-issues it (maxIdleTime) before servers drop it.
    const loop = async () => {
      while (!this.closed && client.usable) await client.idle();
    };
    void loop().catch(() => undefined);
    return w;
  }

  /** LOGOUT every connection. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new RepositoryError('connect', `${this.label}: closed`));
    const all = [...this.idle.splice(0), ...this.busy];
    this.busy.clear();
    await Promise.all(
      all.map(async (c) => {
        try {
          await Promise.race([c.client.logout(), new Promise((r) => setTimeout(r, 2000).unref())]);
        } catch {
          // Going away anyway.
        }
        c.client.close();
      }),
    );
    for (const w of this.watchers.values()) w.client.close();
    this.watchers.clear();
    await this.appender?.close();
  }
}

/** A connection IDLE on one folder, with whoever waits for its changes. */
interface Watcher {
  client: ImapFlow;
  listeners: Set<() => void>;
  /** A change arrived while no one was waiting. */
  pending: boolean;
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}
