/**
 * Dovecot-compatible dot-locking (the scheme of Dovecot's lib/file-dotlock): `<file>.lock` holds
 * "<pid>:<hostname>" from the moment it exists, because it is written under a temporary name and
 * then link()ed into place (Dovecot's default way; O_EXCL would leave an empty lock behind a process
 * killed between create and write, which nobody could judge for 120 s). A lock is stale when its PID
 * is a dead process on this host, or when neither the lock nor the protected file changed for the
 * stale timeout (Dovecot: 120 s for dovecot-uidlist); an empty or foreign lock is judged by its PID
 * only once it is 2 s old. A holder may finish by renaming the lock file over the protected file
 * ("replace"), which also releases it.
 */
import { promises as fs, constants as fsc, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { StoreError } from '../contract.js';
import { chownTo, fsyncDir, isErr, type Owner } from './fsutil.js';

/** Dovecot's MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT and KEYWORDS_LOCK_STALE_TIMEOUT. */
export const DEFAULT_STALE_TIMEOUT_MS = 120_000;
/** Dovecot waits the stale timeout plus 2 s before giving up. */
export const DEFAULT_LOCK_TIMEOUT_MS = 122_000;
/** A lock without a readable PID is not judged before this age (another writer may still be writing it). */
const PID_CHECK_AGE_MS = 2_000;

/** Settings of one lock attempt. */
export interface DotlockOptions {
  staleTimeoutMs?: number;
  timeoutMs?: number;
  owner?: Owner;
}

const hostname = os.hostname();

// Locks held by this process, by lock path: two stores in one process must not both "own" a file
// whose PID is ours, so in-process holders queue here before touching the file system.
const held = new Map<string, Promise<void>>();

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !isErr(err, 'ESRCH');
  }
}

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if (isErr(err, 'ENOENT')) return null;
    throw err;
  }
}

/** "<pid>:<host>" of a lock file, or null when unreadable or not from this host. */
async function localPid(lockPath: string): Promise<number | null> {
  let text: string;
  try {
    text = await fs.readFile(lockPath, 'utf8');
  } catch {
    return null;
  }
  const m = /^(\d+):(.*?)\n?$/.exec(text);
  if (!m || m[2] !== hostname) return null;
  const pid = Number(m[1]);
  return pid > 0 ? pid : null;
}

/** A held dotlock. */
export class Dotlock {
  private released = false;

  private constructor(
    /** The protected file. */
    readonly file: string,
    readonly lockPath: string,
    private readonly fh: fs.FileHandle,
    private readonly ino: number,
    private readonly owner: Owner | undefined,
    private readonly releaseInProcess: () => void,
  ) {}

  /** Take the lock on `file`, waiting (and overriding stale locks) up to the timeout; StoreError INUSE on timeout. */
  static async acquire(file: string, opts: DotlockOptions = {}): Promise<Dotlock> {
    const lockPath = `${file}.lock`;
    // Queue behind in-process holders first.
    let releaseInProcess!: () => void;
    const mine = new Promise<void>((resolve) => (releaseInProcess = resolve));
    const prev = held.get(lockPath);
    const chained = (prev ?? Promise.resolve()).then(() => mine);
    held.set(lockPath, chained);
    const done = () => {
      releaseInProcess();
      if (held.get(lockPath) === chained) held.delete(lockPath);
    };
    if (prev) await prev;
    try {
      return await Dotlock.acquireFile(file, lockPath, opts, done);
    } catch (err) {
      done();
      throw err;
    }
  }

  private static async acquireFile(file: string, lockPath: string, opts: DotlockOptions, done: () => void): Promise<Dotlock> {
    const staleMs = opts.staleTimeoutMs ?? DEFAULT_STALE_TIMEOUT_MS;
    const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
    let wait = 2 + Math.random() * 5;
    // What we last saw of the lock and of the protected file; "no change for staleMs" means stale.
    let lockSig: string | null = null;
    let fileSig: string | null = null;
    let lastChange = 0;
    for (;;) {
      let fh: fs.FileHandle | undefined;
      const tmp = `${lockPath}.${hostname}.${process.pid}.${randomBytes(4).toString('hex')}`;
      try {
        await fs.writeFile(tmp, `${process.pid}:${hostname}`, { mode: 0o600, flag: 'wx' });
        let linked = false;
        try {
          await fs.link(tmp, lockPath);
          linked = true;
          fh = await fs.open(lockPath, fsc.O_RDWR);
        } catch (err) {
          // Linked but not opened: give the lock back rather than hold it unusable.
          if (linked) await fs.unlink(lockPath).catch(() => undefined);
          throw err;
        } finally {
          await fs.unlink(tmp).catch(() => undefined);
        }
      } catch (err) {
        if (isErr(err, 'ENOENT')) throw new StoreError('NONEXISTENT', `mailbox directory of ${path.basename(file)} is gone`);
        if (!isErr(err, 'EEXIST')) throw err;
      }
      if (fh) {
        try {
          await chownTo(lockPath, opts.owner);
          const st = await fh.stat();
          return new Dotlock(file, lockPath, fh, st.ino, opts.owner, done);
        } catch (err) {
          await fh.close().catch(() => undefined);
          await fs.unlink(lockPath).catch(() => undefined);
          throw err;
        }
      }
      // Someone holds it: stale?
      const now = Date.now();
      const st = await lstatOrNull(lockPath);
      if (st) {
        const sig = `${st.ino}/${st.mtimeMs}/${st.size}`;
        if (sig !== lockSig) {
          // First sight counts from the lock's own mtime (as Dovecot does); later changes from now.
          lastChange = Math.max(lastChange, lockSig === null ? Math.min(now, st.mtimeMs) : now);
          lockSig = sig;
        }
        if (now - lastChange > staleMs) {
          // A holder that keeps writing the protected file is alive even if it never touches the lock.
          const fst = await lstatOrNull(file);
          const fsig = fst ? `${fst.ino}/${fst.mtimeMs}/${fst.size}` : '-';
          if (fsig !== fileSig) {
            lastChange = Math.max(lastChange, fileSig === null ? Math.min(now, fst?.mtimeMs ?? 0) : now);
            fileSig = fsig;
          }
        }
        let stale = false;
        const pid = await localPid(lockPath);
        if (pid !== null ? pid === process.pid || !pidAlive(pid) : false) stale = true;
        else if (pid === null && now - st.mtimeMs >= PID_CHECK_AGE_MS) {
          // Unreadable or foreign content: a second look once it is old enough (it may have been mid-write).
          const later = await localPid(lockPath);
          if (later !== null && (later === process.pid || !pidAlive(later))) stale = true;
        }
        if (!stale && now - lastChange > staleMs) stale = true;
        if (stale) {
          // Only remove the very file we judged (it may have been replaced meanwhile).
          const again = await lstatOrNull(lockPath);
          if (again && again.ino === st.ino && again.mtimeMs === st.mtimeMs) {
            await fs.unlink(lockPath).catch(() => undefined);
            lockSig = null;
            fileSig = null;
            lastChange = 0;
            continue;
          }
        }
      }
      if (Date.now() >= deadline) throw new StoreError('INUSE', `${path.basename(file)} is locked by another process (${lockPath})`);
      await sleep(wait);
      wait = Math.min(wait * 1.5, 200);
    }
  }

  /** True while the lock file on disk is still the one we created (nobody overrode it as stale). */
  async stillOurs(): Promise<boolean> {
    const st = await lstatOrNull(this.lockPath);
    return st !== null && st.ino === this.ino;
  }

  /** Keep the lock fresh during long work, so others don't judge it stale. */
  async touch(): Promise<void> {
    const now = new Date();
    await fs.utimes(this.lockPath, now, now).catch(() => undefined);
  }

  /** Release the lock by deleting the lock file (only if it is still ours). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.fh.close();
      if (await this.stillOurs()) await fs.unlink(this.lockPath).catch(() => undefined);
    } finally {
      this.releaseInProcess();
    }
  }

  /** Write `data` as the new content of the protected file by renaming the lock over it; releases the lock. */
  async replace(data: Buffer | string, mtime?: Date): Promise<void> {
    if (this.released) throw new StoreError('SERVERBUG', 'dotlock already released');
    try {
      await this.fh.truncate(0);
      await this.fh.write(typeof data === 'string' ? Buffer.from(data) : data, 0, undefined, 0);
      if (this.owner) await this.fh.chown(this.owner.uid, this.owner.gid);
      if (mtime) await this.fh.utimes(mtime, mtime);
      await this.fh.sync();
      if (!(await this.stillOurs())) throw new StoreError('SERVERBUG', `lock ${this.lockPath} was overridden by another process`);
      await fs.rename(this.lockPath, this.file);
      await fsyncDir(path.dirname(this.file));
    } finally {
      this.released = true;
      await this.fh.close().catch(() => undefined);
      this.releaseInProcess();
    }
  }
}
