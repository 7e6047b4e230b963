/**
 * Where transferred messages go: a MailStore mailbox (appended in batches, each batch all or none)
 * or an mbox file (appended, fsynced). Both record every batch in the journal before and after, and
 * both settle a batch an earlier run left half done: a store batch by finding its messages in the
 * mailbox (by content hash, above the UIDNEXT it started from), a file batch by truncating it back.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StoreError, type NewMessage, type UserMailStore } from '../contract.js';
import { toCrlf } from '../maildir/filename.js';
import type { BeginRecord, Journal } from './journal.js';
import { formatMboxMessage } from './mbox.js';

/** One message on its way, with the journal key that names it. */
export interface Item {
  key: string;
  message: NewMessage;
}

/** Outcome of writing a batch. */
export interface BatchResult {
  stored: number;
  failed: Array<{ key: string; error: string }>;
}

/** Content hash that does not care whether a store serves bare LFs as CRLF. */
export function messageHash(data: Buffer): string {
  return createHash('sha256').update(toCrlf(data)).digest('hex').slice(0, 32);
}

/** Appends batches to mailboxes of one user's store. */
export class StoreSink {
  private readonly known = new Set<string>();

  constructor(
    private readonly user: UserMailStore,
    private readonly journal: Journal,
  ) {}

  /** Make sure a mailbox exists (created with its parents when missing). */
  async ensureMailbox(name: string): Promise<void> {
    if (this.known.has(name)) return;
    try {
      await this.user.createMailbox(name);
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'ALREADYEXISTS')) throw err;
    }
    this.known.add(name);
  }

  /** Settle a batch an interrupted run began: keys whose message is already in the mailbox are done. */
  async recover(p: BeginRecord): Promise<void> {
    const found: string[] = [];
    if (p.uidNext !== undefined && p.hashes) {
      let handle;
      try {
        handle = await this.user.open(p.target);
      } catch (err) {
        if (err instanceof StoreError && err.code === 'NONEXISTENT') {
          await this.journal.end([]);
          return;
        }
        throw err;
      }
      try {
        const candidates = (await handle.list()).filter((m) => m.uid >= (p.uidNext as number));
        const hashes = new Map<string, number[]>();
        for (const m of candidates) {
          const data = await handle.read(m.uid);
          if (!data) continue;
          const h = messageHash(data);
          hashes.set(h, [...(hashes.get(h) ?? []), m.uid]);
        }
        p.keys.forEach((k, i) => {
          const uids = hashes.get(p.hashes?.[i] ?? '');
          if (uids && uids.length > 0) {
            uids.shift();
            found.push(k);
          }
        });
      } finally {
        await handle.close();
      }
    }
    await this.journal.end(found, { recovered: true });
  }

  /** Append items to a mailbox as one batch; on a refusal, message by message so one bad message fails alone. */
  async write(mailbox: string, items: Item[]): Promise<BatchResult> {
    if (items.length === 0) return { stored: 0, failed: [] };
    await this.ensureMailbox(mailbox);
    const st = await this.user.status(mailbox);
    await this.journal.begin({ target: mailbox, keys: items.map((i) => i.key), uidNext: st.uidNext, hashes: items.map((i) => messageHash(i.message.data)) });
    try {
      await this.user.append(mailbox, items.map((i) => i.message));
      await this.journal.end(items.map((i) => i.key));
      return { stored: items.length, failed: [] };
    } catch (err) {
      // A refusal of the content (append is all or none, so nothing was stored) is retried one by one
      // so that one bad message fails alone; anything else stops the transfer and the next run recovers.
      const refusal = err instanceof StoreError && ['CANNOT', 'TOOBIG', 'LIMIT'].includes(err.code);
      if (!refusal) throw err;
      await this.journal.end([]);
      if (items.length === 1) return { stored: 0, failed: [{ key: (items[0] as Item).key, error: (err as Error).message }] };
    }
    const result: BatchResult = { stored: 0, failed: [] };
    for (const item of items) {
      const r = await this.write(mailbox, [item]);
      result.stored += r.stored;
      result.failed.push(...r.failed);
    }
    return result;
  }
}

/** Appends batches to mbox files. */
export class MboxSink {
  constructor(private readonly journal: Journal) {}

  /** Settle a batch an interrupted run began: cut the file back to where the batch started. */
  async recover(p: BeginRecord): Promise<void> {
    if (p.size !== undefined) {
      const st = await fs.stat(p.target).catch(() => null);
      if (st && st.size > p.size) await fs.truncate(p.target, p.size);
    }
    await this.journal.end([], { recovered: true });
  }

  /** Append items to an mbox file (created with its directory when missing). */
  async write(file: string, items: Item[]): Promise<BatchResult> {
    if (items.length === 0) return { stored: 0, failed: [] };
    await fs.mkdir(path.dirname(file), { recursive: true });
    const fh = await fs.open(file, 'a', 0o600);
    try {
      const size = (await fh.stat()).size;
      await this.journal.begin({ target: file, keys: items.map((i) => i.key), size });
      const parts = items.map((i) => formatMboxMessage(i.message.data, i.message.flags ?? [], i.message.internalDate ?? new Date()));
      await fh.write(Buffer.concat(parts));
      await fh.sync();
      await this.journal.end(items.map((i) => i.key), { size: size + parts.reduce((n, p) => n + p.length, 0) });
      return { stored: items.length, failed: [] };
    } finally {
      await fh.close();
    }
  }
}
