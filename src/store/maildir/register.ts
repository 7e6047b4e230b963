/**
 * Registers the `maildir` store kind with openStore(): "maildir:PATH[:SEP=c][:INDEX=DIR|MEMORY][:RESCAN=ms]".
 * PATH may start with "~" and use %u, %n, %d (e.g. maildir:~/Maildir, maildir:/var/mail/%u/Maildir);
 * a relative PATH is taken from the data directory. Import this module once (for its side effect).
 */
import { expandPath, registerStoreKind } from '../registry.js';
import { MaildirStore, parseMaildirSpec } from './store.js';

registerStoreKind('maildir', async (rest, opts) => {
  const parsed = parseMaildirSpec(`maildir:${rest}`);
  return new MaildirStore({ ...parsed, path: expandPath(parsed.path, opts.dataDir) });
});
