/**
 * Batched lookups of persisted structure answers (stored.ts) for FETCH: entries come from
 * MailboxHandle.structures a chunk of UIDs at a time, as BodyReader reads bodies, and answers the
 * server had to compute because the store had none (messages stored before the store kept them, or
 * by another server version) are written back with saveStructures in batches.
 */
import type { MailboxHandle } from '../../store/contract.js';
import { decodeAnswers, decodeLayout, encodeAnswers, type StructureAnswers } from './stored.js';
import type { SearchLayout } from '../search/layout.js';

/** UIDs per lookup (entries are about a kilobyte each). */
const BATCH = 256;
/** Entries written back per store call. */
const SAVE_BATCH = 512;

/** Looks up stored answers of `uids` (ascending), ahead of use, in batches. */
export class StructureReader {
  private batch = new Map<number, Buffer>();
  /** Index in `uids` just past the loaded batch. */
  private next = 0;
  private pending = new Map<number, Buffer>();

  constructor(
    private readonly handle: MailboxHandle,
    /** UIDs the caller may ask for, ascending. */
    private readonly uids: readonly number[],
  ) {}

  /** True when the store keeps structures at all. */
  get enabled(): boolean {
    return typeof this.handle.structures === 'function';
  }

  /** The stored answers of a message, or undefined (none stored, another version, or damaged). Ascending UID order. */
  async get(uid: number): Promise<StructureAnswers | undefined> {
    const blob = await this.blob(uid);
    return blob === undefined ? undefined : decodeAnswers(blob);
  }

  /** The stored search layout of a message, or undefined. Ascending UID order. */
  async layout(uid: number): Promise<SearchLayout | undefined> {
    const blob = await this.blob(uid);
    return blob === undefined ? undefined : decodeLayout(blob);
  }

  /** The stored entry of a message, from the batch (loaded ahead) or alone. */
  private async blob(uid: number): Promise<Buffer | undefined> {
    if (!this.handle.structures) return undefined;
    let blob = this.batch.get(uid);
    if (blob === undefined) {
      while (this.next < this.uids.length && this.uids[this.next]! < uid) this.next++;
      if (this.next >= this.uids.length || this.uids[this.next] !== uid) {
        blob = (await this.handle.structures([uid])).get(uid);
      } else {
        const chunk = this.uids.slice(this.next, this.next + BATCH);
        this.next += chunk.length;
        this.batch = await this.handle.structures(chunk);
        blob = this.batch.get(uid);
      }
    }
    this.batch.delete(uid);
    return blob;
  }

  /** Queues answers (and the layout) computed here for writing back to the store (when it can take them). */
  async computed(uid: number, answers: StructureAnswers, layout?: SearchLayout): Promise<void> {
    if (!this.handle.saveStructures) return;
    const blob = encodeAnswers(answers, layout);
    if (blob === undefined) return;
    this.pending.set(uid, blob);
    if (this.pending.size >= SAVE_BATCH) await this.flush();
  }

  /** Writes back what is queued. A failure is ignored: this is a cache, the next FETCH computes again. */
  async flush(): Promise<void> {
    if (this.pending.size === 0 || !this.handle.saveStructures) return;
    const entries = this.pending;
    this.pending = new Map();
    try {
      await this.handle.saveStructures(entries);
    } catch {
      // e.g. a read-only database file or a lock held too long by another process
    }
  }
}
