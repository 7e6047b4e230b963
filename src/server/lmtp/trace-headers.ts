/**
 * The header fields a final delivery adds on top of the message, as dovecot-lmtp does:
 * Return-Path (RFC 5321 4.4: the envelope sender, written at final delivery), Delivered-To (the
 * recipient, which filters and loop detection read) and a Received trace line.
 */

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const two = (n: number): string => String(n).padStart(2, '0');

/** An RFC 5322 date-time in UTC: "Tue, 2 Jan 2024 10:00:00 +0000". */
export function rfc5322Date(d: Date): string {
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

/** What the trace lines say. */
export interface TraceInfo {
  /** Envelope sender ('' for the null sender). */
  sender: string;
  /** The recipient address as given in RCPT TO. */
  recipient: string;
  /** The client's LHLO name. */
  lhloName: string;
  /** "[127.0.0.1]" style client address, or "local" for a unix socket. */
  client: string;
  /** This host's name. */
  serverName: string;
  /** The transaction id (also in the logs, to find a delivery). */
  id: string;
  date: Date;
}

/** Return-Path, Delivered-To and Received, CRLF-terminated, to put before the message. */
export function traceHeaders(t: TraceInfo): Buffer {
  return Buffer.from(
    `Return-Path: <${t.sender}>\r\n` +
      `Delivered-To: ${t.recipient}\r\n` +
      `Received: from ${t.lhloName} (${t.client})\r\n\tby ${t.serverName} (imapkit) with LMTP id ${t.id}\r\n\tfor <${t.recipient}>; ${rfc5322Date(t.date)}\r\n`,
  );
}
