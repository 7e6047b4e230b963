/** Import and export between MailStores and mbox files or Maildirs (resumable, with progress). */
export { importMessages, exportMessages, type ImportOptions, type ExportOptions, type TransferFormat, type TransferProgress, type TransferSummary } from './transfer.js';
export { readMbox, formatMboxMessage, parseFromLineDate, asctime, stripMetaHeaders, type MboxMessage } from './mbox.js';
export { listSourceFolders, listSourceMessages, type SourceFolder, type SourceMessage } from './maildir-source.js';
export { Journal, JournalError, type JournalHeader, type BeginRecord } from './journal.js';
