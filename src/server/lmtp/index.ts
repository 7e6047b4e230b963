/** The LMTP listener (RFC 2033) of `imapkit serve`: deliveries from an MTA into any store. */
export { LmtpServer, removeStaleSocket, type LmtpServerOptions, type LmtpListenInfo } from './server.js';
export { parseLmtpAddress, formatLmtpAddress, LMTP_ADDRESS_EXPECTED, type LmtpListen } from './listen-address.js';
export { matchRecipient, candidateUsers, UserDirectory, DETAIL_DELIMITER, type Recipient } from './recipients.js';
export { DotReader } from './data-reader.js';
export { parseEnvelopeArg, splitAddress, EnvelopeSyntaxError, type EnvelopeArg } from './envelope.js';
export { traceHeaders, rfc5322Date, type TraceInfo } from './trace-headers.js';
export { storeForRecipient, type StoreOutcome } from './store-message.js';
