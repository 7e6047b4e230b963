/**
 * Appending to a folder without opening it: what dovecot-lda does. Write each message to tmp/
 * (fsync, mtime = INTERNALDATE), take dovecot-uidlist.lock, read the uidlist, rename the files
 * into new/ (or cur/ with flags), append their records, release. No directory scan and no cache:
 * whoever opens the folder next finds the files and their UIDs (and gives them a MODSEQ then), so
 * delivering into a folder of 50,000 messages costs what delivering into an empty one does.
 */
import { promises as fs, constants as fsc } from 'node:fs';
import path from 'node:path';
import { StoreError, type NewMessage, type UidMapping } from '../contract.js';
import { canonicalFlags } from '../common.js';
import { Dotlock } from './dotlock.js';
import { buildName, newBaseName, servedSize, sortLetters, systemLetter } from './filename.js';
import { fsyncDir, isErr, mkdirOwned, writeNewFile, type Owner } from './fsutil.js';
import { addKeywords, keywordIndex, readKeywords } from './keywords.js';
import { formatRecord, newMailboxGuid, parseUidlist, serializeUidlist, type Uidlist } from './uidlist.js';
import { nextUidValidity } from './uidvalidity.js';

/** Where and as whom to write. */
export interface DirectAppendEnv {
  /** Maildir root (for the UIDVALIDITY counter). */
  root: string;
  owner: Owner | undefined;
  lockTimeoutMs?: number;
}

/** Append messages to the folder in `dir`, all or none, durable on return. */
export async function appendDirect(env: DirectAppendEnv, dir: string, messages: NewMessage[]): Promise<UidMapping> {
  const prepared: Array<{ tmp: string; base: string; flags: string[] }> = [];
  const placed: string[] = [];
  try {
    for (const m of messages) {
      if (!Buffer.isBuffer(m.data)) throw new StoreError('CANNOT', 'message data must be bytes');
      const date = m.internalDate ?? new Date();
      if (Number.isNaN(date.getTime())) throw new StoreError('CANNOT', 'invalid internal date');
      const flags = canonicalFlags(m.flags ?? []);
      const base = newBaseName(m.data.length, servedSize(m.data));
      const tmp = path.join(dir, 'tmp', base);
      try {
        await writeNewFile(tmp, m.data, { owner: env.owner, mtime: date });
      } catch (err) {
        if (!isErr(err, 'ENOENT')) throw err;
        // A folder made by hand may lack tmp/ (or new/, cur/): add them, as opening it would.
        try {
          for (const sub of ['tmp', 'new', 'cur']) await mkdirOwned(path.join(dir, sub), env.owner);
        } catch {
          throw new StoreError('NONEXISTENT', `no such mailbox directory ${dir}`);
        }
        await writeNewFile(tmp, m.data, { owner: env.owner, mtime: date });
      }
      prepared.push({ tmp, base, flags });
    }
    if (prepared.length === 0) {
      const text = await fs.readFile(path.join(dir, 'dovecot-uidlist'), 'utf8').catch(() => '');
      const parsed = parseUidlist(text);
      return { uidValidity: parsed.ok ? parsed.list.uidValidity : 0, sourceUids: [], destUids: [] };
    }
    const uidlistPath = path.join(dir, 'dovecot-uidlist');
    const lock = await Dotlock.acquire(uidlistPath, { owner: env.owner, timeoutMs: env.lockTimeoutMs });
    try {
      // Keyword letters are only ever added under the uidlist lock (Dovecot relies on it).
      const kwFile = path.join(dir, 'dovecot-keywords');
      let kw = (await readKeywords(kwFile)).names;
      const wanted = [...new Set(prepared.flatMap((p) => p.flags).filter((f) => !f.startsWith('\\')))];
      if (wanted.some((k) => keywordIndex(kw, k) < 0)) {
        try {
          kw = await addKeywords(kwFile, kw, wanted, env.owner);
        } catch (err) {
          if (err instanceof RangeError) throw new StoreError('LIMIT', err.message);
          throw err;
        }
      }
      let text: string | null = null;
      let st: import('node:fs').Stats | null = null;
      try {
        const fh = await fs.open(uidlistPath, fsc.O_RDONLY);
        try {
          st = await fh.stat();
          text = (await fh.readFile()).toString('utf8');
        } finally {
          await fh.close();
        }
      } catch (err) {
        if (!isErr(err, 'ENOENT')) throw err;
      }
      const parsed = text === null ? null : parseUidlist(text);
      // Append in place only to a sound version 3 file that ends with a whole line; else rewrite it.
      const appendable = parsed?.ok === true && parsed.list.version === 3 && parsed.list.guid !== '' && parsed.bytes === st?.size;
      const list: Uidlist = parsed?.ok
        ? { ...parsed.list }
        : { version: 3, uidValidity: await nextUidValidity(env.root, env.owner), nextUid: 1, guid: newMailboxGuid(), hdrExt: [], records: [] };
      const added: Array<{ uid: number; base: string; ext: string[] }> = [];
      const touched = new Set<'new' | 'cur'>();
      for (const p of prepared) {
        let letters = '';
        for (const f of p.flags) {
          if (f.startsWith('\\')) letters += systemLetter(f) ?? '';
          else {
            const i = keywordIndex(kw, f);
            if (i >= 0) letters += String.fromCharCode(97 + i);
          }
        }
        letters = sortLetters(letters);
        const inNew = letters === '';
        const target = path.join(dir, inNew ? 'new' : 'cur', buildName(p.base, letters, inNew));
        await fs.rename(p.tmp, target);
        placed.push(target);
        touched.add(inNew ? 'new' : 'cur');
        added.push({ uid: list.nextUid++, base: p.base, ext: [] });
      }
      const writeRecords = async (): Promise<void> => {
        if (appendable) {
          const fh = await fs.open(uidlistPath, fsc.O_WRONLY | fsc.O_APPEND);
          try {
            await fh.write(added.map(formatRecord).join(''));
            await fh.datasync();
          } finally {
            await fh.close();
          }
        } else {
          await lock.replace(serializeUidlist({ ...list, version: 3, records: [...list.records, ...added] }));
        }
      };
      // The directories written into and the UID records become durable together, not one after
      // the other: a record whose file a crash lost names a message nobody was told of (we answer
      // only after both), and the next sync drops such a record, as Dovecot does.
      await Promise.all([...[...touched].map((sub) => fsyncDir(path.join(dir, sub))), writeRecords()]);
      return { uidValidity: list.uidValidity, sourceUids: [], destUids: added.map((r) => r.uid) };
    } finally {
      await lock.release();
    }
  } catch (err) {
    // All or none: take back what was placed and what is still in tmp/.
    for (const p of placed) await fs.unlink(p).catch(() => undefined);
    for (const p of prepared) await fs.unlink(p.tmp).catch(() => undefined);
    throw err;
  }
}
