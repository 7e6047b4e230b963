/**
 * The sync layer's public face: the Repository contract and its IMAP and MailStore
 * implementations, the pure planner, the state database, the applier, the engine (SyncSession,
 * syncAccount) with its one-way append-only mode for `forward`, configuration, credentials, the
 * user interfaces and watch mode.
 */
export * from './repository.js';
export { ImapRepository, classifyImapError, normalizeFingerprint, uidSet, type ImapRepositoryOptions, type TlsMode } from './imap-repository.js';
export { ImapAppender, expandUidSet, imapDateTime, type AppenderOptions } from './imap-append.js';
export { StoreRepository, type StoreRepositoryOptions } from './store-repository.js';
export { plan, mergeFlags, flagDelta, identityKey, planSummary, type Action, type DeletePolicy, type FlagDelta, type Intent, type PairRecord, type Plan, type PlanInput, type PlanOptions, type Side } from './plan.js';
export { SyncState, StateLockedError, type FolderState, type SideState } from './state.js';
export { applyPlan, dedupeKey, type ApplyOptions, type ApplyResult, type ApplyTarget, type CopiedMessage } from './apply.js';
export {
  SyncSession,
  syncAccount,
  openAccount,
  openRepository,
  adviceFor,
  type AccountSummary,
  type FolderResult,
  type OpenRepositoryOptions,
  type RunOptions,
  type SessionSpec,
  type SyncError,
  type SyncEvent,
} from './engine.js';
export {
  syncConfigSchema,
  loadSyncConfig,
  selectAccounts,
  resolveAccount,
  folderSelector,
  nameTranslator,
  checkInverse,
  compileFolderPattern,
  defaultStateDir,
  defaultConfigFiles,
  GMAIL_DEFAULT_EXCLUDES,
  type AccountSpec,
  type FolderSelector,
  type NameTranslator,
  type RepoSpec,
  type SyncConfig,
} from './config.js';
export { resolvePassword, runPasswordCommand, netrcLookup, CredentialError, type PasswordSource } from './credentials.js';
export { messageIdOf, contentHash, normalizeMessageId } from './message.js';
export { createUi, describeFolder, type SyncUi, type UiMode } from './ui.js';
export { Watcher, installWatchSignals, type WatchEntry, type WatchOptions } from './watch.js';
