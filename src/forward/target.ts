/**
 * The target side of a forward: the target Repository with two forward rules added.
 *   - Messages are appended one at a time, so a message the target refuses for itself (too big,
 *     over a size limit) is reported and skipped while the others go on. Refusals that concern the
 *     whole account (quota full, connection lost, login) still fail the batch: those are retried.
 *   - A refused message comes back from append() without a UID, so the sync engine records no
 *     forwarded copy and no Message-ID for it.
 *   - Two messages with the same Message-ID in one batch (mail delivered twice) are appended once;
 *     the second gets the first one's UID, so both are recorded as forwarded by that one copy.
 */
import type { Logger } from '../log/logger.js';
import { contentHash, messageIdOf } from '../sync/message.js';
import {
  RepositoryError,
  type AppendItem,
  type AppendResult,
  type FetchedMessage,
  type FolderChanges,
  type FolderInfo,
  type FolderSnapshot,
  type FolderStatus,
  type RemoveMode,
  type Repository,
  type RepositoryCapabilities,
  type SnapshotOptions,
} from '../sync/repository.js';

/** A message the target refused. */
export interface Refusal {
  /** Message-ID, or null. */
  messageId: string | null;
  /** SHA-256 of the bytes (the applier's identity for mail without Message-ID). */
  hash: string;
  size: number;
  reason: string;
}

/** Response codes by which a server refuses one message rather than the account (RFC 5530, RFC 7889). */
const PER_MESSAGE_CODES = new Set(['TOOBIG', 'LIMIT', 'PARSE', 'CANNOT', 'UNKNOWN-CTE']);

/** Is this APPEND error about the message itself (not the connection, login or a full quota)? */
export function isPerMessageRefusal(err: unknown): boolean {
  if (!(err instanceof RepositoryError)) return false;
  if (err.kind === 'toobig') return true;
  if (err.kind === 'connect' || err.kind === 'auth' || err.kind === 'tls' || err.kind === 'config' || err.kind === 'nonexistent') return false;
  const cause = err.cause as { serverResponseCode?: string; responseStatus?: string } | undefined;
  const code = (cause?.serverResponseCode ?? '').toUpperCase();
  if (PER_MESSAGE_CODES.has(code)) return true;
  // OVERQUOTA concerns every later message too: that waits and retries instead.
  if (code === 'OVERQUOTA') return false;
  // A plain tagged NO (no code) for one APPEND is the message's fault on most servers.
  return cause?.responseStatus === 'NO' && code === '';
}

/** Wraps the target repository for a forward (see the file comment). */
export class ForwardTarget implements Repository {
  readonly label: string;
  /** Refusals since the last takeRefusals(). */
  private refusals: Refusal[] = [];

  constructor(
    readonly inner: Repository,
    private readonly log: Logger,
  ) {
    this.label = inner.label;
  }

  /** The messages refused since the last call. */
  takeRefusals(): Refusal[] {
    return this.refusals.splice(0);
  }

  /** One APPEND per message; a per-message refusal yields a null UID and a Refusal. */
  async append(folder: string, items: AppendItem[]): Promise<AppendResult> {
    const uids: Array<number | null> = [];
    let uidValidity: number | undefined;
    const appended = new Map<string, number | null>();
    for (const it of items) {
      const messageId = messageIdOf(it.data);
      const key = messageId ?? `sha256:${contentHash(it.data)}`;
      if (appended.has(key)) {
        uids.push(appended.get(key)!);
        continue;
      }
      try {
        const r = await this.inner.append(folder, [it]);
        uids.push(r.uids[0] ?? null);
        appended.set(key, r.uids[0] ?? null);
        if (r.uidValidity !== undefined) uidValidity = r.uidValidity;
      } catch (err) {
        if (!isPerMessageRefusal(err)) throw err;
        const refusal: Refusal = { messageId, hash: contentHash(it.data), size: it.data.length, reason: (err as Error).message };
        this.refusals.push(refusal);
        this.log.debug({ messageId: refusal.messageId, size: refusal.size }, 'append refused');
        uids.push(null);
      }
    }
    const res: AppendResult = { uids };
    if (uidValidity !== undefined) res.uidValidity = uidValidity;
    return res;
  }

  open(): Promise<void> {
    return this.inner.open();
  }
  capabilities(): RepositoryCapabilities {
    return this.inner.capabilities();
  }
  listFolders(): Promise<FolderInfo[]> {
    return this.inner.listFolders();
  }
  createFolder(name: string): Promise<void> {
    return this.inner.createFolder(name);
  }
  status(folder: string): Promise<FolderStatus> {
    return this.inner.status(folder);
  }
  snapshot(folder: string, opts?: SnapshotOptions): Promise<FolderSnapshot> {
    return this.inner.snapshot(folder, opts);
  }
  changesSince(folder: string, modSeq: bigint, current?: FolderStatus): Promise<FolderChanges | null> {
    return this.inner.changesSince(folder, modSeq, current);
  }
  uids(folder: string): Promise<number[]> {
    return this.inner.uids(folder);
  }
  messageIds(folder: string, uids: number[]): Promise<Map<number, { messageId: string | null; size: number }>> {
    return this.inner.messageIds(folder, uids);
  }
  fetch(folder: string, uids: number[], onMessage: (m: FetchedMessage) => Promise<void> | void): Promise<void> {
    return this.inner.fetch(folder, uids, onMessage);
  }
  updateFlags(folder: string, uids: number[], action: 'add' | 'remove' | 'set', flags: string[]): Promise<void> {
    return this.inner.updateFlags(folder, uids, action, flags);
  }
  remove(folder: string, uids: number[], mode: RemoveMode): Promise<void> {
    return this.inner.remove(folder, uids, mode);
  }
  searchMessageId(folder: string, messageId: string): Promise<number[]> {
    return this.inner.searchMessageId(folder, messageId);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
