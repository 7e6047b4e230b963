/**
 * The capability list the server announces (greeting, CAPABILITY, OK after login).
 * What is offered depends on the connection: STARTTLS only before TLS, LOGINDISABLED and the
 * AUTH= mechanisms only where plaintext authentication is allowed, COMPRESS after login and only once.
 */

/** What the capability list depends on. */
export interface CapabilityState {
  /** Authenticated already (AUTH=, STARTTLS, LOGINDISABLED, SASL-IR are pre-auth only). */
  authenticated: boolean;
  /** TLS is active on the connection. */
  secure: boolean;
  /** STARTTLS can be offered (a certificate is configured and TLS is not active yet). */
  startTlsAvailable: boolean;
  /** LOGIN / AUTHENTICATE are refused on this connection until TLS (RFC 3501 6.2.3). */
  loginDisabled: boolean;
  /** COMPRESS is already active (RFC 4978: not announced again). */
  compressed: boolean;
  /** APPENDLIMIT value in bytes (RFC 7889). */
  appendLimit: number;
}

/** Extensions every state announces, in a stable order (Dovecot-like). */
const BASE = [
  'IMAP4rev1',
  'IMAP4rev2',
  'LITERAL+',
  'SASL-IR',
  'ID',
  'ENABLE',
  'IDLE',
  'NAMESPACE',
  'UNSELECT',
  'CHILDREN',
  'SPECIAL-USE',
  'CREATE-SPECIAL-USE',
  'LIST-EXTENDED',
  'LIST-STATUS',
  'UIDPLUS',
  'MOVE',
  'CONDSTORE',
  'QRESYNC',
  'ESEARCH',
  'SEARCHRES',
  'SORT',
  'SORT=DISPLAY',
  'THREAD=REFERENCES',
  'THREAD=ORDEREDSUBJECT',
  'BINARY',
  'MULTIAPPEND',
];

const AFTER_APPENDLIMIT = [
  'OBJECTID',
  'STATUS=SIZE',
  'SAVEDATE',
  'UTF8=ACCEPT',
  'QUOTA',
  'QUOTA=RES-STORAGE',
  'QUOTA=RES-MESSAGE',
  'WITHIN',
];

/** SASL mechanisms the server implements (sasl/*.ts). */
export const SASL_MECHANISMS = ['PLAIN', 'LOGIN', 'SCRAM-SHA-256'] as const;

/** The capability atoms for a connection in the given state. */
export function capabilities(state: CapabilityState): string[] {
  const caps = [...BASE, `APPENDLIMIT=${state.appendLimit}`, ...AFTER_APPENDLIMIT];
  // COMPRESS is a command-auth (RFC 4978 5), so it is announced once usable, and not again once active.
  if (state.authenticated && !state.compressed) caps.push('COMPRESS=DEFLATE');
  if (!state.authenticated) {
    if (state.startTlsAvailable && !state.secure) caps.push('STARTTLS');
    if (state.loginDisabled) caps.push('LOGINDISABLED');
    else for (const mech of SASL_MECHANISMS) caps.push(`AUTH=${mech}`);
  }
  return caps;
}

/** The capability list as the text of a `[CAPABILITY ...]` response code. */
export function capabilityCode(state: CapabilityState): string {
  return `CAPABILITY ${capabilities(state).join(' ')}`;
}
