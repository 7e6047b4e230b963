/**
 * Mailbox names <-> Maildir++ folder directories. INBOX is the Maildir root; "A/B" lives in
 * `<root>/.A.B` with each level in modified UTF-7 (as Dovecot writes them), '.' being the default
 * Maildir++ separator. Names that could leave the user's directory or that the layout cannot
 * represent are refused with StoreError CANNOT.
 */
import { decodeMailboxName, encodeMailboxName } from '../../protocol/utf7.js';
import { StoreError } from '../contract.js';
import { canonicalMailboxName } from '../common.js';

/** Longest directory name most file systems accept. */
const MAX_DIR_BYTES = 255;

/** Check a Maildir++ separator: one printable ASCII character that modified UTF-7 never produces. */
export function checkSeparator(sep: string): void {
  if (sep.length !== 1 || !/^[!-~]$/.test(sep) || /[A-Za-z0-9+,&\-/]/.test(sep)) {
    throw new StoreError('CANNOT', `Maildir++ separator must be one printable non-alphanumeric character other than + , & - /, not ${JSON.stringify(sep)}`);
  }
}

/** "INBOX" in any case (alone or as the first level) becomes "INBOX". */
export function normalizeName(name: string): string {
  if (name.length >= 5 && name.slice(0, 5).toUpperCase() === 'INBOX' && (name.length === 5 || name[5] === '/')) return 'INBOX' + name.slice(5);
  return name;
}

/**
 * Refuse names that are unsafe or not representable; returns the normalised name.
 * Refused: empty names or levels, absolute paths (leading '/'), '.' and '..' levels, NUL and control
 * characters, the Maildir++ separator inside a level, and levels too long for a directory name.
 */
export function checkMailboxName(name: string, sep: string): string {
  // The rules all backends share first, then what Maildir++ adds.
  canonicalMailboxName(name);
  if (typeof name !== 'string' || name === '') throw new StoreError('CANNOT', 'mailbox name is empty');
  if (/[\x00-\x1f\x7f]/.test(name)) throw new StoreError('CANNOT', 'mailbox name contains a NUL or control character');
  if (name.startsWith('/')) throw new StoreError('CANNOT', 'mailbox name must not be an absolute path');
  const levels = name.split('/');
  for (const level of levels) {
    if (level === '') throw new StoreError('CANNOT', `mailbox name ${JSON.stringify(name)} has an empty level`);
    if (level === '.' || level === '..') throw new StoreError('CANNOT', `mailbox name ${JSON.stringify(name)} contains a '${level}' level`);
    if (level.includes(sep)) throw new StoreError('CANNOT', `character not allowed in mailbox name: '${sep}'`);
    if (level.includes('\\')) throw new StoreError('CANNOT', "character not allowed in mailbox name: '\\'");
  }
  const normal = normalizeName(name);
  if (normal !== 'INBOX') {
    let dir: string;
    try {
      dir = folderDirName(normal, sep);
    } catch {
      throw new StoreError('CANNOT', `mailbox name ${JSON.stringify(name)} is not valid Unicode`);
    }
    if (Buffer.byteLength(dir) > MAX_DIR_BYTES) throw new StoreError('CANNOT', 'mailbox name is too long');
  }
  return normal;
}

/** Directory name (relative to the Maildir root) of a non-INBOX mailbox: ".A.B". */
export function folderDirName(name: string, sep: string): string {
  return sep + name.split('/').map((level) => encodeMailboxName(level)).join(sep);
}

/** Mailbox name of a root entry like ".A.B", or null when it is not a folder we can name safely. */
export function nameOfDir(entry: string, sep: string): string | null {
  if (!entry.startsWith(sep) || entry === '.' || entry === '..' || entry.length < 2) return null;
  const levels = entry.slice(1).split(sep);
  const decoded: string[] = [];
  for (const level of levels) {
    if (level === '') return null;
    try {
      decoded.push(decodeMailboxName(level));
    } catch {
      return null;
    }
  }
  const name = decoded.join('/');
  try {
    const checked = checkMailboxName(name, sep);
    // Only one spelling per mailbox: a directory whose name we would not produce is ignored.
    return checked !== 'INBOX' && folderDirName(checked, sep) === entry ? checked : null;
  } catch {
    return null;
  }
}
