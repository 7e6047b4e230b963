/**
 * UIDVALIDITY values for new folders, shared with Dovecot through its files in the Maildir root:
 * `dovecot-uidvalidity` holds the last value given (8 hex digits) and an empty marker file
 * `dovecot-uidvalidity.<hex>` names it too. Taking the next value renames the marker from <v> to
 * <v+1>; the rename succeeds for exactly one process, so two writers never hand out one value twice.
 */
import { promises as fs, constants as fsc } from 'node:fs';
import path from 'node:path';
import { chownTo, isErr, type Owner } from './fsutil.js';

const RETRIES = 10;
let fallback = 0;

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function fallbackValue(): number {
  const now = Math.floor(Date.now() / 1000);
  fallback = fallback < now ? now : fallback + 1;
  return fallback;
}

async function writeValue(file: string, value: number, owner: Owner | undefined): Promise<void> {
  const fh = await fs.open(file, fsc.O_RDWR | fsc.O_CREAT, 0o600);
  try {
    await fh.write(hex8(value), 0);
    if (owner) await fh.chown(owner.uid, owner.gid);
  } finally {
    await fh.close();
  }
}

async function tryRename(file: string, start: number): Promise<number | null> {
  let v = start;
  for (let i = 0; i < RETRIES; i++) {
    const next = (v + 1) >>> 0 || 1;
    try {
      await fs.rename(`${file}.${hex8(v)}`, `${file}.${hex8(next)}`);
      return next;
    } catch (err) {
      if (!isErr(err, 'ENOENT')) return null;
      // Someone else took v+1 already: try from there.
      v = next;
    }
  }
  return null;
}

async function rescan(file: string, owner: Owner | undefined): Promise<number> {
  const dir = path.dirname(file);
  const prefix = path.basename(file) + '.';
  let max = 0;
  let min = Number.MAX_SAFE_INTEGER;
  for (const entry of await fs.readdir(dir).catch(() => [] as string[])) {
    if (!entry.startsWith(prefix)) continue;
    const rest = entry.slice(prefix.length);
    if (!/^[0-9a-fA-F]{1,8}$/.test(rest)) continue;
    const v = parseInt(rest, 16);
    max = Math.max(max, v);
    min = Math.min(min, v);
  }
  if (max === 0) {
    for (let i = 0; i < RETRIES; i++) {
      const v = fallbackValue();
      try {
        const fh = await fs.open(`${file}.${hex8(v)}`, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o444);
        await fh.close();
        await chownTo(`${file}.${hex8(v)}`, owner);
        await writeValue(file, v, owner);
        return v;
      } catch (err) {
        if (!isErr(err, 'EEXIST')) return v;
      }
    }
    return fallbackValue();
  }
  if (min !== max) await fs.unlink(`${file}.${hex8(min)}`).catch(() => undefined);
  const got = await tryRename(file, max);
  if (got === null) return fallbackValue();
  await writeValue(file, got, owner);
  return got;
}

/** The next UIDVALIDITY for a folder under this Maildir root (Dovecot's mailbox_uidvalidity_next protocol). */
export async function nextUidValidity(root: string, owner: Owner | undefined): Promise<number> {
  const file = path.join(root, 'dovecot-uidvalidity');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (!isErr(err, 'ENOENT')) throw err;
    return rescan(file, owner);
  }
  const m = /^([0-9a-fA-F]{1,8})/.exec(text);
  if (!m) return rescan(file, owner);
  const got = await tryRename(file, parseInt(m[1] ?? '0', 16));
  if (got === null) return rescan(file, owner);
  await writeValue(file, got, owner);
  return got;
}
