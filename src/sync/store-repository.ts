/**
 * A Repository over any MailStore (src/store): a Maildir (the usual local side), sqlite, memory.
 * The store already keeps UIDs, UIDVALIDITY and mod-sequences, so this is a thin adapter; it keeps
 * one open handle per folder for the life of the repository.
 */
import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';
import { StoreError, type MailboxHandle, type MailStore, type UserMailStore } from '../store/contract.js';
import { folderDirName, nameOfDir } from '../store/maildir/index.js';
import { messageIdOf } from './message.js';
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

/** Options of a StoreRepository. */
export interface StoreRepositoryOptions {
  /** Human-readable label, e.g. "maildir:/home/alice/Mail". */
  label: string;
  /** The user inside the store (a Maildir path without %u ignores it). Default "sync". */
  user?: string;
  /** Close the store itself on close() (true when the repository opened it). */
  ownsStore?: boolean;
  /**
   * The store is a Maildir++ tree at this root (the user's): folders are then listed from the
   * directory names without opening each one, and changeToken() reads directory times.
   */
  maildir?: { root: string; separator?: string };
}

/** Turn store errors into repository errors with a kind the CLI understands. */
function wrap(err: unknown, what: string): RepositoryError {
  if (err instanceof RepositoryError) return err;
  const e = err as NodeJS.ErrnoException;
  if (err instanceof StoreError) {
    const kind = err.code === 'NONEXISTENT' ? 'nonexistent' : err.code === 'OVERQUOTA' ? 'full' : err.code === 'TOOBIG' ? 'toobig' : 'io';
    return new RepositoryError(kind, `${what}: ${err.message}`, err);
  }
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return new RepositoryError('full', `${what}: no space left on device`, err);
  if (e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS') return new RepositoryError('io', `${what}: permission denied (${e.code})`, err);
  return new RepositoryError('io', `${what}: ${e.message ?? String(err)}`, err);
}

/** A Repository backed by a MailStore. */
export class StoreRepository implements Repository {
  readonly label: string;
  private user: UserMailStore | undefined;
  private readonly handles = new Map<string, Promise<MailboxHandle>>();

  constructor(
    private readonly store: MailStore,
    private readonly opts: StoreRepositoryOptions,
  ) {
    this.label = opts.label;
  }

  /** Open the store's user. */
  async open(): Promise<void> {
    if (this.user) return;
    try {
      this.user = await this.store.openUser(this.opts.user ?? 'sync');
    } catch (err) {
      throw wrap(err, `${this.label}: cannot open`);
    }
  }

  private u(): UserMailStore {
    if (!this.user) throw new RepositoryError('protocol', `${this.label}: not open`);
    return this.user;
  }

  /** Stores keep keywords and take batches; changesSince reports expunges. */
  capabilities(): RepositoryCapabilities {
    return { condstore: true, qresync: true, keywords: true, batchAppend: true, idle: true };
  }

  private async handle(folder: string): Promise<MailboxHandle> {
    let h = this.handles.get(folder);
    if (!h) {
      h = this.u().open(folder);
      this.handles.set(folder, h);
      h.catch(() => this.handles.delete(folder));
    }
    try {
      return await h;
    } catch (err) {
      throw wrap(err, `${this.label}: folder ${folder}`);
    }
  }

  /** Every mailbox (a Maildir: from the directory names alone, no folder is opened). */
  async listFolders(): Promise<FolderInfo[]> {
    if (this.opts.maildir) return this.maildirFolders(this.opts.maildir.root, this.opts.maildir.separator ?? '.');
    try {
      const list = await this.u().listMailboxes();
      return list.map((m) => (m.specialUse ? { name: m.name, specialUse: m.specialUse } : { name: m.name }));
    } catch (err) {
      throw wrap(err, `${this.label}: cannot list folders`);
    }
  }

  private async maildirFolders(root: string, sep: string): Promise<FolderInfo[]> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(root, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [{ name: 'INBOX' }];
      throw wrap(err, `${this.label}: cannot list folders`);
    }
    const out: FolderInfo[] = [{ name: 'INBOX' }];
    for (const d of entries) {
      const name = nameOfDir(d.name, sep);
      if (name === null) continue;
      const isDir = d.isDirectory() || (d.isSymbolicLink() && (await fs.stat(path.join(root, d.name)).catch(() => null))?.isDirectory() === true);
      if (isDir) out.push({ name });
    }
    return out;
  }

  /**
   * A Maildir folder changes only by files arriving in or moving between new/ and cur/ (flags are
   * in the names) and by its uidlist being rewritten: the three modification times say whether
   * anything happened. They are trusted only once older than the file system's timestamp tick,
   * so a change in the same tick as the token cannot hide behind it.
   */
  async changeToken(folder: string): Promise<string | null> {
    const md = this.opts.maildir;
    if (!md) return null;
    const dir = folder === 'INBOX' ? md.root : path.join(md.root, folderDirName(folder, md.separator ?? '.'));
    const stats = await Promise.all(['cur', 'new', 'dovecot-uidlist'].map((f) => fs.stat(path.join(dir, f), { bigint: true }).catch(() => null)));
    const [cur, nw, ul] = stats;
    if (!cur || !nw || !ul) return null;
    const now = BigInt(Date.now()) * 1_000_000n;
    for (const st of stats) {
      // Whole-second times (a coarse file system) need two seconds; fine ones one tick (50 ms covers HZ >= 20).
      const margin = st!.mtimeNs % 1_000_000_000n === 0n ? 2_000_000_000n : 50_000_000n;
      if (now - st!.mtimeNs < margin) return null;
    }
    return `${cur.mtimeNs}:${nw.mtimeNs}:${ul.mtimeNs}:${ul.size}`;
  }

  /** Create a mailbox; an existing one is fine. */
  async createFolder(name: string): Promise<void> {
    try {
      await this.u().createMailbox(name);
    } catch (err) {
      if (err instanceof StoreError && err.code === 'ALREADYEXISTS') return;
      throw wrap(err, `${this.label}: cannot create folder ${name}`);
    }
  }

  /**
   * Counters from the store (it rescans the folder). A cached handle of a folder that was deleted
   * and created again (a new UIDVALIDITY) is dropped, so the next call opens the new one.
   */
  async status(folder: string): Promise<FolderStatus> {
    try {
      const s = await this.u().status(folder);
      const cached = this.handles.get(folder);
      if (cached) {
        const h = await cached.catch(() => null);
        if (!h || h.uidValidity !== s.uidValidity) {
          this.handles.delete(folder);
          await h?.close().catch(() => undefined);
        }
      }
      return { uidValidity: s.uidValidity, uidNext: s.uidNext, highestModSeq: s.highestModSeq, messages: s.messages };
    } catch (err) {
      throw wrap(err, `${this.label}: folder ${folder}`);
    }
  }

  /** Every message's metadata. */
  async snapshot(folder: string, opts: SnapshotOptions = {}): Promise<FolderSnapshot> {
    const h = await this.handle(folder);
    try {
      const list = await h.list();
      const status = await this.status(folder);
      const min = opts.minUid ?? 1;
      const messages: MessageEntry[] = [];
      for (const m of list) if (m.uid >= min) messages.push({ uid: m.uid, flags: normalizeFlags(m.flags), size: m.size, internalDate: m.internalDate, modSeq: m.modSeq });
      return { status, messages };
    } catch (err) {
      throw wrap(err, `${this.label}: folder ${folder}`);
    }
  }

  /** Changes through the store's mod-sequences. */
  async changesSince(folder: string, modSeq: bigint): Promise<FolderChanges | null> {
    const h = await this.handle(folder);
    try {
      const status = await this.status(folder);
      if (status.highestModSeq !== undefined && status.highestModSeq < modSeq) return null;
      const ch = await h.changesSince(modSeq);
      return {
        status,
        changed: ch.changed.map((m) => ({ uid: m.uid, flags: normalizeFlags(m.flags), size: m.size, internalDate: m.internalDate, modSeq: m.modSeq })),
        vanished: ch.expunged,
      };
    } catch (err) {
      throw wrap(err, `${this.label}: folder ${folder}`);
    }
  }

  /** UIDs of every message. */
  async uids(folder: string): Promise<number[]> {
    const h = await this.handle(folder);
    return (await h.list()).map((m) => m.uid);
  }

  /** Message-IDs from the files' headers. */
  async messageIds(folder: string, uids: number[]): Promise<Map<number, { messageId: string | null; size: number }>> {
    const h = await this.handle(folder);
    const out = new Map<number, { messageId: string | null; size: number }>();
    try {
      const metas = new Map((await h.get(uids)).map((m) => [m.uid, m]));
      for (const uid of uids) {
        const meta = metas.get(uid);
        if (!meta) continue;
        const data = await h.read(uid);
        if (data) out.set(uid, { messageId: messageIdOf(data), size: meta.size });
      }
    } catch (err) {
      throw wrap(err, `${this.label}: folder ${folder}`);
    }
    return out;
  }

  /** Read messages one by one (they are local files). */
  async fetch(folder: string, uids: number[], onMessage: (m: FetchedMessage) => Promise<void> | void): Promise<void> {
    const h = await this.handle(folder);
    let metas;
    try {
      metas = await h.get([...uids].sort((x, y) => x - y));
    } catch (err) {
      throw wrap(err, `${this.label}: folder ${folder}`);
    }
    for (const meta of metas) {
      let data: Buffer | null;
      try {
        data = await h.read(meta.uid);
      } catch (err) {
        throw wrap(err, `${this.label}: folder ${folder}: message ${meta.uid}`);
      }
      if (data) await onMessage({ uid: meta.uid, data, flags: normalizeFlags(meta.flags), internalDate: meta.internalDate });
    }
  }

  /** One store append for the whole batch (all or none). */
  async append(folder: string, items: AppendItem[]): Promise<AppendResult> {
    try {
      const r = await this.u().append(
        folder,
        items.map((i) => {
          const m: { data: Buffer; flags: string[]; internalDate?: Date } = { data: i.data, flags: i.flags };
          if (i.internalDate) m.internalDate = i.internalDate;
          return m;
        }),
      );
      return { uidValidity: r.uidValidity, uids: r.destUids };
    } catch (err) {
      throw wrap(err, `${this.label}: cannot store messages in ${folder}`);
    }
  }

  /** STORE-like flag change. */
  async updateFlags(folder: string, uids: number[], action: 'add' | 'remove' | 'set', flags: string[]): Promise<void> {
    if (uids.length === 0) return;
    const h = await this.handle(folder);
    try {
      await h.updateFlags(uids, { action, flags });
    } catch (err) {
      throw wrap(err, `${this.label}: cannot change flags in ${folder}`);
    }
  }

  /** Expunge (mark \Deleted, then expunge just those) or move to the trash folder. */
  async remove(folder: string, uids: number[], mode: RemoveMode): Promise<void> {
    if (uids.length === 0) return;
    const h = await this.handle(folder);
    try {
      if (mode.kind === 'trash' && mode.folder !== folder) {
        await this.createFolder(mode.folder);
        await h.move(uids, mode.folder);
        return;
      }
      await h.updateFlags(uids, { action: 'add', flags: ['\\Deleted'] });
      await h.expunge(uids);
    } catch (err) {
      throw wrap(err, `${this.label}: cannot remove messages from ${folder}`);
    }
  }

  /** Scan the folder's headers for a Message-ID. */
  async searchMessageId(folder: string, messageId: string): Promise<number[]> {
    const h = await this.handle(folder);
    const out: number[] = [];
    for (const m of await h.list()) {
      const data = await h.read(m.uid);
      if (data && messageIdOf(data) === messageId) out.push(m.uid);
    }
    return out;
  }

  /** Resolve on the store's change notification for one of the folders, or after fallbackMs. */
  async waitForChange(folders: string[], signal: AbortSignal, fallbackMs: number): Promise<void> {
    const wanted = new Set(folders);
    await new Promise<void>((resolve) => {
      let unsub = (): void => undefined;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        unsub();
        resolve();
      };
      const timer = setTimeout(done, fallbackMs);
      signal.addEventListener('abort', done);
      unsub = this.u().watch((e) => {
        if (wanted.size === 0 || wanted.has(e.mailbox) || e.kind === 'mailboxes') done();
      });
      if (signal.aborted) done();
    });
  }

  /** Close handles, the user and (if owned) the store. */
  async close(): Promise<void> {
    const hs = [...this.handles.values()];
    this.handles.clear();
    for (const h of hs) await h.then((x) => x.close()).catch(() => undefined);
    await this.user?.close().catch(() => undefined);
    this.user = undefined;
    if (this.opts.ownsStore) await this.store.close().catch(() => undefined);
  }
}
