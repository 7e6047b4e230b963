/** The server layer's public face: ImapServer, its configuration, TLS helpers and the demo data. */
export { ImapServer, type ImapServerOptions, type ListenInfo } from './server.js';
export {
  serveConfigSchema,
  limitsSchema,
  resolveServeConfig,
  defaultStoreSpec,
  dataDir,
  SERVE_DEFAULTS,
  type ServeConfig,
  type ServeConfigInput,
} from './config.js';
export { DEFAULT_LIMITS, resolveLimits, type LimitSettings } from './limits.js';
export { capabilities, SASL_MECHANISMS, type CapabilityState } from './capabilities.js';
export { loadTlsFiles, createTlsContext, generateSelfSigned, type TlsMaterial } from './tls.js';
export { seedDemo, DEMO_USER, DEMO_PASSWORD } from './demo.js';
export type { SessionContext, SelectedMailbox, CommandResult, CommandHandler, ServerLimits } from './context.js';
export { LmtpServer, parseLmtpAddress, formatLmtpAddress, type LmtpServerOptions, type LmtpListen } from './lmtp/index.js';
