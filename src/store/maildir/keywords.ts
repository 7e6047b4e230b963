/**
 * dovecot-keywords: which keyword each letter a..z stands for, one `<index> <name>` line each
 * (0 = 'a'). Dovecot only adds names while holding the folder's dovecot-uidlist.lock and writes the
 * file through dovecot-keywords.lock renamed over it; we do the same, so the two never disagree.
 */
import { promises as fs, statSync } from 'node:fs';
import { Dotlock } from './dotlock.js';
import { isErr, type Owner } from './fsutil.js';

/** At most 26 keywords fit in file names. */
export const MAX_KEYWORDS = 26;

/** The keyword table of one folder plus the file stamp it was read from. */
export interface KeywordTable {
  /** names[i] is the keyword of letter 'a' + i. */
  names: Array<string | undefined>;
  /** mtime/size/ino stamp of the file ('' when missing). */
  stamp: string;
}

/** Parse the file's text; bad lines are skipped, as Dovecot does. */
export function parseKeywords(text: string): Array<string | undefined> {
  const names: Array<string | undefined> = [];
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp <= 0) continue;
    const idxText = line.slice(0, sp);
    const name = line.slice(sp + 1).replace(/\r$/, '');
    if (!/^\d+$/.test(idxText) || name === '') continue;
    const idx = Number(idxText);
    if (idx >= MAX_KEYWORDS) continue;
    names[idx] = name;
  }
  return names;
}

/** Read the table (empty when the file does not exist). */
export async function readKeywords(file: string): Promise<KeywordTable> {
  try {
    const [st, text] = await Promise.all([fs.stat(file), fs.readFile(file, 'utf8')]);
    return { names: parseKeywords(text), stamp: `${st.ino}/${st.mtimeMs}/${st.size}` };
  } catch (err) {
    if (isErr(err, 'ENOENT')) return { names: [], stamp: '' };
    throw err;
  }
}

/** Stamp of the file as readKeywords would record it, cheaply. */
export async function keywordsStamp(file: string): Promise<string> {
  try {
    const st = await fs.stat(file);
    return `${st.ino}/${st.mtimeMs}/${st.size}`;
  } catch (err) {
    if (isErr(err, 'ENOENT')) return '';
    throw err;
  }
}

/** keywordsStamp without a thread-pool round trip (a stat is far cheaper than the hop). */
export function keywordsStampSync(file: string): string {
  try {
    const st = statSync(file, { throwIfNoEntry: false });
    return st ? `${st.ino}/${st.mtimeMs}/${st.size}` : '';
  } catch (err) {
    if (isErr(err, 'ENOENT', 'ENOTDIR')) return '';
    throw err;
  }
}

/** Index of a keyword (case-insensitive, as IMAP keywords are), or -1. */
export function keywordIndex(names: ReadonlyArray<string | undefined>, keyword: string): number {
  const k = keyword.toLowerCase();
  for (let i = 0; i < names.length; i++) if (names[i]?.toLowerCase() === k) return i;
  return -1;
}

/**
 * Give letters to the keywords that have none and write the file. The caller holds the folder's
 * dovecot-uidlist lock. Returns the updated names; throws RangeError when all 26 letters are used.
 */
export async function addKeywords(file: string, current: ReadonlyArray<string | undefined>, wanted: string[], owner: Owner | undefined): Promise<Array<string | undefined>> {
  const names = [...current];
  let changed = false;
  for (const kw of wanted) {
    if (keywordIndex(names, kw) >= 0) continue;
    let free = 0;
    while (free < MAX_KEYWORDS && names[free] !== undefined) free++;
    if (free >= MAX_KEYWORDS) throw new RangeError(`no free keyword letter for ${kw}: a Maildir folder holds at most ${MAX_KEYWORDS} keywords`);
    names[free] = kw;
    changed = true;
  }
  if (!changed) return names;
  let text = '';
  names.forEach((n, i) => {
    if (n !== undefined) text += `${i} ${n}\n`;
  });
  // Dovecot removes a leftover keywords lock unconditionally: the uidlist lock is what serialises writers.
  await fs.unlink(`${file}.lock`).catch(() => undefined);
  const lock = await Dotlock.acquire(file, { owner, timeoutMs: 10_000 });
  // Dovecot notices changes by the file's mtime in whole seconds: make it grow every time.
  let mtime = new Date();
  try {
    const old = await fs.stat(file);
    const oldSec = Math.floor(old.mtimeMs / 1000);
    if (Math.floor(mtime.getTime() / 1000) <= oldSec) mtime = new Date((oldSec + 1) * 1000);
  } catch (err) {
    if (!isErr(err, 'ENOENT')) {
      await lock.release();
      throw err;
    }
  }
  await lock.replace(text, mtime);
  return names;
}
