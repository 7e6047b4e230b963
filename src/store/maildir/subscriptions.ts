/**
 * The `subscriptions` file in the Maildir root, as Dovecot 2.x writes it: a `V\t2` line, an empty
 * line, then one mailbox a line with '\t' between hierarchy levels, each level in modified UTF-7.
 * The older one-name-a-line format (Courier's "INBOX.A.B", or names using '/') is read too.
 * Writes go through `subscriptions.lock` renamed over the file.
 */
import { decodeMailboxName, encodeMailboxName } from '../../protocol/utf7.js';
import { Dotlock } from './dotlock.js';
import { readIfExists, type Owner } from './fsutil.js';
import { normalizeName } from './names.js';

function decodeLevels(levels: string[]): string | null {
  try {
    return normalizeName(levels.map((l) => decodeMailboxName(l)).join('/'));
  } catch {
    return null;
  }
}

/** Parse the file's text into Unicode mailbox names. */
export function parseSubscriptions(text: string, sep: string): string[] {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const out: string[] = [];
  if (lines[0] === 'V\t2') {
    for (const line of lines.slice(1)) {
      if (line === '') continue;
      const name = decodeLevels(line.split('\t'));
      if (name) out.push(name);
    }
  } else {
    for (const line of lines) {
      if (line === '') continue;
      let levels: string[];
      if (line.includes('/')) levels = line.split('/');
      else {
        levels = line.split(sep);
        // Courier-style names carry the INBOX. namespace prefix.
        if (levels.length > 1 && levels[0]?.toUpperCase() === 'INBOX') levels = levels.slice(1);
      }
      const name = decodeLevels(levels);
      if (name) out.push(name);
    }
  }
  return [...new Set(out)];
}

/** Text of the file for these names (version 2 format). */
export function serializeSubscriptions(names: string[]): string {
  return 'V\t2\n\n' + names.map((n) => n.split('/').map((l) => encodeMailboxName(l)).join('\t') + '\n').join('');
}

/** Read the subscribed names. */
export async function readSubscriptions(file: string, sep: string): Promise<string[]> {
  const text = await readIfExists(file);
  return text === null ? [] : parseSubscriptions(text, sep);
}

/** Add or remove one name under the file's lock. */
export async function updateSubscription(file: string, sep: string, name: string, subscribed: boolean, owner: Owner | undefined): Promise<void> {
  const lock = await Dotlock.acquire(file, { owner, staleTimeoutMs: 30_000, timeoutMs: 32_000 });
  try {
    const current = await readSubscriptions(file, sep);
    const has = current.includes(name);
    if (has === subscribed) {
      await lock.release();
      return;
    }
    const next = subscribed ? [...current, name] : current.filter((n) => n !== name);
    await lock.replace(serializeSubscriptions(next));
  } catch (err) {
    await lock.release();
    throw err;
  }
}
