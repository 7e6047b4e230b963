/**
 * The state file that makes a transfer resumable: JSON lines, appended and fsynced. The first line
 * names the transfer; then each batch writes a `begin` line before it touches the destination and
 * an `end` line after. Keys in `end` lines are done; a `begin` without its `end` is a batch a crash
 * interrupted, which the caller checks against the destination before going on.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isErr } from '../maildir/fsutil.js';

/** What identifies a transfer (a state file of another transfer is refused). */
export interface JournalHeader {
  kind: 'import' | 'export';
  format: 'mbox' | 'maildir';
  source: string;
  dest: string;
}

/** A batch that was begun: where it went and what it held. */
export interface BeginRecord {
  /** Destination mailbox (store destinations) or file (mbox destinations). */
  target: string;
  keys: string[];
  /** UIDNEXT of the destination mailbox before the append. */
  uidNext?: number;
  /** Hashes of the messages (same order as keys), to recognise them in the destination. */
  hashes?: string[];
  /** Size of the destination file before the batch (mbox destinations). */
  size?: number;
}

/** Thrown when the state file belongs to another transfer or is unreadable. */
export class JournalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JournalError';
  }
}

/** A transfer's state file, or a no-op journal when no file is wanted. */
export class Journal {
  /** Keys done in earlier runs (and this one). */
  readonly done = new Set<string>();
  /** The interrupted batch of an earlier run, if any. */
  pending: BeginRecord | null = null;

  private constructor(private readonly file: string | null) {}

  /** Open (or start) the state file; `restart` throws away what it recorded. */
  static async open(file: string | undefined, header: JournalHeader, restart = false): Promise<Journal> {
    const j = new Journal(file ?? null);
    if (!file) return j;
    if (restart) await fs.rm(file, { force: true });
    let text: string | null = null;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if (!isErr(err, 'ENOENT')) throw err;
    }
    if (text === null || text.trim() === '') {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await j.write({ transfer: header });
      return j;
    }
    const lines = text.split('\n');
    let first = true;
    for (const line of lines) {
      if (line.trim() === '') continue;
      let rec: { transfer?: JournalHeader; begin?: BeginRecord; end?: { keys: string[] } };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        // A torn last line (crash while appending): everything before it stands.
        break;
      }
      if (first) {
        first = false;
        const h = rec.transfer;
        if (!h || h.kind !== header.kind || h.format !== header.format || h.source !== header.source || h.dest !== header.dest) {
          throw new JournalError(`${file} records another transfer (${JSON.stringify(h)}); use another state file or restart`);
        }
        continue;
      }
      if (rec.begin) j.pending = rec.begin;
      if (rec.end) {
        for (const k of rec.end.keys) j.done.add(k);
        j.pending = null;
      }
    }
    return j;
  }

  private async write(rec: unknown): Promise<void> {
    if (!this.file) return;
    const fh = await fs.open(this.file, 'a', 0o600);
    try {
      await fh.write(JSON.stringify(rec) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Record the start of a batch (before the destination changes). */
  async begin(rec: BeginRecord): Promise<void> {
    this.pending = rec;
    await this.write({ begin: rec });
  }

  /** Record keys as done (after the destination changed durably). */
  async end(keys: string[], extra: Record<string, unknown> = {}): Promise<void> {
    for (const k of keys) this.done.add(k);
    this.pending = null;
    await this.write({ end: { keys, ...extra } });
  }
}
