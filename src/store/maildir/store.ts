/**
 * The `maildir` MailStore: each user's mail is a Maildir++ tree (INBOX in the root, folders as
 * `.A.B` directories) that Dovecot can serve as it is, and imapkit serves Maildirs Dovecot (or an
 * MDA, OfflineIMAP, mbsync) wrote. Spec: `maildir:PATH[:SEP=c][:INDEX=DIR|MEMORY]`, where PATH may
 * use %u (user), %n (local part) and %d (domain), like Dovecot's mail_location.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  StoreError,
  type ChangeEvent,
  type Changes,
  type FlagUpdate,
  type FlagUpdateResult,
  type MailboxHandle,
  type MailboxInfo,
  type MailboxStatus,
  type MailStore,
  type MessageMeta,
  type NewMessage,
  type PrefixRead,
  type QuotaInfo,
  type SpecialUse,
  type UidMapping,
  type UserDb,
  type UserMailStore,
} from '../contract.js';
import { Folder, type FolderEnv } from './folder.js';
import { appendDirect } from './deliver.js';
import { isErr, mkdirOwned, mkdirpOwned, ownerFor, readIfExists, writeNewFile, type Owner } from './fsutil.js';
import { checkMailboxName, checkSeparator, folderDirName, nameOfDir, normalizeName } from './names.js';
import { readSubscriptions, updateSubscription } from './subscriptions.js';

/** Options of the maildir store. */
export interface MaildirStoreOptions {
  /** Maildir root per user; %u, %n, %d and %% are expanded. */
  path: string;
  /** Maildir++ hierarchy separator on disk (default '.', as Dovecot and Courier use). */
  separator?: string;
  /** Where imapkit's cache databases go: undefined = inside each folder, 'MEMORY' = nowhere, else a directory (template). */
  cacheDir?: string;
  /** Fallback rescan interval of watched folders, ms (default 5000). */
  rescanIntervalMs?: number;
  /** How long to wait for a dovecot-uidlist.lock held by someone else (default 122 s, as Dovecot). */
  lockTimeoutMs?: number;
  /** Quota limits reported by quota() and enforced on APPEND/COPY. */
  quota?: { storageKiB?: number; messages?: number };
  /** User database living with this store (e.g. a passwd-file). */
  users?: UserDb;
  /** How long a user's state (open folders and their caches) stays after the last session closed, ms (default 120 s). */
  keepOpenMs?: number;
  /** Receives warnings (broken uidlist, unusable cache, ...). */
  warn?: (message: string) => void;
  /**
   * Keep the server's structure entries (ENVELOPE/BODYSTRUCTURE answers, UserMailStore.keepsStructures)
   * in each folder's cache database (default false: with today's server, a first FETCH ENVELOPE of a
   * folder then also computes BODYSTRUCTURE and writes every entry back, which costs more than it saves).
   */
  keepStructures?: boolean;
}

const SPECIAL_USE_FILE = 'imapkit-special-use';
const SPECIAL_USES: ReadonlySet<string> = new Set(['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash', '\\Important']);
const MAX_OPEN_IDLE_FOLDERS = 64;

/** Parse `maildir:PATH[:KEY=VALUE...]` into options. */
export function parseMaildirSpec(spec: string): MaildirStoreOptions {
  if (!spec.startsWith('maildir:')) throw new StoreError('CANNOT', `not a maildir store spec: ${spec}`);
  const parts = spec.slice('maildir:'.length).split(':');
  const p = parts.shift() ?? '';
  if (p === '') throw new StoreError('CANNOT', 'maildir store spec needs a path: maildir:/var/mail/%u/Maildir');
  const opts: MaildirStoreOptions = { path: p };
  for (const part of parts) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (key === 'SEP') {
      checkSeparator(value);
      opts.separator = value;
    } else if (key === 'INDEX') opts.cacheDir = value;
    else if (key === 'RESCAN') opts.rescanIntervalMs = Number(value);
    else throw new StoreError('CANNOT', `unknown maildir option ${key} (known: SEP, INDEX, RESCAN)`);
  }
  return opts;
}

/** Refuse user names that would change the path: '/', '..', NUL and control characters. */
function checkUser(user: string): void {
  if (user === '' || user === '.' || user === '..' || user.includes('/') || /[\x00-\x1f\x7f]/.test(user) || user.length > 255) {
    throw new StoreError('CANNOT', `user name ${JSON.stringify(user)} cannot name a Maildir`);
  }
}

/** Expand %u, %n, %d and %% in a path template. */
export function expandPath(template: string, user: string): string {
  const at = user.indexOf('@');
  return template.replace(/%([und%])/g, (_m, c: string) => (c === 'u' ? user : c === 'n' ? (at < 0 ? user : user.slice(0, at)) : c === 'd' ? (at < 0 ? '' : user.slice(at + 1)) : '%'));
}

/** The MailStore over Maildirs. */
export class MaildirStore implements MailStore {
  readonly kind = 'maildir';
  readonly users?: UserDb;
  private readonly cores = new Map<string, Promise<MaildirUser>>();
  private readonly opts: MaildirStoreOptions;

  constructor(opts: MaildirStoreOptions | string) {
    this.opts = typeof opts === 'string' ? parseMaildirSpec(opts) : opts;
    checkSeparator(this.opts.separator ?? '.');
    if (this.opts.users) this.users = this.opts.users;
  }

  /** Maildir root of a user. */
  rootOf(user: string): string {
    checkUser(user);
    return path.resolve(expandPath(this.opts.path, user));
  }

  /** Open one user's mail, creating the Maildir root on first use. */
  async openUser(user: string): Promise<UserMailStore> {
    const root = this.rootOf(user);
    let p = this.cores.get(root);
    if (!p) {
      p = MaildirUser.open(user, root, this.opts, () => this.cores.delete(root));
      this.cores.set(root, p);
      p.catch(() => this.cores.delete(root));
    }
    const core = await p;
    core.acquire();
    return new UserFacade(core);
  }

  /** Close every user's state. */
  async close(): Promise<void> {
    const all = [...this.cores.values()];
    this.cores.clear();
    for (const p of all) {
      const core = await p.catch(() => null);
      core?.shutdown();
    }
  }
}

/** Shared per-user state: open folders, listeners, watchers. */
class MaildirUser {
  refs = 0;
  private readonly folders = new Map<string, Promise<Folder>>();
  private readonly listeners = new Set<(e: ChangeEvent) => void>();
  private timer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<Folder, NodeJS.Timeout>();
  readonly env: FolderEnv;
  readonly sep: string;

  private constructor(
    readonly user: string,
    readonly root: string,
    readonly owner: Owner | undefined,
    readonly opts: MaildirStoreOptions,
    private readonly onShutdown: () => void,
  ) {
    this.sep = opts.separator ?? '.';
    const cacheDir = opts.cacheDir ? expandPath(opts.cacheDir, user) : undefined;
    this.env = {
      root,
      owner,
      cacheFile: (dir) => {
        if (cacheDir === 'MEMORY') return null;
        if (!cacheDir) return path.join(dir, 'imapkit-cache.sqlite');
        const rel = path.relative(root, dir);
        return path.join(cacheDir, `${rel === '' ? 'INBOX' : rel}.sqlite`);
      },
      emit: (e) => this.emit(e),
      warn: (m) => (opts.warn ?? ((x: string) => process.emitWarning(x, 'MaildirWarning')))(m),
      lockTimeoutMs: opts.lockTimeoutMs,
    };
  }

  static async open(user: string, root: string, opts: MaildirStoreOptions, onShutdown: () => void): Promise<MaildirUser> {
    const owner = await ownerFor(root);
    await mkdirpOwned(root, owner);
    for (const sub of ['cur', 'new', 'tmp']) await mkdirOwned(path.join(root, sub), owner);
    if (opts.cacheDir && opts.cacheDir !== 'MEMORY') await mkdirpOwned(expandPath(opts.cacheDir, user), owner);
    return new MaildirUser(user, root, owner, opts, onShutdown);
  }

  dirOf(name: string): string {
    return name === 'INBOX' ? this.root : path.join(this.root, folderDirName(name, this.sep));
  }

  check(name: string): string {
    return checkMailboxName(name, this.sep);
  }

  /** The open Folder of a mailbox (NONEXISTENT when its directory is missing). */
  async folder(name: string): Promise<Folder> {
    const n = this.check(name);
    let p = this.folders.get(n);
    if (p) {
      const f = await p.catch(() => null);
      if (f && !f.gone) return f;
      if (this.folders.get(n) === p) this.folders.delete(n);
    }
    p = Folder.open(this.env, n, this.dirOf(n));
    this.folders.set(n, p);
    let f: Folder;
    try {
      f = await p;
    } catch (err) {
      if (this.folders.get(n) === p) this.folders.delete(n);
      throw err;
    }
    if (this.listeners.size > 0) f.watch(() => this.schedule(f));
    void this.evict();
    return f;
  }

  /** Close idle folders beyond the cap (they reopen from their cache when needed). */
  private async evict(): Promise<void> {
    if (this.folders.size <= MAX_OPEN_IDLE_FOLDERS) return;
    for (const [n, p] of this.folders) {
      if (this.folders.size <= MAX_OPEN_IDLE_FOLDERS) break;
      const f = await p.catch(() => null);
      if (!f || (f.refs === 0 && n !== 'INBOX')) {
        this.folders.delete(n);
        f?.close();
      }
    }
  }

  /** After directories moved: Folder objects (and the handles on them) follow to their new names. */
  async relocate(moves: Array<[string, string]>): Promise<void> {
    for (const [from, to] of moves) {
      const p = this.folders.get(from);
      if (!p) continue;
      this.folders.delete(from);
      const f = await p.catch(() => null);
      if (!f) continue;
      await f.mutex.run(() => f.relocate(to, this.dirOf(to)));
      this.folders.set(to, Promise.resolve(f));
      if (this.listeners.size > 0) f.watch(() => this.schedule(f));
    }
  }

  /** Retire the Folder objects of a mailbox and its children (before moving or deleting directories). */
  async retire(name: string, withChildren: boolean): Promise<void> {
    for (const [n, p] of [...this.folders]) {
      if (n === name || (withChildren && n.startsWith(name + '/'))) {
        this.folders.delete(n);
        const f = await p.catch(() => null);
        if (f) await f.mutex.run(async () => f.retire());
      }
    }
  }

  /** Names of all mailboxes that exist as directories. */
  async names(): Promise<string[]> {
    const out = ['INBOX'];
    const entries = await fs.readdir(this.root, { withFileTypes: true });
    for (const d of entries) {
      const name = nameOfDir(d.name, this.sep);
      if (name === null) continue;
      let isDir = d.isDirectory();
      if (d.isSymbolicLink()) isDir = (await fs.stat(path.join(this.root, d.name)).catch(() => null))?.isDirectory() ?? false;
      if (isDir) out.push(name);
    }
    return out;
  }

  /** True when no Folder object for the mailbox is open here and nobody listens: a direct append is safe. */
  quietlyClosed(name: string): boolean {
    return this.listeners.size === 0 && !this.folders.has(name);
  }

  async exists(name: string): Promise<boolean> {
    if (name === 'INBOX') return true;
    const st = await fs.stat(this.dirOf(name)).catch(() => null);
    return st?.isDirectory() ?? false;
  }

  async specialUseOf(name: string): Promise<SpecialUse | undefined> {
    const text = await readIfExists(path.join(this.dirOf(name), SPECIAL_USE_FILE));
    const v = text?.trim();
    return v && SPECIAL_USES.has(v) ? (v as SpecialUse) : undefined;
  }

  /** Create one folder directory with cur/ new/ tmp/ and the Maildir++ `maildirfolder` marker. */
  async makeFolderDir(name: string, specialUse?: SpecialUse): Promise<boolean> {
    const dir = this.dirOf(name);
    const created = await mkdirOwned(dir, this.owner);
    for (const sub of ['cur', 'new', 'tmp']) await mkdirOwned(path.join(dir, sub), this.owner);
    await writeNewFile(path.join(dir, 'maildirfolder'), '', { owner: this.owner }).catch((err: unknown) => {
      if (!isErr(err, 'EEXIST')) throw err;
    });
    if (specialUse && created) await writeNewFile(path.join(dir, SPECIAL_USE_FILE), specialUse + '\n', { owner: this.owner });
    return created;
  }

  emit(e: ChangeEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        // A listener's failure is its own business.
      }
    }
  }

  private schedule(f: Folder): void {
    // Watchers stay armed while nobody listens (see pauseWatching); a later open() syncs anyway.
    if (this.listeners.size === 0 || this.pending.has(f)) return;
    this.pending.set(
      f,
      setTimeout(() => {
        this.pending.delete(f);
        if (!f.gone) f.sync().catch(() => undefined);
      }, 25),
    );
  }

  watch(listener: (e: ChangeEvent) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) void this.startWatching();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.pauseWatching();
    };
  }

  private async startWatching(): Promise<void> {
    try {
      const inbox = await this.folder('INBOX');
      if (this.listeners.size === 0) return;
      inbox.watch(() => this.schedule(inbox));
      for (const p of this.folders.values()) {
        const f = await p.catch(() => null);
        if (f && !f.gone) f.watch(() => this.schedule(f));
      }
    } catch {
      // The periodic rescan still runs.
    }
    if (this.listeners.size === 0) return;
    const every = this.opts.rescanIntervalMs ?? 5000;
    if (!this.timer && every > 0) {
      this.timer = setInterval(() => void this.rescanAll(), every);
      this.timer.unref();
    }
  }

  private async rescanAll(): Promise<void> {
    for (const p of [...this.folders.values()]) {
      const f = await p.catch(() => null);
      if (f && !f.gone && (f.refs > 0 || f.name === 'INBOX')) await f.sync().catch(() => undefined);
    }
  }

  /**
   * The last listener left: stop the rescans but keep the folders' inotify watches until the
   * state is dropped (shutdown), so the next session (a reconnect) does not pay for setting them
   * up again. Their events are ignored meanwhile; nothing is missed, since every open() and
   * status() syncs with the disk first.
   */
  private pauseWatching(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  private stopWatching(): void {
    this.pauseWatching();
    for (const p of this.folders.values()) void p.then((f) => f.unwatch()).catch(() => undefined);
  }

  /** Usage over all folders, with the configured limits. */
  async quota(): Promise<QuotaInfo> {
    let bytes = 0;
    let messages = 0;
    for (const name of await this.names()) {
      const f = await this.folder(name).catch(() => null);
      if (!f) continue;
      await f.sync().catch(() => undefined);
      const c = f.counts();
      bytes += c.size;
      messages += c.messages;
    }
    const q: QuotaInfo = { root: '', storageUsedKiB: Math.ceil(bytes / 1024), messagesUsed: messages };
    if (this.opts.quota?.storageKiB !== undefined) q.storageLimitKiB = this.opts.quota.storageKiB;
    if (this.opts.quota?.messages !== undefined) q.messagesLimit = this.opts.quota.messages;
    return q;
  }

  /** OVERQUOTA when adding this much would pass a limit. */
  async checkQuota(addMessages: number, addBytes: number): Promise<void> {
    const limits = this.opts.quota;
    if (!limits || (limits.storageKiB === undefined && limits.messages === undefined)) return;
    const q = await this.quota();
    if (limits.messages !== undefined && q.messagesUsed + addMessages > limits.messages) throw new StoreError('OVERQUOTA', 'message count quota exceeded');
    if (limits.storageKiB !== undefined && q.storageUsedKiB + Math.ceil(addBytes / 1024) > limits.storageKiB) throw new StoreError('OVERQUOTA', 'storage quota exceeded');
  }

  private linger: NodeJS.Timeout | undefined;

  /** A new session uses this state: it must not be dropped now. */
  acquire(): void {
    this.refs++;
    if (this.linger) clearTimeout(this.linger);
    this.linger = undefined;
  }

  /** A session is done; the state stays a while for the next one (reconnects, the next delivery). */
  release(): void {
    if (--this.refs > 0) return;
    const keep = this.opts.keepOpenMs ?? 120_000;
    if (keep <= 0) return this.shutdown();
    this.linger = setTimeout(() => {
      if (this.refs <= 0) this.shutdown();
    }, keep);
    this.linger.unref();
  }

  shutdown(): void {
    if (this.linger) clearTimeout(this.linger);
    this.linger = undefined;
    this.listeners.clear();
    this.stopWatching();
    for (const p of this.folders.values()) void p.then((f) => f.close()).catch(() => undefined);
    this.folders.clear();
    this.onShutdown();
  }
}

/** One openUser() result; several share a MaildirUser. */
class UserFacade implements UserMailStore {
  /** With the keepStructures option: server structure entries are kept in each folder's cache database. */
  readonly keepsStructures: boolean;
  private closed = false;
  private readonly unsubs = new Set<() => void>();

  constructor(private readonly core: MaildirUser) {
    this.keepsStructures = core.opts.keepStructures === true;
  }

  get user(): string {
    return this.core.user;
  }

  private live(): MaildirUser {
    if (this.closed) throw new StoreError('SERVERBUG', 'user store already closed');
    return this.core;
  }

  async listMailboxes(): Promise<MailboxInfo[]> {
    const core = this.live();
    const [names, subs] = await Promise.all([core.names(), readSubscriptions(path.join(core.root, 'subscriptions'), core.sep)]);
    const subscribed = new Set(subs);
    const out: MailboxInfo[] = [];
    for (const name of names) {
      let f: Folder;
      try {
        f = await core.folder(name);
      } catch (err) {
        // Deleted while we listed.
        if (err instanceof StoreError && err.code === 'NONEXISTENT') continue;
        throw err;
      }
      const info: MailboxInfo = { name, subscribed: subscribed.has(name), mailboxId: f.mailboxId };
      const su = await core.specialUseOf(name);
      if (su) info.specialUse = su;
      out.push(info);
    }
    return out;
  }

  async createMailbox(name: string, specialUse?: SpecialUse): Promise<void> {
    const core = this.live();
    const n = core.check(name);
    if (specialUse !== undefined && !SPECIAL_USES.has(specialUse)) throw new StoreError('CANNOT', `unknown special use ${specialUse}`);
    if (await core.exists(n)) throw new StoreError('ALREADYEXISTS', `mailbox ${n} already exists`);
    const levels = n.split('/');
    for (let i = 1; i < levels.length; i++) {
      const parent = levels.slice(0, i).join('/');
      if (parent !== 'INBOX') await core.makeFolderDir(parent);
    }
    if (!(await core.makeFolderDir(n, specialUse))) throw new StoreError('ALREADYEXISTS', `mailbox ${n} already exists`);
    // Opening creates dovecot-uidlist, so the MAILBOXID is fixed from the start.
    await core.folder(n);
    core.emit({ mailbox: n, kind: 'mailboxes', modSeq: 0n });
  }

  async deleteMailbox(name: string): Promise<void> {
    const core = this.live();
    const n = core.check(name);
    if (n === 'INBOX') throw new StoreError('CANNOT', 'INBOX cannot be deleted');
    if (!(await core.exists(n))) throw new StoreError('NONEXISTENT', `mailbox ${n} does not exist`);
    await core.retire(n, false);
    // Rename out of the listing first (atomic), then remove at leisure.
    const trash = path.join(core.root, `imapkit-deleting-${randomBytes(6).toString('hex')}`);
    try {
      await fs.rename(core.dirOf(n), trash);
    } catch (err) {
      if (isErr(err, 'ENOENT')) throw new StoreError('NONEXISTENT', `mailbox ${n} does not exist`);
      throw err;
    }
    await fs.rm(trash, { recursive: true, force: true });
    core.emit({ mailbox: n, kind: 'mailboxes', modSeq: 0n });
  }

  async renameMailbox(from: string, to: string): Promise<void> {
    const core = this.live();
    const a = core.check(from);
    const b = core.check(to);
    if (!(await core.exists(a))) throw new StoreError('NONEXISTENT', `mailbox ${a} does not exist`);
    if (await core.exists(b)) throw new StoreError('ALREADYEXISTS', `mailbox ${b} already exists`);
    if (b === a || b.startsWith(a + '/')) throw new StoreError('CANNOT', 'cannot rename a mailbox into itself');
    if (a === 'INBOX') {
      // RFC 3501 6.3.5: INBOX's messages move to the new mailbox; INBOX stays, empty, with its UIDVALIDITY.
      await this.createMailbox(b);
      const src = await core.folder('INBOX');
      const dst = await core.folder(b);
      await src.sync();
      const uids = src.metas().map((m) => m.uid);
      if (uids.length > 0) await src.exportTo(dst, uids, true, undefined);
      return;
    }
    // The mailbox and every child directory move; their uidlists (UIDs, UIDVALIDITY, MAILBOXID) go along.
    const all = await core.names();
    const moves: Array<[string, string]> = all
      .filter((n) => n === a || n.startsWith(a + '/'))
      .sort((x, y) => x.length - y.length)
      .map((n) => [n, b + n.slice(a.length)]);
    for (const [, target] of moves) {
      core.check(target);
      if (all.includes(target)) throw new StoreError('ALREADYEXISTS', `mailbox ${target} already exists`);
    }
    const levels = b.split('/');
    for (let i = 1; i < levels.length; i++) {
      const parent = levels.slice(0, i).join('/');
      if (parent !== 'INBOX' && !(await core.exists(parent))) await core.makeFolderDir(parent);
    }
    const done: Array<[string, string]> = [];
    try {
      for (const [x, y] of moves) {
        await fs.rename(core.dirOf(x), core.dirOf(y));
        done.push([x, y]);
      }
    } catch (err) {
      for (const [x, y] of done.reverse()) await fs.rename(core.dirOf(y), core.dirOf(x)).catch(() => undefined);
      if (isErr(err, 'ENOTEMPTY', 'EEXIST')) throw new StoreError('ALREADYEXISTS', `a mailbox under ${b} already exists`);
      throw err;
    }
    await core.relocate(moves);
    // Subscriptions follow the rename.
    const subsFile = path.join(core.root, 'subscriptions');
    const subs = await readSubscriptions(subsFile, core.sep);
    for (const [x, y] of moves) {
      if (!subs.includes(x)) continue;
      await updateSubscription(subsFile, core.sep, x, false, core.owner);
      await updateSubscription(subsFile, core.sep, y, true, core.owner);
    }
    core.emit({ mailbox: b, kind: 'mailboxes', modSeq: 0n });
  }

  async setSubscribed(name: string, subscribed: boolean): Promise<void> {
    const core = this.live();
    const n = core.check(name);
    await updateSubscription(path.join(core.root, 'subscriptions'), core.sep, n, subscribed, core.owner);
    core.emit({ mailbox: n, kind: 'mailboxes', modSeq: 0n });
  }

  async status(name: string): Promise<MailboxStatus> {
    const core = this.live();
    const f = await core.folder(name);
    await f.sync();
    return statusOf(f);
  }

  async open(name: string): Promise<MailboxHandle> {
    const core = this.live();
    const f = await core.folder(name);
    await f.sync();
    f.refs++;
    return core.opts.keepStructures === true ? new StructuresHandle(core, f) : new MaildirHandle(core, f);
  }

  async append(mailbox: string, messages: NewMessage[], origin?: string): Promise<UidMapping> {
    const core = this.live();
    const n = core.check(mailbox);
    await core.checkQuota(messages.length, messages.reduce((s, m) => s + m.data.length, 0));
    // (Structure entries live in the folder's cache, which the direct path does not open.)
    if (core.quietlyClosed(n) && !messages.some((m) => m.structure)) {
      // Nobody here has the folder open or listens for changes (deliver, import): append the way
      // dovecot-lda does, without reading the whole folder first.
      if (!(await core.exists(n))) throw new StoreError('NONEXISTENT', `mailbox ${n} does not exist`);
      return appendDirect({ root: core.root, owner: core.owner, lockTimeoutMs: core.opts.lockTimeoutMs }, core.dirOf(n), messages);
    }
    const f = await core.folder(n);
    return f.append(messages, origin);
  }

  quota(): Promise<QuotaInfo> {
    return this.live().quota();
  }

  watch(listener: (event: ChangeEvent) => void): () => void {
    const unsub = this.live().watch(listener);
    this.unsubs.add(unsub);
    return () => {
      this.unsubs.delete(unsub);
      unsub();
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const u of this.unsubs) u();
    this.unsubs.clear();
    this.core.release();
  }
}

function statusOf(f: Folder): MailboxStatus {
  const c = f.counts();
  return {
    name: f.name,
    uidValidity: f.uidValidity,
    uidNext: f.uidNext,
    highestModSeq: f.highestModSeq,
    messages: c.messages,
    unseen: c.unseen,
    deleted: c.deleted,
    size: c.size,
    recent: 0,
    mailboxId: f.mailboxId,
  };
}

/** A session's open mailbox. */
class MaildirHandle implements MailboxHandle {
  readonly uidValidity: number;
  readonly mailboxId: string;
  private closed = false;

  constructor(
    private readonly core: MaildirUser,
    private readonly folder: Folder,
  ) {
    this.uidValidity = folder.uidValidity;
    this.mailboxId = folder.mailboxId;
  }

  /** The mailbox's current name (it follows renames). */
  get name(): string {
    return this.folder.name;
  }

  protected live(): Folder {
    if (this.closed) throw new StoreError('SERVERBUG', 'mailbox handle already closed');
    if (this.folder.gone) throw new StoreError('NONEXISTENT', `mailbox ${this.name} no longer exists`);
    return this.folder;
  }

  async status(): Promise<MailboxStatus> {
    const f = this.live();
    await f.sync();
    return statusOf(f);
  }

  async list(): Promise<MessageMeta[]> {
    const f = this.live();
    await f.sync();
    return f.metas();
  }

  async get(uids: number[]): Promise<MessageMeta[]> {
    const f = this.live();
    await f.sync();
    return f.metasOf(uids);
  }

  async read(uid: number): Promise<Buffer | null> {
    return this.live().read(uid);
  }

  async readPrefix(uid: number, bytes: number): Promise<PrefixRead | null> {
    return this.live().readPrefix(uid, bytes);
  }

  async updateFlags(uids: number[], update: FlagUpdate, origin?: string): Promise<FlagUpdateResult> {
    return this.live().updateFlags(uids, update, origin);
  }

  async expunge(uids: number[] | undefined, origin?: string): Promise<number[]> {
    return this.live().expunge(uids, origin);
  }

  async copy(uids: number[], target: string, origin?: string): Promise<UidMapping> {
    const f = this.live();
    const t = await this.core.folder(normalizeName(target));
    const metas = f.metasOf(uids);
    await this.core.checkQuota(metas.length, metas.reduce((s, m) => s + m.size, 0));
    return f.exportTo(t, uids, false, origin);
  }

  async move(uids: number[], target: string, origin?: string): Promise<UidMapping> {
    const f = this.live();
    const t = await this.core.folder(normalizeName(target));
    return f.exportTo(t, uids, true, origin);
  }

  async changesSince(since: bigint): Promise<Changes> {
    const f = this.live();
    await f.sync();
    const { changed, expunged } = f.changesSince(since);
    return { changed, expunged, highestModSeq: f.highestModSeq };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.folder.refs--;
  }
}

/** A handle with the optional structures capability (the keepStructures option). */
class StructuresHandle extends MaildirHandle {
  async structures(uids: number[]): Promise<Map<number, Buffer>> {
    return this.live().auxMany(uids);
  }

  async saveStructures(entries: Map<number, Buffer>): Promise<void> {
    this.live().setAuxMany(entries);
  }
}
