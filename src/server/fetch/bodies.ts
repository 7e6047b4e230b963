/**
 * Batched message reads for commands that walk many messages in UID order (FETCH BODY[] of 1:*,
 * SEARCH TEXT): bytes come from MailboxHandle.readBatch a chunk at a time when the store has it
 * (one SQLite statement per chunk instead of one per message), else from read() per message.
 */
import type { MailboxHandle } from '../../store/contract.js';

/** UIDs per batch: bounds the bytes held at once (a few MB for ordinary mail). */
const BATCH = 128;

/** Reads the bytes of `uids` (ascending), ahead of use, in batches. */
export class BodyReader {
  private batch = new Map<number, Buffer>();
  /** Index in `uids` just past the loaded batch. */
  private next = 0;

  constructor(
    private readonly handle: MailboxHandle,
    /** UIDs the caller will ask for, ascending; a UID outside this list is read alone. */
    private readonly uids: readonly number[],
  ) {}

  /** The bytes of a message, or null when it is gone. Call in ascending UID order. */
  async read(uid: number): Promise<Buffer | null> {
    const hit = this.batch.get(uid);
    if (hit !== undefined) {
      this.batch.delete(uid);
      return hit;
    }
    if (!this.handle.readBatch) return this.handle.read(uid);
    // Skip to this UID's place in the list; load the next chunk from there.
    while (this.next < this.uids.length && this.uids[this.next]! < uid) this.next++;
    if (this.next >= this.uids.length || this.uids[this.next] !== uid) return this.handle.read(uid);
    const chunk = this.uids.slice(this.next, this.next + BATCH);
    this.next += chunk.length;
    this.batch = await this.handle.readBatch(chunk);
    const got = this.batch.get(uid);
    this.batch.delete(uid);
    return got ?? null;
  }
}
