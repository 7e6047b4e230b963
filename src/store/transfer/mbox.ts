/**
 * mbox in the mboxrd dialect: each message starts with a `From <sender> <asctime date>` line and is
 * followed by an empty line; body lines matching /^>*From / carry one more '>' than in the message.
 * Flags travel in the Status / X-Status / X-Keywords headers (as mutt, Thunderbird and Dovecot's
 * mbox write them); those headers are removed on import and added back on export, so a message's
 * bytes survive a round trip (mbox line ends are LF).
 */
import { createReadStream } from 'node:fs';

/** One message read from an mbox file. */
export interface MboxMessage {
  /** Byte offset of its From line in the file. */
  offset: number;
  /** Byte offset just after it (the next From line, or the end of the file). */
  end: number;
  /** Message bytes (quoting undone, metadata headers removed, LF line ends as in the file). */
  data: Buffer;
  flags: string[];
  /** INTERNALDATE from the From line (undefined when it has none we can read). */
  internalDate?: Date;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const META_HEADERS = new Set(['status', 'x-status', 'x-keywords', 'x-uid', 'x-imap', 'x-imapbase']);

/** The date of a `From ` line ("From sender Mon Jan  1 10:00:00 2024", optionally with a zone). */
export function parseFromLineDate(line: string): Date | undefined {
  const m = /(?:Sun|Mon|Tue|Wed|Thu|Fri|Sat) +(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) +(\d{1,2}):(\d{2})(?::(\d{2}))?(?: +([+-]\d{4}|[A-Z]{3,4}))? +(\d{4})(?: +([+-]\d{4}))?/.exec(line);
  if (!m) return undefined;
  const zone = m[6] && /^[+-]\d{4}$/.test(m[6]) ? m[6] : m[8];
  let offsetMin = 0;
  if (zone) offsetMin = (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5)));
  const ms = Date.UTC(Number(m[7]), MONTHS.indexOf(m[1] as string), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5] ?? 0)) - offsetMin * 60_000;
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** asctime() form of a date in UTC: "Mon Jan  1 10:00:00 2024". */
export function asctime(d: Date): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** Index just past the header block's blank line (or -1 when there is none), and the blank line's start. */
function headerEnd(data: Buffer): { blank: number; body: number } {
  for (let i = 0; i < data.length; ) {
    const nl = data.indexOf(10, i);
    const lineEnd = nl < 0 ? data.length : nl;
    const lineLen = lineEnd - i - (lineEnd > i && data[lineEnd - 1] === 13 ? 1 : 0);
    if (lineLen === 0) return { blank: i, body: nl < 0 ? data.length : nl + 1 };
    if (nl < 0) break;
    i = nl + 1;
  }
  return { blank: -1, body: -1 };
}

/** Take Status / X-Status / X-Keywords (and Dovecot's X-UID, X-IMAP*) out of the header, turning them into flags. */
export function stripMetaHeaders(data: Buffer): { data: Buffer; flags: string[] } {
  const { blank } = headerEnd(data);
  const end = blank < 0 ? data.length : blank;
  const flags = new Set<string>();
  const kept: Buffer[] = [];
  let i = 0;
  let removed = false;
  while (i < end) {
    // One field: its first line plus continuation lines.
    let j = data.indexOf(10, i);
    j = j < 0 || j >= end ? end : j + 1;
    while (j < end && (data[j] === 32 || data[j] === 9)) {
      const n = data.indexOf(10, j);
      j = n < 0 || n >= end ? end : n + 1;
    }
    const field = data.subarray(i, j);
    const colon = field.indexOf(58);
    const name = colon > 0 ? field.subarray(0, colon).toString('latin1').trim().toLowerCase() : '';
    if (META_HEADERS.has(name)) {
      removed = true;
      const value = field.subarray(colon + 1).toString('latin1').trim();
      if (name === 'status') {
        if (value.includes('R')) flags.add('\\Seen');
      } else if (name === 'x-status') {
        if (value.includes('A')) flags.add('\\Answered');
        if (value.includes('F')) flags.add('\\Flagged');
        if (value.includes('T')) flags.add('\\Draft');
        if (value.includes('D')) flags.add('\\Deleted');
      } else if (name === 'x-keywords') {
        for (const k of value.split(/[\s,]+/)) if (k && !k.startsWith('\\')) flags.add(k);
      }
    } else kept.push(field);
    i = j;
  }
  if (!removed) return { data, flags: [] };
  kept.push(data.subarray(end));
  return { data: Buffer.concat(kept), flags: [...flags] };
}

/** Undo mboxrd quoting of one line (without its line end): ">From " becomes "From ", ">>From " becomes ">From ". */
function unquote(line: Buffer): Buffer {
  let i = 0;
  while (i < line.length && line[i] === 62) i++;
  if (i > 0 && line.subarray(i, i + 5).toString('latin1') === 'From ') return line.subarray(1);
  return line;
}

function isFromLine(line: Buffer): boolean {
  return line.length >= 5 && line[0] === 70 && line.subarray(0, 5).toString('latin1') === 'From ';
}

function isBlank(line: Buffer): boolean {
  return line.length === 0 || (line.length === 1 && line[0] === 13);
}

/**
 * Read the messages of an mbox file from `start` (a From line offset). A `From ` line separates
 * messages only at the start of the file or after an empty line, which keeps unquoted (mboxo)
 * "From " lines inside paragraphs in their message.
 */
export async function* readMbox(file: string, start = 0): AsyncGenerator<MboxMessage> {
  const stream = createReadStream(file, { start, highWaterMark: 1 << 20 });
  let pending: Buffer = Buffer.alloc(0);
  let pos = start;
  let cur: { offset: number; fromLine: string; lines: Buffer[] } | null = null;
  let prevBlank = true;
  const finish = (c: { offset: number; fromLine: string; lines: Buffer[] }, end: number): MboxMessage => {
    const lines = c.lines;
    // The empty line before the next From line belongs to the mbox, not the message.
    if (lines.length > 0 && isBlank(lines[lines.length - 1] as Buffer)) lines.pop();
    const parts: Buffer[] = [];
    for (const l of lines) parts.push(unquote(l), Buffer.from('\n'));
    const raw = Buffer.concat(parts);
    const { data, flags } = stripMetaHeaders(raw);
    return { offset: c.offset, end, data, flags, internalDate: parseFromLineDate(c.fromLine) };
  };
  const handleLine = function* (line: Buffer, lineStart: number): Generator<MboxMessage> {
    if (isFromLine(line) && prevBlank) {
      if (cur) yield finish(cur, lineStart);
      cur = { offset: lineStart, fromLine: line.toString('latin1'), lines: [] };
      prevBlank = false;
      return;
    }
    prevBlank = isBlank(line);
    if (cur) cur.lines.push(line);
    else if (!isBlank(line)) throw new Error(`not an mbox file: no "From " line at byte ${lineStart}`);
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let i = 0;
    for (;;) {
      const nl = pending.indexOf(10, i);
      if (nl < 0) break;
      yield* handleLine(pending.subarray(i, nl), pos + i);
      i = nl + 1;
    }
    pos += i;
    pending = pending.subarray(i);
  }
  if (pending.length > 0) {
    yield* handleLine(pending, pos);
    pos += pending.length;
  }
  if (cur) yield finish(cur, pos);
}

/** The envelope sender for a From line: Return-Path, else the From address, else MAILER-DAEMON. */
function envelopeSender(header: string): string {
  const rp = /^return-path:\s*<?([^\s<>]+@[^\s<>]+)>?/im.exec(header);
  if (rp) return rp[1] as string;
  const from = /^from:[^\n]*?<?([^\s<>"]+@[^\s<>"]+)>?/im.exec(header);
  return from ? (from[1] as string) : 'MAILER-DAEMON';
}

/** One message in mboxrd form: From line, LF line ends, flag headers, quoting, and the separating empty line. */
export function formatMboxMessage(message: Buffer, flags: readonly string[], internalDate: Date): Buffer {
  // mbox files use LF line ends.
  const lf = Buffer.from(message.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
  const { blank, body } = headerEnd(lf);
  const headerPart = blank < 0 ? lf : lf.subarray(0, blank);
  const rest = blank < 0 ? Buffer.alloc(0) : lf.subarray(blank, body);
  const bodyPart = blank < 0 ? Buffer.alloc(0) : lf.subarray(body);
  const status = flags.includes('\\Seen') ? 'RO' : 'O';
  let xstatus = '';
  if (flags.includes('\\Answered')) xstatus += 'A';
  if (flags.includes('\\Flagged')) xstatus += 'F';
  if (flags.includes('\\Draft')) xstatus += 'T';
  if (flags.includes('\\Deleted')) xstatus += 'D';
  const keywords = flags.filter((f) => !f.startsWith('\\'));
  let meta = `Status: ${status}\n`;
  if (xstatus) meta += `X-Status: ${xstatus}\n`;
  if (keywords.length) meta += `X-Keywords: ${keywords.join(' ')}\n`;
  const headerText = headerPart.toString('latin1');
  const head = headerPart.length > 0 && !headerText.endsWith('\n') ? '\n' : '';
  const all = Buffer.concat([headerPart, Buffer.from(head + meta, 'latin1'), rest.length ? rest : Buffer.from(blank < 0 ? '\n' : ''), bodyPart]);
  // Quote body and header lines that would look like separators.
  const out: Buffer[] = [Buffer.from(`From ${envelopeSender(headerText)} ${asctime(internalDate)}\n`, 'latin1')];
  let i = 0;
  while (i < all.length) {
    const nl = all.indexOf(10, i);
    const line = all.subarray(i, nl < 0 ? all.length : nl);
    let k = 0;
    while (k < line.length && line[k] === 62) k++;
    if (line.subarray(k, k + 5).toString('latin1') === 'From ') out.push(Buffer.from('>'));
    out.push(line, Buffer.from('\n'));
    if (nl < 0) break;
    i = nl + 1;
  }
  out.push(Buffer.from('\n'));
  return Buffer.concat(out);
}
