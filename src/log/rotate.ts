/**
 * A log file rotated by size: when the next line would pass maxSize the file is renamed with a
 * UTC timestamp, a new one is opened, and the old one is compressed in the background (zstd when
 * the binary exists, else gzip). Only maxFiles rotated files are kept.
 */
import { closeSync, createReadStream, createWriteStream, fstatSync, openSync, readdirSync, renameSync, unlinkSync, writeSync, existsSync, accessSync, constants } from 'node:fs';
import { spawn } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import path from 'node:path';

/** How rotated files are compressed. */
export type Compression = 'zstd' | 'gzip' | 'none';

/** Options of RotatingFile. */
export interface RotatingFileOptions {
  /** Rotate when the file would grow past this many bytes (default 10 MiB). */
  maxSize?: number;
  /** Rotated files kept (default 5; 0 keeps none). */
  maxFiles?: number;
  /** Default: zstd when found on PATH, else gzip. */
  compression?: Compression;
  /** Errors of background compression (default: written to stderr). */
  onError?: (err: Error) => void;
}

/** Parse a size such as 10M, 512k, 1G or a plain byte count. */
export function parseSize(text: string | number): number {
  if (typeof text === 'number') return text;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$/i.exec(text);
  if (!m) throw new Error(`not a size: ${JSON.stringify(text)} (examples: 10M, 512k, 1G)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Math.floor(Number(m[1]) * mult);
  if (n < 1) throw new Error(`size must be at least one byte: ${text}`);
  return n;
}

/** Is an executable named `bin` on PATH? */
export function onPath(bin: string, envPath = process.env.PATH ?? ''): boolean {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    try {
      accessSync(path.join(dir, bin), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

function stamp(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-${p(d.getUTCMilliseconds(), 3)}`;
}

/** Timestamp and collision number of a rotated file's suffix (`-10` sorts after `-9`). */
function rotationKey(suffix: string): [string, number] {
  const stampPart = suffix.slice(0, 19);
  const n = suffix.length > 19 ? Number(suffix.slice(20)) : 0;
  return [stampPart, n];
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A size-rotated, append-only log file. Writes are synchronous so a crash loses no line. */
export class RotatingFile {
  readonly file: string;
  private fd: number;
  private size: number;
  private readonly maxSize: number;
  private readonly maxFiles: number;
  private readonly compression: Compression;
  private readonly onError: (err: Error) => void;
  private queue: Promise<void> = Promise.resolve();
  private readonly rotatedRe: RegExp;

  constructor(file: string, opts: RotatingFileOptions = {}) {
    this.file = path.resolve(file);
    this.maxSize = opts.maxSize ?? 10 * 1024 * 1024;
    this.maxFiles = opts.maxFiles ?? 5;
    this.compression = opts.compression ?? (onPath('zstd') ? 'zstd' : 'gzip');
    this.onError = opts.onError ?? ((e) => process.stderr.write(`imapkit: log rotation: ${e.message}\n`));
    this.rotatedRe = new RegExp(`^${escapeRe(path.basename(this.file))}\\.(\\d{8}-\\d{6}-\\d{3}(?:-\\d+)?)(\\.zst|\\.gz)?$`);
    // Logs name accounts and addresses: readable by the owner only.
    this.fd = openSync(this.file, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
    // Rotated files left uncompressed by a crash mid-compression are finished now.
    for (const name of this.rotated()) if (!/\.(zst|gz)$/.test(name)) this.enqueueCompress(path.join(path.dirname(this.file), name));
  }

  /** Append one chunk (a log line), rotating first when it would pass the size limit. */
  write(chunk: string | Buffer): boolean {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (this.size > 0 && this.size + buf.length > this.maxSize) this.rotate();
    writeSync(this.fd, buf);
    this.size += buf.length;
    return true;
  }

  /** Rename the current file aside, start a new one, compress and prune in the background. */
  rotate(): void {
    closeSync(this.fd);
    // One timestamp for every candidate: re-reading the clock here could yield a later stamp with
    // a suffix, which would sort after the next rotation's plain name and misorder the files.
    const base = `${this.file}.${stamp(new Date())}`;
    let target = base;
    for (let i = 1; existsSync(target) || existsSync(`${target}.zst`) || existsSync(`${target}.gz`); i++) target = `${base}-${i}`;
    renameSync(this.file, target);
    this.fd = openSync(this.file, 'a', 0o600);
    this.size = 0;
    this.enqueueCompress(target);
  }

  /** Names (not paths) of rotated files, oldest first. */
  rotated(): string[] {
    return readdirSync(path.dirname(this.file))
      .filter((n) => this.rotatedRe.test(n))
      .sort((a, b) => {
        const [sa, na] = rotationKey(this.rotatedRe.exec(a)![1]!);
        const [sb, nb] = rotationKey(this.rotatedRe.exec(b)![1]!);
        return sa < sb ? -1 : sa > sb ? 1 : na - nb;
      });
  }

  /** Resolves once background compression and pruning are done (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue;
  }

  /** Wait for background work and close the file. */
  async close(): Promise<void> {
    await this.queue;
    closeSync(this.fd);
  }

  private enqueueCompress(file: string): void {
    // One compression at a time: rotation is rare, and this keeps pruning consistent.
    this.queue = this.queue
      .then(() => this.compress(file))
      .catch((e: Error) => this.onError(e))
      .then(() => this.prune())
      .catch((e: Error) => this.onError(e));
  }

  private async compress(file: string): Promise<void> {
    // Pruning may already have removed a file that waited here (several rotations in a burst).
    if (this.compression === 'none' || !existsSync(file)) return;
    if (this.compression === 'zstd' && (await runZstd(file))) return;
    await pipeline(createReadStream(file), createGzip(), createWriteStream(`${file}.gz`, { mode: 0o600 }));
    unlinkSync(file);
  }

  private prune(): void {
    const names = this.rotated();
    const extra = names.length - this.maxFiles;
    for (let i = 0; i < extra; i++) {
      try {
        unlinkSync(path.join(path.dirname(this.file), names[i]!));
      } catch {
        // already gone
      }
    }
  }
}

/** Compress with the zstd binary (removing the source); false when it is missing or failed. */
function runZstd(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('zstd', ['-q', '-f', '--rm', file, '-o', `${file}.zst`], { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}
