/**
 * Import and export between any MailStore and mbox (mboxrd) files or Maildirs. Both are resumable
 * through a state file (see journal.ts), report progress, and end with a summary whose counts add
 * up: every message read is stored, was stored by an earlier run, or failed (with the reason).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StoreError, type NewMessage, type UserMailStore } from '../contract.js';
import { canonicalMailboxName } from '../common.js';
import { servedBytes } from '../maildir/filename.js';
import { MaildirStore } from '../maildir/store.js';
import { Journal } from './journal.js';
import { listSourceFolders, listSourceMessages } from './maildir-source.js';
import { readMbox } from './mbox.js';
import { MboxSink, StoreSink, type BatchResult, type Item } from './sinks.js';

/** Formats a transfer reads or writes. */
export type TransferFormat = 'mbox' | 'maildir';

/** Where a transfer is. */
export interface TransferProgress {
  /** Mailbox being transferred (the destination name on import, the source name on export). */
  mailbox: string;
  /** Messages read so far, including those an earlier run already transferred. */
  messages: number;
  /** Total messages, when known up front (Maildir sources, store sources). */
  totalMessages?: number;
  /** Bytes read so far. */
  bytes: number;
  /** Total bytes, when known up front (mbox sources). */
  totalBytes?: number;
}

/** What a transfer did. read = stored + alreadyDone + failed. */
export interface TransferSummary {
  read: number;
  stored: number;
  /** Messages an earlier (interrupted) run had already transferred. */
  alreadyDone: number;
  failed: number;
  bytes: number;
  /** Destination mailboxes (import) or source mailboxes (export) touched. */
  mailboxes: string[];
  errors: Array<{ key: string; error: string }>;
}

/** Options shared by import and export. */
interface CommonOptions {
  format: TransferFormat;
  /** The user's store on the imapkit side. */
  user: UserMailStore;
  /** Import: the destination mailbox (mbox file) or the parent of the imported folders. Export: the one mailbox to export. */
  mailbox?: string;
  /** State file for resuming; without one the transfer is not resumable. */
  stateFile?: string;
  /** Forget the state file's record and start over. */
  restart?: boolean;
  /** Messages per append batch (default 100). */
  batchSize?: number;
  /** Bytes per append batch (default 16 MiB). */
  batchBytes?: number;
  onProgress?: (p: TransferProgress) => void;
}

/** Options of importMessages. */
export interface ImportOptions extends CommonOptions {
  /** An mbox file, a directory of mbox files, or a Maildir (Maildir++ or a directory of Maildirs). */
  source: string;
}

/** Options of exportMessages. */
export interface ExportOptions extends CommonOptions {
  /** mbox: a file (with `mailbox`) or a directory of NAME.mbox files; maildir: the Maildir root to write. */
  dest: string;
}

function emptySummary(): TransferSummary {
  return { read: 0, stored: 0, alreadyDone: 0, failed: 0, bytes: 0, mailboxes: [], errors: [] };
}

/** Collects items and writes them in batches. */
class Batcher {
  private items: Item[] = [];
  private bytes = 0;
  private target = '';

  constructor(
    private readonly write: (target: string, items: Item[]) => Promise<BatchResult>,
    private readonly summary: TransferSummary,
    private readonly maxItems: number,
    private readonly maxBytes: number,
  ) {}

  async add(target: string, item: Item): Promise<void> {
    if (target !== this.target) await this.flush();
    this.target = target;
    this.items.push(item);
    this.bytes += item.message.data.length;
    if (this.items.length >= this.maxItems || this.bytes >= this.maxBytes) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    this.bytes = 0;
    const r = await this.write(this.target, items);
    this.summary.stored += r.stored;
    this.summary.failed += r.failed.length;
    this.summary.errors.push(...r.failed);
  }
}

function joinName(parent: string | undefined, child: string): string {
  if (!parent) return child === '' ? 'INBOX' : child;
  return child === '' ? parent : `${parent}/${child}`;
}

async function mboxFiles(source: string): Promise<Array<{ file: string; rel: string; size: number }>> {
  const st = await fs.stat(source);
  if (!st.isDirectory()) return [{ file: source, rel: '', size: st.size }];
  const out: Array<{ file: string; rel: string; size: number }> = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && !/\.(msf|dat|idx|lock|state)$/i.test(e.name)) {
        // Only files that start like an mbox.
        const fh = await fs.open(full, 'r');
        const head = Buffer.alloc(5);
        await fh.read(head, 0, 5, 0);
        await fh.close();
        if (head.toString('latin1') !== 'From ') continue;
        out.push({ file: full, rel: path.relative(source, full), size: (await fs.stat(full)).size });
      }
    }
  };
  await walk(source);
  return out;
}

/** The mailbox name for an mbox file inside an imported directory: its path without ".mbox". */
function mailboxOfMboxFile(rel: string): string {
  return rel
    .split(path.sep)
    .map((l) => l.replace(/\.(mbox|mbx)$/i, ''))
    .join('/');
}

/** Import mbox files or a Maildir into a user's store. */
export async function importMessages(opts: ImportOptions): Promise<TransferSummary> {
  const source = path.resolve(opts.source);
  const journal = await Journal.open(opts.stateFile, { kind: 'import', format: opts.format, source, dest: `${opts.user.user}:${opts.mailbox ?? ''}` }, opts.restart);
  const sink = new StoreSink(opts.user, journal);
  if (journal.pending) await sink.recover(journal.pending);
  const summary = emptySummary();
  const batcher = new Batcher((t, items) => sink.write(t, items), summary, opts.batchSize ?? 100, opts.batchBytes ?? 16 << 20);
  const touched = new Set<string>();
  const progress: TransferProgress = { mailbox: '', messages: 0, bytes: 0 };
  const message = (data: Buffer, flags: string[], internalDate: Date | undefined): NewMessage => {
    // IMAP messages have CRLF line ends; an LF-only source (mbox, most Maildirs) is converted, anything else kept.
    const m: NewMessage = { data: servedBytes(data), flags };
    if (internalDate) m.internalDate = internalDate;
    return m;
  };
  if (opts.mailbox !== undefined) canonicalMailboxName(opts.mailbox);

  if (opts.format === 'mbox') {
    const files = await mboxFiles(source);
    if (files.length === 0) throw new StoreError('NONEXISTENT', `no mbox files in ${source}`);
    progress.totalBytes = files.reduce((n, f) => n + f.size, 0);
    let base = 0;
    for (const f of files) {
      const target = canonicalMailboxName(f.rel === '' ? (opts.mailbox ?? 'INBOX') : joinName(opts.mailbox, mailboxOfMboxFile(f.rel)));
      touched.add(target);
      progress.mailbox = target;
      for await (const m of readMbox(f.file)) {
        const key = `${f.rel}@${m.offset}`;
        summary.read++;
        summary.bytes += m.end - m.offset;
        progress.messages = summary.read;
        progress.bytes = base + m.end;
        if (journal.done.has(key)) summary.alreadyDone++;
        else await batcher.add(target, { key, message: message(m.data, m.flags, m.internalDate) });
        opts.onProgress?.({ ...progress });
      }
      base += f.size;
    }
  } else {
    const folders = await listSourceFolders(source);
    if (folders.length === 0) throw new StoreError('NONEXISTENT', `${source} is not a Maildir (no cur/ and new/ found)`);
    const lists = await Promise.all(folders.map((f) => listSourceMessages(f)));
    progress.totalMessages = lists.reduce((n, l) => n + l.length, 0);
    for (let i = 0; i < folders.length; i++) {
      const folder = folders[i]!;
      const target = canonicalMailboxName(joinName(opts.mailbox, folder.name));
      touched.add(target);
      progress.mailbox = target;
      await sink.ensureMailbox(target);
      for (const m of lists[i]!) {
        const key = `${folder.name}/${m.key}`;
        if (journal.done.has(key)) {
          summary.read++;
          summary.alreadyDone++;
          summary.bytes += m.size;
        } else {
          let data: Buffer;
          try {
            data = await fs.readFile(m.path);
          } catch (err) {
            // Moved (flag change) or deleted since we listed: look for it under its new name.
            const again = (await listSourceMessages(folder)).find((x) => x.key === m.key);
            if (!again) continue;
            data = await fs.readFile(again.path).catch(() => Promise.reject(err));
          }
          summary.read++;
          summary.bytes += data.length;
          await batcher.add(target, { key, message: message(data, m.flags, m.internalDate) });
        }
        progress.messages = summary.read;
        progress.bytes = summary.bytes;
        opts.onProgress?.({ ...progress });
      }
    }
  }
  await batcher.flush();
  summary.mailboxes = [...touched];
  return summary;
}

/** Export a user's mailboxes (or one) to mbox files or a Maildir. */
export async function exportMessages(opts: ExportOptions): Promise<TransferSummary> {
  const dest = path.resolve(opts.dest);
  const journal = await Journal.open(opts.stateFile, { kind: 'export', format: opts.format, source: `${opts.user.user}:${opts.mailbox ?? '*'}`, dest }, opts.restart);
  const names = opts.mailbox !== undefined ? [canonicalMailboxName(opts.mailbox)] : (await opts.user.listMailboxes()).map((b) => b.name).sort();
  const summary = emptySummary();
  let maildir: MaildirStore | undefined;
  let write: (target: string, items: Item[]) => Promise<BatchResult>;
  let targetOf: (name: string) => string;
  if (opts.format === 'mbox') {
    const sink = new MboxSink(journal);
    if (journal.pending) await sink.recover(journal.pending);
    write = (t, items) => sink.write(t, items);
    targetOf = (name) => (opts.mailbox !== undefined ? dest : path.join(dest, ...name.split('/')) + '.mbox');
  } else {
    // The destination is a Maildir Dovecot can serve; imapkit's cache is not left in it.
    maildir = new MaildirStore({ path: dest, cacheDir: 'MEMORY', rescanIntervalMs: 0 });
    const destUser = await maildir.openUser('export');
    const sink = new StoreSink(destUser, journal);
    if (journal.pending) await sink.recover(journal.pending);
    write = (t, items) => sink.write(t, items);
    targetOf = (name) => (opts.mailbox !== undefined ? 'INBOX' : name);
  }
  try {
    const batcher = new Batcher(write, summary, opts.batchSize ?? 100, opts.batchBytes ?? 16 << 20);
    const handles = [];
    let total = 0;
    for (const name of names) {
      const h = await opts.user.open(name);
      const list = await h.list();
      total += list.length;
      handles.push({ name, h, list });
    }
    const progress: TransferProgress = { mailbox: '', messages: 0, bytes: 0, totalMessages: total };
    for (const { name, h, list } of handles) {
      progress.mailbox = name;
      summary.mailboxes.push(name);
      try {
        for (const m of list) {
          const key = `${name}\t${h.uidValidity}\t${m.uid}`;
          if (journal.done.has(key)) {
            summary.read++;
            summary.alreadyDone++;
            summary.bytes += m.size;
          } else {
            const data = await h.read(m.uid);
            // Expunged while we exported: not read, not counted.
            if (data) {
              summary.read++;
              summary.bytes += data.length;
              await batcher.add(targetOf(name), { key, message: { data, flags: m.flags, internalDate: m.internalDate } });
            }
          }
          progress.messages = summary.read;
          progress.bytes = summary.bytes;
          opts.onProgress?.({ ...progress });
        }
        await batcher.flush();
      } finally {
        await h.close();
      }
    }
    await batcher.flush();
  } finally {
    await maildir?.close();
  }
  return summary;
}
