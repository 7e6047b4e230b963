/**
 * MemoryStore: the MailStore contract over plain objects, for demos and tests. Every openUser of
 * one user returns a view onto the same state, so sessions see each other's changes; nothing
 * survives the process. Every operation runs synchronously inside its promise, so each one is atomic.
 */
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
  type QuotaInfo,
  type SpecialUse,
  type UidMapping,
  type UserMailStore,
} from '../contract.js';
import {
  applyFlagUpdate,
  canonicalFlags,
  canonicalMailboxName,
  checkQuota,
  emitTo,
  isInbox,
  isSelfOrDescendant,
  newObjectId,
  nextUidValidity,
  parentsOf,
  toKiB,
  type QuotaLimits,
} from '../common.js';
import { MemoryUserDb } from './users.js';

/** Options of MemoryStore. */
export interface MemoryStoreOptions {
  /** scrypt cost (log2 N) of the user database; default 15. Lower only in tests. */
  scryptLn?: number;
  /** Per-user quota limits enforced on append and copy. */
  quota?: QuotaLimits;
}

interface MemMessage {
  uid: number;
  flags: string[];
  modSeq: bigint;
  data: Buffer;
  internalDate: Date;
  saveDate: Date;
  emailId: string;
  threadId: string;
  /** The server's opaque cache entry (NewMessage.structure), if it gave one. */
  structure?: Buffer;
  /** The frozen MessageMeta handed out until the next change (a FETCH 1:* asks for every one). */
  meta?: MessageMeta;
}

interface MemMailbox {
  name: string;
  mailboxId: string;
  specialUse?: SpecialUse;
  uidValidity: number;
  uidNext: number;
  highestModSeq: bigint;
  /** Ascending by UID. */
  messages: MemMessage[];
  byUid: Map<number, MemMessage>;
  /** Expunged UID -> MODSEQ of the expunge (QRESYNC). */
  tombstones: Map<number, bigint>;
  deleted: boolean;
}

interface MemUser {
  user: string;
  /** Canonical name -> mailbox. */
  mailboxes: Map<string, MemMailbox>;
  subscriptions: Set<string>;
  listeners: Set<(e: ChangeEvent) => void>;
  lastUidValidity: number;
  quota: QuotaLimits | undefined;
}

/** Deliver a change event to the user's listeners. */
function emit(u: MemUser, event: ChangeEvent): void {
  if (event.origin === undefined) delete event.origin;
  emitTo(u.listeners, event);
}

/** A message's metadata: one frozen object shared by callers until the message changes (callers never mutate it). */
function meta(m: MemMessage): MessageMeta {
  return (m.meta ??= Object.freeze({
    uid: m.uid,
    flags: Object.freeze([...m.flags]) as string[],
    modSeq: m.modSeq,
    size: m.data.length,
    internalDate: new Date(m.internalDate.getTime()),
    saveDate: new Date(m.saveDate.getTime()),
    emailId: m.emailId,
    threadId: m.threadId,
  }));
}

function newMailbox(u: MemUser, name: string, specialUse?: SpecialUse): MemMailbox {
  u.lastUidValidity = nextUidValidity(u.lastUidValidity);
  const mb: MemMailbox = {
    name,
    mailboxId: newObjectId('F'),
    uidValidity: u.lastUidValidity,
    uidNext: 1,
    highestModSeq: 1n,
    messages: [],
    byUid: new Map(),
    tombstones: new Map(),
    deleted: false,
  };
  if (specialUse) mb.specialUse = specialUse;
  u.mailboxes.set(name, mb);
  return mb;
}

function statusOf(mb: MemMailbox): MailboxStatus {
  let unseen = 0;
  let deleted = 0;
  let size = 0;
  for (const m of mb.messages) {
    if (!m.flags.includes('\\Seen')) unseen++;
    if (m.flags.includes('\\Deleted')) deleted++;
    size += m.data.length;
  }
  return {
    name: mb.name,
    uidValidity: mb.uidValidity,
    uidNext: mb.uidNext,
    highestModSeq: mb.highestModSeq,
    messages: mb.messages.length,
    unseen,
    deleted,
    size,
    recent: 0,
    mailboxId: mb.mailboxId,
  };
}

function usage(u: MemUser): { bytes: number; count: number } {
  let bytes = 0;
  let count = 0;
  for (const mb of u.mailboxes.values()) {
    count += mb.messages.length;
    for (const m of mb.messages) bytes += m.data.length;
  }
  return { bytes, count };
}

/** Add copies of messages to a mailbox with fresh UIDs and one new MODSEQ; returns the new UIDs. */
function insert(mb: MemMailbox, items: Array<Omit<MemMessage, 'uid' | 'modSeq'>>): number[] {
  if (items.length === 0) return [];
  const modSeq = ++mb.highestModSeq;
  const uids: number[] = [];
  for (const item of items) {
    const m: MemMessage = { ...item, uid: mb.uidNext++, modSeq };
    mb.messages.push(m);
    mb.byUid.set(m.uid, m);
    uids.push(m.uid);
  }
  return uids;
}

/** Remove messages (by UID) leaving tombstones under one new MODSEQ. */
function remove(mb: MemMailbox, uids: number[]): void {
  if (uids.length === 0) return;
  const modSeq = ++mb.highestModSeq;
  const gone = new Set(uids);
  for (const uid of uids) {
    mb.byUid.delete(uid);
    mb.tombstones.set(uid, modSeq);
  }
  mb.messages = mb.messages.filter((m) => !gone.has(m.uid));
}

/** A session's handle on one mailbox of a MemoryStore. */
class MemoryMailboxHandle implements MailboxHandle {
  readonly uidValidity: number;
  readonly mailboxId: string;

  constructor(
    private readonly u: MemUser,
    private readonly mb: MemMailbox,
  ) {
    this.uidValidity = mb.uidValidity;
    this.mailboxId = mb.mailboxId;
  }

  /** Current name (follows renames). */
  get name(): string {
    return this.mb.name;
  }

  private live(): MemMailbox {
    if (this.mb.deleted) throw new StoreError('NONEXISTENT', `mailbox ${this.mb.name} was deleted`);
    return this.mb;
  }

  async status(): Promise<MailboxStatus> {
    return statusOf(this.live());
  }

  async list(): Promise<MessageMeta[]> {
    return this.live().messages.map(meta);
  }

  async get(uids: number[]): Promise<MessageMeta[]> {
    const mb = this.live();
    const out: MessageMeta[] = [];
    // The usual call (the whole view, ascending) needs neither the dedupe nor the sort.
    let ascending = true;
    for (let i = 1; i < uids.length && ascending; i++) ascending = uids[i - 1]! < uids[i]!;
    for (const uid of ascending ? uids : [...new Set(uids)].sort((a, b) => a - b)) {
      const m = mb.byUid.get(uid);
      if (m) out.push(meta(m));
    }
    return out;
  }

  async read(uid: number): Promise<Buffer | null> {
    return this.live().byUid.get(uid)?.data ?? null;
  }

  async readBatch(uids: number[]): Promise<Map<number, Buffer>> {
    const byUid = this.live().byUid;
    const out = new Map<number, Buffer>();
    for (const uid of uids) {
      const data = byUid.get(uid)?.data;
      if (data !== undefined) out.set(uid, data);
    }
    return out;
  }

  async structures(uids: number[]): Promise<Map<number, Buffer>> {
    const byUid = this.live().byUid;
    const out = new Map<number, Buffer>();
    for (const uid of uids) {
      const s = byUid.get(uid)?.structure;
      if (s !== undefined) out.set(uid, s);
    }
    return out;
  }

  async saveStructures(entries: Map<number, Buffer>): Promise<void> {
    const byUid = this.live().byUid;
    for (const [uid, data] of entries) {
      const m = byUid.get(uid);
      if (m) m.structure = Buffer.from(data);
    }
  }

  async updateFlags(uids: number[], update: FlagUpdate, origin?: string): Promise<FlagUpdateResult> {
    const mb = this.live();
    const flags = canonicalFlags(update.flags);
    const targets: Array<{ m: MemMessage; flags: string[] }> = [];
    const modified: number[] = [];
    for (const uid of [...new Set(uids)].sort((a, b) => a - b)) {
      const m = mb.byUid.get(uid);
      if (!m) continue;
      if (update.unchangedSince !== undefined && m.modSeq > update.unchangedSince) {
        modified.push(uid);
        continue;
      }
      const next = applyFlagUpdate(m.flags, update.action, flags);
      if (next) targets.push({ m, flags: next });
    }
    if (targets.length === 0) return { updated: [], modified };
    const modSeq = ++mb.highestModSeq;
    for (const t of targets) {
      t.m.flags = t.flags;
      t.m.modSeq = modSeq;
      t.m.meta = undefined;
    }
    emit(this.u, { mailbox: mb.name, kind: 'flags', modSeq, origin });
    return { updated: targets.map((t) => meta(t.m)), modified };
  }

  async expunge(uids: number[] | undefined, origin?: string): Promise<number[]> {
    const mb = this.live();
    const wanted = uids ? new Set(uids) : undefined;
    const gone = mb.messages.filter((m) => m.flags.includes('\\Deleted') && (!wanted || wanted.has(m.uid))).map((m) => m.uid);
    if (gone.length === 0) return [];
    remove(mb, gone);
    emit(this.u, { mailbox: mb.name, kind: 'expunge', modSeq: mb.highestModSeq, origin });
    return gone;
  }

  async copy(uids: number[], target: string, origin?: string): Promise<UidMapping> {
    return this.transfer(uids, target, false, origin);
  }

  async move(uids: number[], target: string, origin?: string): Promise<UidMapping> {
    return this.transfer(uids, target, true, origin);
  }

  private transfer(uids: number[], target: string, move: boolean, origin?: string): UidMapping {
    const mb = this.live();
    const dest = this.u.mailboxes.get(canonicalMailboxName(target));
    if (!dest) throw new StoreError('NONEXISTENT', `no mailbox ${target}`);
    const sources = [...new Set(uids)]
      .sort((a, b) => a - b)
      .map((uid) => mb.byUid.get(uid))
      .filter((m): m is MemMessage => m !== undefined);
    if (sources.length === 0) return { uidValidity: dest.uidValidity, sourceUids: [], destUids: [] };
    if (!move) {
      const used = usage(this.u);
      checkQuota(this.u.quota, used.bytes, used.count, sources.reduce((n, m) => n + m.data.length, 0), sources.length);
    }
    const now = new Date();
    const destUids = insert(
      dest,
      sources.map((m) => ({
        flags: [...m.flags],
        data: m.data,
        internalDate: m.internalDate,
        saveDate: now,
        emailId: m.emailId,
        threadId: m.threadId,
        structure: m.structure,
      })),
    );
    const sourceUids = sources.map((m) => m.uid);
    if (move) remove(mb, sourceUids);
    // Events only once the whole operation is done, so a listener never sees half a move.
    emit(this.u, { mailbox: dest.name, kind: 'append', modSeq: dest.highestModSeq, origin });
    if (move) emit(this.u, { mailbox: mb.name, kind: 'expunge', modSeq: mb.highestModSeq, origin });
    return { uidValidity: dest.uidValidity, sourceUids, destUids };
  }

  async changesSince(since: bigint): Promise<Changes> {
    const mb = this.live();
    const changed = mb.messages.filter((m) => m.modSeq > since).map(meta);
    const expunged: number[] = [];
    for (const [uid, modSeq] of mb.tombstones) if (modSeq > since) expunged.push(uid);
    expunged.sort((a, b) => a - b);
    return { changed, expunged, highestModSeq: mb.highestModSeq };
  }

  async close(): Promise<void> {
    // nothing to release: the state belongs to the user, not the handle
  }
}

/** One user's view onto the shared per-user state. */
class MemoryUserMailStore implements UserMailStore {
  readonly keepsStructures = true;
  private readonly own = new Set<(e: ChangeEvent) => void>();

  constructor(private readonly u: MemUser) {}

  get user(): string {
    return this.u.user;
  }

  private mailbox(name: string): MemMailbox {
    const mb = this.u.mailboxes.get(canonicalMailboxName(name));
    if (!mb) throw new StoreError('NONEXISTENT', `no mailbox ${name}`);
    return mb;
  }

  async listMailboxes(): Promise<MailboxInfo[]> {
    return [...this.u.mailboxes.values()].map((mb) => {
      const info: MailboxInfo = { name: mb.name, subscribed: this.u.subscriptions.has(mb.name), mailboxId: mb.mailboxId };
      if (mb.specialUse) info.specialUse = mb.specialUse;
      return info;
    });
  }

  async createMailbox(name: string, specialUse?: SpecialUse): Promise<void> {
    const canon = canonicalMailboxName(name);
    if (this.u.mailboxes.has(canon)) throw new StoreError('ALREADYEXISTS', `mailbox ${canon} already exists`);
    for (const parent of parentsOf(canon)) if (!this.u.mailboxes.has(parent)) newMailbox(this.u, parent);
    newMailbox(this.u, canon, specialUse);
    emit(this.u, { mailbox: canon, kind: 'mailboxes', modSeq: 1n });
  }

  async deleteMailbox(name: string): Promise<void> {
    const canon = canonicalMailboxName(name);
    if (isInbox(canon)) throw new StoreError('CANNOT', 'INBOX cannot be deleted');
    const mb = this.mailbox(canon);
    mb.deleted = true;
    this.u.mailboxes.delete(canon);
    emit(this.u, { mailbox: canon, kind: 'mailboxes', modSeq: mb.highestModSeq });
  }

  async renameMailbox(from: string, to: string): Promise<void> {
    const src = canonicalMailboxName(from);
    const dst = canonicalMailboxName(to);
    const mb = this.mailbox(src);
    if (this.u.mailboxes.has(dst)) throw new StoreError('ALREADYEXISTS', `mailbox ${dst} already exists`);
    if (isInbox(src)) {
      // RFC 3501 6.3.5: renaming INBOX moves its messages into a new mailbox and leaves INBOX empty;
      // INBOX's children stay where they are.
      for (const parent of parentsOf(dst)) if (!this.u.mailboxes.has(parent)) newMailbox(this.u, parent);
      const dest = newMailbox(this.u, dst);
      const now = new Date();
      insert(
        dest,
        mb.messages.map((m) => ({ ...m, flags: [...m.flags], saveDate: now, meta: undefined })),
      );
      remove(
        mb,
        mb.messages.map((m) => m.uid),
      );
      emit(this.u, { mailbox: 'INBOX', kind: 'expunge', modSeq: mb.highestModSeq });
      emit(this.u, { mailbox: dst, kind: 'mailboxes', modSeq: dest.highestModSeq });
      return;
    }
    if (isSelfOrDescendant(dst, src)) throw new StoreError('CANNOT', `cannot rename ${src} into itself`);
    const moving = [...this.u.mailboxes.values()].filter((m) => isSelfOrDescendant(m.name, src));
    for (const m of moving) {
      const newName = dst + m.name.slice(src.length);
      if (this.u.mailboxes.has(newName)) throw new StoreError('ALREADYEXISTS', `mailbox ${newName} already exists`);
    }
    for (const m of moving) this.u.mailboxes.delete(m.name);
    for (const m of moving) {
      const oldName = m.name;
      m.name = dst + oldName.slice(src.length);
      this.u.mailboxes.set(m.name, m);
      if (this.u.subscriptions.delete(oldName)) this.u.subscriptions.add(m.name);
    }
    for (const parent of parentsOf(dst)) if (!this.u.mailboxes.has(parent)) newMailbox(this.u, parent);
    emit(this.u, { mailbox: dst, kind: 'mailboxes', modSeq: mb.highestModSeq });
  }

  async setSubscribed(name: string, subscribed: boolean): Promise<void> {
    const canon = canonicalMailboxName(name);
    if (subscribed) this.u.subscriptions.add(canon);
    else this.u.subscriptions.delete(canon);
    emit(this.u, { mailbox: canon, kind: 'mailboxes', modSeq: this.u.mailboxes.get(canon)?.highestModSeq ?? 0n });
  }

  async status(name: string): Promise<MailboxStatus> {
    return statusOf(this.mailbox(name));
  }

  async open(name: string): Promise<MailboxHandle> {
    return new MemoryMailboxHandle(this.u, this.mailbox(name));
  }

  async append(mailbox: string, messages: NewMessage[], origin?: string): Promise<UidMapping> {
    const mb = this.mailbox(mailbox);
    // Validate everything before touching the mailbox: all or none.
    const now = new Date();
    const items = messages.map((m) => {
      const id = newObjectId('');
      return {
        flags: canonicalFlags(m.flags),
        data: Buffer.from(m.data),
        internalDate: m.internalDate ? new Date(m.internalDate.getTime()) : now,
        saveDate: now,
        emailId: 'M' + id,
        threadId: 'T' + id,
        structure: m.structure ? Buffer.from(m.structure) : undefined,
      };
    });
    const used = usage(this.u);
    checkQuota(this.u.quota, used.bytes, used.count, items.reduce((n, m) => n + m.data.length, 0), items.length);
    const destUids = insert(mb, items);
    if (destUids.length) emit(this.u, { mailbox: mb.name, kind: 'append', modSeq: mb.highestModSeq, origin });
    return { uidValidity: mb.uidValidity, sourceUids: [], destUids };
  }

  async quota(): Promise<QuotaInfo> {
    const used = usage(this.u);
    const q: QuotaInfo = { root: '', storageUsedKiB: toKiB(used.bytes), messagesUsed: used.count };
    const limits = this.u.quota;
    if (limits?.storageLimitKiB !== undefined) q.storageLimitKiB = limits.storageLimitKiB;
    if (limits?.messagesLimit !== undefined) q.messagesLimit = limits.messagesLimit;
    return q;
  }

  watch(listener: (event: ChangeEvent) => void): () => void {
    // Wrap so that the same function registered twice gets two independent subscriptions.
    const wrapped = (e: ChangeEvent): void => listener(e);
    this.u.listeners.add(wrapped);
    this.own.add(wrapped);
    return () => {
      this.u.listeners.delete(wrapped);
      this.own.delete(wrapped);
    };
  }

  async close(): Promise<void> {
    for (const l of this.own) this.u.listeners.delete(l);
    this.own.clear();
  }
}

/** The in-memory MailStore. */
export class MemoryStore implements MailStore {
  readonly kind = 'memory';
  readonly users: MemoryUserDb;
  /** Quota limits enforced on append and copy, if any. */
  readonly quotaLimits: QuotaLimits | undefined;
  private readonly state = new Map<string, MemUser>();

  constructor(opts: MemoryStoreOptions = {}) {
    this.users = new MemoryUserDb(opts.scryptLn);
    this.quotaLimits = opts.quota;
  }

  /** Open one user's mail, creating it (with INBOX) on first use. */
  async openUser(user: string): Promise<UserMailStore> {
    if (user.length === 0) throw new StoreError('CANNOT', 'user name must not be empty');
    let u = this.state.get(user);
    if (!u) {
      u = { user, mailboxes: new Map(), subscriptions: new Set(), listeners: new Set(), lastUidValidity: 0, quota: this.quotaLimits };
      newMailbox(u, 'INBOX');
      this.state.set(user, u);
    }
    return new MemoryUserMailStore(u);
  }

  /** Drop every listener; the data stays readable until the object is dropped. */
  async close(): Promise<void> {
    for (const u of this.state.values()) u.listeners.clear();
  }

}
