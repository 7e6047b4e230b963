/** OAuth2 for IMAP: token files, refresh, SASL XOAUTH2 and OAUTHBEARER strings. */
export * from './sasl.js';
export * from './token-file.js';
export * from './client.js';
export * from './token-source.js';
