/** The maildir store's public face: Dovecot-compatible Maildir++ storage. */
export { MaildirStore, parseMaildirSpec, expandPath, type MaildirStoreOptions } from './store.js';
export { emailIdOf } from './folder.js';
export { parseUidlist, serializeUidlist, type Uidlist, type UidlistRecord } from './uidlist.js';
export { parseName, buildName, crlfSize, toCrlf } from './filename.js';
export { checkMailboxName, folderDirName, nameOfDir } from './names.js';
export { Dotlock } from './dotlock.js';
