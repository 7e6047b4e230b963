/**
 * Reading a Maildir as an import source, without writing anything into it: Maildir++ trees
 * (INBOX in the root, folders as `.A.B`), and directories of plain Maildirs as mbsync or
 * OfflineIMAP keep them (`Sent/cur`, `Lists/dev/cur`). Flags come from the `:2,` letters and
 * dovecot-keywords, INTERNALDATE from the file's mtime, and the order from dovecot-uidlist when
 * there is one (else the delivery time in the name).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeMailboxName } from '../../protocol/utf7.js';
import { lettersToFlags, parseName } from '../maildir/filename.js';
import { parseKeywords } from '../maildir/keywords.js';
import { parseUidlist } from '../maildir/uidlist.js';

/** One folder of a source Maildir. */
export interface SourceFolder {
  /** Mailbox name relative to the source ('' for the root Maildir, i.e. INBOX), '/' separated. */
  name: string;
  dir: string;
}

/** One message file of a source folder. */
export interface SourceMessage {
  /** Stable key within the folder: the file's base name. */
  key: string;
  path: string;
  flags: string[];
  internalDate: Date;
  size: number;
}

async function isMaildir(dir: string): Promise<boolean> {
  const [cur, nw] = await Promise.all([fs.stat(path.join(dir, 'cur')).catch(() => null), fs.stat(path.join(dir, 'new')).catch(() => null)]);
  return !!cur?.isDirectory() && !!nw?.isDirectory();
}

function decodeLevel(level: string): string {
  try {
    return decodeMailboxName(level);
  } catch {
    return level;
  }
}

/** Every folder under a source root, the root itself first when it is a Maildir. */
export async function listSourceFolders(root: string): Promise<SourceFolder[]> {
  const out: SourceFolder[] = [];
  const rootIsMaildir = await isMaildir(root);
  if (rootIsMaildir) out.push({ name: '', dir: root });
  const walk = async (dir: string, prefix: string[]): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (!e.isDirectory() || ['cur', 'new', 'tmp'].includes(e.name)) continue;
      const full = path.join(dir, e.name);
      if (prefix.length === 0 && rootIsMaildir && e.name.startsWith('.') && e.name.length > 1) {
        // Maildir++ folder: ".A.B" is A/B.
        const levels = e.name.slice(1).split('.');
        if (levels.some((l) => l === '') || !(await isMaildir(full))) continue;
        out.push({ name: levels.map(decodeLevel).join('/'), dir: full });
        continue;
      }
      if (e.name.startsWith('.')) continue;
      const levels = [...prefix, e.name];
      if (await isMaildir(full)) out.push({ name: levels.join('/'), dir: full });
      await walk(full, levels);
    }
  };
  await walk(root, []);
  return out;
}

/** The messages of one folder in UID (or delivery) order. */
export async function listSourceMessages(folder: SourceFolder): Promise<SourceMessage[]> {
  const kwText = await fs.readFile(path.join(folder.dir, 'dovecot-keywords'), 'utf8').catch(() => '');
  const keywords = parseKeywords(kwText);
  const ulText = await fs.readFile(path.join(folder.dir, 'dovecot-uidlist'), 'utf8').catch(() => '');
  const parsed = ulText ? parseUidlist(ulText) : null;
  const order = new Map<string, number>();
  if (parsed?.ok) for (const r of parsed.list.records) order.set(r.base, r.uid);
  const found: Array<SourceMessage & { inNew: boolean }> = [];
  for (const sub of ['new', 'cur']) {
    const names = await fs.readdir(path.join(folder.dir, sub)).catch(() => [] as string[]);
    for (const f of names) {
      if (f.startsWith('.')) continue;
      const p = path.join(folder.dir, sub, f);
      const st = await fs.stat(p).catch(() => null);
      if (!st?.isFile()) continue;
      const parsedName = parseName(f);
      found.push({
        key: parsedName.base,
        path: p,
        flags: sub === 'new' ? [] : lettersToFlags(parsedName.letters, keywords),
        internalDate: new Date(Math.round(st.mtimeMs)),
        size: st.size,
        inNew: sub === 'new',
      });
    }
  }
  // A file seen in both new/ and cur/ (moved while we listed) counts once, from cur/.
  const byKey = new Map<string, SourceMessage & { inNew: boolean }>();
  for (const m of found) if (!byKey.has(m.key) || !m.inNew) byKey.set(m.key, m);
  const time = (k: string) => parseInt(k, 10) || 0;
  return [...byKey.values()]
    .sort((a, b) => {
      const ua = order.get(a.key);
      const ub = order.get(b.key);
      if (ua !== undefined && ub !== undefined) return ua - ub;
      if (ua !== undefined) return -1;
      if (ub !== undefined) return 1;
      return time(a.key) - time(b.key) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    })
    .map(({ inNew: _inNew, ...m }) => m);
}
