/**
 * Small file-system helpers for the Maildir store: durable writes (fsync file and directory),
 * ownership of what we create when running as root, and errno tests.
 */
import { closeSync, fchownSync, fsync, futimesSync, openSync, promises as fs, constants as fsc, writeSync } from 'node:fs';
import path from 'node:path';

/** uid/gid that files we create must belong to (set when running as root, so the mail owner can modify them). */
export interface Owner {
  uid: number;
  gid: number;
}

/** True when err is a Node system error with the given code. */
export function isErr(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

/** Give a path we created to the mail owner (no-op when owner is undefined). */
export async function chownTo(p: string, owner: Owner | undefined): Promise<void> {
  if (!owner) return;
  await fs.lchown(p, owner.uid, owner.gid);
}

/** fsync a directory so a rename or unlink inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    await fh.sync();
  } catch (err) {
    // Some file systems refuse fsync on directories; the rename itself is still atomic there.
    if (!isErr(err, 'EINVAL', 'ENOTSUP', 'EISDIR', 'EBADF')) throw err;
  } finally {
    await fh?.close();
  }
}

/** Create a directory (mode 0700) and give it to the owner; returns false when it already existed. */
export async function mkdirOwned(dir: string, owner: Owner | undefined): Promise<boolean> {
  try {
    await fs.mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if (isErr(err, 'EEXIST')) return false;
    throw err;
  }
  await chownTo(dir, owner);
  return true;
}

/** mkdir -p with ownership for each level created. */
export async function mkdirpOwned(dir: string, owner: Owner | undefined): Promise<void> {
  try {
    await fs.mkdir(dir, { mode: 0o700 });
    await chownTo(dir, owner);
  } catch (err) {
    if (isErr(err, 'EEXIST')) return;
    if (!isErr(err, 'ENOENT')) throw err;
    await mkdirpOwned(path.dirname(dir), owner);
    await mkdirOwned(dir, owner);
  }
}

/**
 * Write a new file that must not exist yet (O_EXCL), fsync it, optionally set its mtime.
 * On failure the partial file is removed.
 */
export async function writeNewFile(file: string, data: Buffer | string, opts: { owner?: Owner; mtime?: Date } = {}): Promise<void> {
  const fh = await fs.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  try {
    await fh.writeFile(data);
    if (opts.owner) await fh.chown(opts.owner.uid, opts.owner.gid);
    if (opts.mtime) await fh.utimes(opts.mtime, opts.mtime);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.unlink(file).catch(() => undefined);
    throw err;
  }
  await fh.close();
}

/**
 * writeNewFile for a small file: open, write and set the times without thread-pool round trips
 * (each costs more than these calls on a page-cache write), and only the fsync in the pool. For
 * batches (APPEND of many messages) this keeps the pool's few threads for the fsyncs.
 */
export async function writeSmallNewFile(file: string, data: Buffer, opts: { owner?: Owner; mtime?: Date } = {}): Promise<void> {
  const fd = openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  try {
    for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
    if (opts.owner) fchownSync(fd, opts.owner.uid, opts.owner.gid);
    if (opts.mtime) futimesSync(fd, opts.mtime, opts.mtime);
    await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
  } catch (err) {
    closeSync(fd);
    await fs.unlink(file).catch(() => undefined);
    throw err;
  }
  closeSync(fd);
}

/** Replace a file atomically: write `file.<unique>.tmp`, fsync, rename over, fsync the directory. */
export async function replaceFile(file: string, data: Buffer | string, owner: Owner | undefined): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  await writeNewFile(tmp, data, { owner });
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

/** Read a file as text, or null when it does not exist. */
export async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if (isErr(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}

/** Who should own files created under `dir`: its owner, when we are root and it belongs to someone else. */
export async function ownerFor(dir: string): Promise<Owner | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  let probe = path.resolve(dir);
  for (;;) {
    try {
      const st = await fs.stat(probe);
      return st.uid === 0 && st.gid === 0 ? undefined : { uid: st.uid, gid: st.gid };
    } catch (err) {
      if (!isErr(err, 'ENOENT')) throw err;
      const parent = path.dirname(probe);
      if (parent === probe) return undefined;
      probe = parent;
    }
  }
}
