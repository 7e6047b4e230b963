/**
 * A tiny raw IMAP client for interop tests: one socket, commands written byte for byte, responses
 * framed (lines plus `{n}` / `~{n}` literals) and parsed into a nested value tree. Deliberately
 * independent of src/ so that it can judge our own server as well as Dovecot.
 */
import net from 'node:net';

/** A quoted string or literal from a response: its bytes, and the form the server chose. */
export interface ImapString {
  bytes: Buffer;
  form: 'quoted' | 'literal' | 'literal8';
}

/**
 * A value of a parsed response: null for NIL, a JS string for an atom or number (e.g. "FETCH",
 * "12", "\\Seen", "BODY[HEADER.FIELDS (FROM)]<0>"), an ImapString for quoted strings and literals,
 * an array for a parenthesised list.
 */
export type ImapValue = null | string | ImapString | ImapValue[];

/** One untagged (`*`) or continuation (`+`) response. */
export interface ImapUntagged {
  /** Exact bytes as received, literals included. */
  raw: Buffer;
  /**
   * Parsed values after `*`. Status responses (OK, NO, BAD, BYE, PREAUTH, also after a number) keep
   * their text unparsed: [status, code-or-null, text], e.g. ["OK", "UIDNEXT 5", "Predicted next UID"].
   */
  values: ImapValue[];
}

/** The outcome of one tagged command. */
export interface ImapResponse {
  tag: string;
  /** OK, NO or BAD (upper case as sent). */
  status: string;
  /** Response code inside `[...]` without the brackets, e.g. "APPENDUID 1 5". */
  code: string | null;
  text: string;
  /** Untagged responses received while the command ran, in order. */
  untagged: ImapUntagged[];
  /** Exact bytes of the tagged line. */
  raw: Buffer;
}

/** Thrown when a response cannot be parsed into values. */
export class ImapParseError extends Error {}

const STATUS_WORDS = new Set(['OK', 'NO', 'BAD', 'BYE', 'PREAUTH']);

/** Text of an ImapString or atom, for assertions (UTF-8); null for NIL or a list. */
export function text(v: ImapValue | undefined): string | null {
  if (v === null || v === undefined || Array.isArray(v)) return null;
  return typeof v === 'string' ? v : v.bytes.toString('utf8');
}

/**
 * Parse a sequence of IMAP values from `buf` starting at `pos` (literals are read in place) until
 * the end of the buffer or an unmatched `)`. Returns the values and where parsing stopped.
 */
export function parseValues(buf: Buffer, pos = 0): { values: ImapValue[]; end: number } {
  const stack: ImapValue[][] = [[]];
  let i = pos;
  const n = buf.length;
  while (i < n) {
    const c = buf[i]!;
    if (c === 0x20 || c === 0x0d || c === 0x0a) {
      i++;
      continue;
    }
    const top = stack[stack.length - 1]!;
    if (c === 0x28) {
      const list: ImapValue[] = [];
      top.push(list);
      stack.push(list);
      i++;
      continue;
    }
    if (c === 0x29) {
      if (stack.length === 1) return { values: stack[0]!, end: i };
      stack.pop();
      i++;
      continue;
    }
    if (c === 0x22) {
      // quoted string: backslash escapes any following byte
      const out: number[] = [];
      i++;
      while (i < n && buf[i] !== 0x22) {
        if (buf[i] === 0x5c && i + 1 < n) i++;
        out.push(buf[i]!);
        i++;
      }
      if (i >= n) throw new ImapParseError('unterminated quoted string');
      i++;
      top.push({ bytes: Buffer.from(out), form: 'quoted' });
      continue;
    }
    if (c === 0x7b || (c === 0x7e && buf[i + 1] === 0x7b)) {
      const binary = c === 0x7e;
      const close = buf.indexOf(0x7d, i);
      if (close < 0) throw new ImapParseError('unterminated literal size');
      const size = Number.parseInt(buf.toString('latin1', i + (binary ? 2 : 1), close).replace('+', ''), 10);
      let start = close + 1;
      if (buf[start] === 0x0d) start++;
      if (buf[start] === 0x0a) start++;
      if (!Number.isFinite(size) || start + size > n) throw new ImapParseError('literal runs past the response');
      top.push({ bytes: Buffer.from(buf.subarray(start, start + size)), form: binary ? 'literal8' : 'literal' });
      i = start + size;
      continue;
    }
    // atom (numbers too); brackets nest and may hold spaces and parentheses: BODY[HEADER.FIELDS (A B)]<0>
    const start = i;
    let depth = 0;
    while (i < n) {
      const d = buf[i]!;
      if (d === 0x5b) depth++;
      else if (d === 0x5d) depth = Math.max(0, depth - 1);
      else if (depth === 0 && (d === 0x20 || d === 0x28 || d === 0x29 || d === 0x0d || d === 0x0a)) break;
      i++;
    }
    const word = buf.toString('latin1', start, i);
    top.push(word.toUpperCase() === 'NIL' ? null : word);
  }
  if (stack.length !== 1) throw new ImapParseError('unbalanced parentheses');
  return { values: stack[0]!, end: i };
}

/** Split "[CODE args] text" into code and text. */
function splitRespText(rest: string): { code: string | null; text: string } {
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close > 0) return { code: rest.slice(1, close), text: rest.slice(close + 1).trimStart() };
  }
  return { code: null, text: rest };
}

/** Parse the bytes of one untagged response (starting with "* " or "+ ") into values. */
export function parseUntagged(raw: Buffer): ImapValue[] {
  if (raw[0] === 0x2b) return ['+', raw.toString('utf8', 1).trim()];
  const line = raw.toString('latin1', 2, Math.min(raw.length, raw.indexOf('\r\n') < 0 ? raw.length : raw.indexOf('\r\n')));
  const words = line.split(' ');
  let statusAt = -1;
  if (STATUS_WORDS.has((words[0] ?? '').toUpperCase())) statusAt = 0;
  else if (/^\d+$/.test(words[0] ?? '') && STATUS_WORDS.has((words[1] ?? '').toUpperCase())) statusAt = 1;
  if (statusAt >= 0) {
    // status responses carry human text, not values
    const head = words.slice(0, statusAt + 1);
    const rest = Buffer.from(line, 'latin1').toString('utf8').split(' ').slice(statusAt + 1).join(' ');
    const { code, text: t } = splitRespText(rest);
    return [...head, code, t];
  }
  return parseValues(raw, 2).values;
}

/** A connection to an IMAP server speaking the raw protocol. */
export class RawImapClient {
  private socket: net.Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private pending: Buffer[] = [];
  private waiters: Array<(r: Buffer | Error) => void> = [];
  private closedError: Error | null = null;
  private tagCounter = 0;
  /** Untagged responses not yet claimed by a command (e.g. received during IDLE). */
  readonly unsolicited: ImapUntagged[] = [];
  /** The greeting's values, e.g. ["OK", "CAPABILITY IMAP4rev1 ...", "ready"]. */
  greeting: ImapValue[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.frame();
    });
    const fail = (err: Error): void => {
      this.closedError ??= err;
      for (const w of this.waiters.splice(0)) w(this.closedError);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  /** Connect and read the greeting. */
  static async connect(port: number, host = '127.0.0.1'): Promise<RawImapClient> {
    const socket = net.connect({ port, host });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    const client = new RawImapClient(socket);
    client.greeting = parseUntagged(await client.next());
    return client;
  }

  /** Cut complete responses (line plus any literals) out of the input buffer. */
  private frame(): void {
    let pos = 0;
    for (;;) {
      let scan = pos;
      let complete = -1;
      for (;;) {
        const lf = this.buffer.indexOf(0x0a, scan);
        if (lf < 0) break;
        // a line ending in {n} or ~{n} (optionally {n+}) announces n literal bytes
        const m = /~?\{(\d+)\+?\}\r?$/.exec(this.buffer.toString('latin1', Math.max(scan, lf - 24), lf));
        if (!m) {
          complete = lf + 1;
          break;
        }
        const after = lf + 1 + Number(m[1]);
        if (after > this.buffer.length) break;
        scan = after;
      }
      if (complete < 0) break;
      this.deliver(this.buffer.subarray(pos, complete));
      pos = complete;
    }
    if (pos > 0) this.buffer = this.buffer.subarray(pos);
  }

  private deliver(resp: Buffer): void {
    const copy = Buffer.from(resp);
    const w = this.waiters.shift();
    if (w) w(copy);
    else this.pending.push(copy);
  }

  /** The next complete response (untagged, continuation or tagged) as raw bytes. */
  next(timeoutMs = 30_000): Promise<Buffer> {
    const ready = this.pending.shift();
    if (ready) return Promise.resolve(ready);
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        const idx = this.waiters.indexOf(settle);
        if (idx >= 0) this.waiters.splice(idx, 1);
        reject(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = (r: Buffer | Error): void => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.waiters.push(settle);
    });
  }

  /** Write bytes as they are. */
  sendRaw(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** A fresh tag (A0001, A0002, ...). */
  nextTag(): string {
    this.tagCounter++;
    return `A${String(this.tagCounter).padStart(4, '0')}`;
  }

  /**
   * Run one command. `parts` are joined as written; a Buffer part is sent as a synchronising
   * literal `{n}` (waiting for the `+` continuation) unless `literalPlus` is set, in which case it
   * is sent as `{n+}` at once. Resolves with the tagged response and the untagged ones before it.
   */
  async command(parts: string | Array<string | Buffer>, opts: { literalPlus?: boolean; binary?: boolean; timeoutMs?: number } = {}): Promise<ImapResponse> {
    const list = typeof parts === 'string' ? [parts] : parts;
    const tag = this.nextTag();
    const untagged: ImapUntagged[] = [];
    let out: Buffer[] = [Buffer.from(`${tag} `)];
    for (const p of list) {
      if (typeof p === 'string') {
        out.push(Buffer.from(p, 'utf8'));
        continue;
      }
      const head = `${opts.binary ? '~' : ''}{${p.length}${opts.literalPlus ? '+' : ''}}\r\n`;
      out.push(Buffer.from(head));
      if (!opts.literalPlus) {
        this.sendRaw(Buffer.concat(out));
        out = [];
        // wait for the continuation; a tagged answer here means the server refused the literal
        for (;;) {
          const r = await this.next(opts.timeoutMs);
          if (r[0] === 0x2b) break;
          if (r[0] === 0x2a) {
            untagged.push({ raw: r, values: parseUntagged(r) });
            continue;
          }
          return this.tagged(r, untagged);
        }
      }
      out.push(p);
    }
    out.push(Buffer.from('\r\n'));
    this.sendRaw(Buffer.concat(out));
    return this.collect(tag, untagged, opts.timeoutMs);
  }

  /** Read responses until the tagged one for `tag`. */
  async collect(tag: string, untagged: ImapUntagged[] = [], timeoutMs?: number): Promise<ImapResponse> {
    for (;;) {
      const r = await this.next(timeoutMs);
      if (r[0] === 0x2a || r[0] === 0x2b) {
        untagged.push({ raw: r, values: parseUntagged(r) });
        continue;
      }
      if (r.toString('latin1', 0, tag.length + 1) === `${tag} `) return this.tagged(r, untagged);
      this.unsolicited.push({ raw: r, values: parseUntagged(r) });
    }
  }

  private tagged(r: Buffer, untagged: ImapUntagged[]): ImapResponse {
    const line = r.toString('utf8').replace(/\r?\n$/, '');
    const [tag = '', status = '', ...rest] = line.split(' ');
    const { code, text: t } = splitRespText(rest.join(' '));
    return { tag, status: status.toUpperCase(), code, text: t, untagged, raw: r };
  }

  /** LOGIN with quoted credentials; throws unless OK. */
  async login(user: string, password: string): Promise<ImapResponse> {
    const r = await this.command(`LOGIN ${quote(user)} ${quote(password)}`);
    if (r.status !== 'OK') throw new Error(`LOGIN failed: ${r.status} ${r.text}`);
    return r;
  }

  /** APPEND one message (synchronising literal unless literalPlus). */
  append(mailbox: string, message: Buffer, flags: string[] = [], opts: { literalPlus?: boolean; binary?: boolean } = {}): Promise<ImapResponse> {
    const fl = flags.length ? ` (${flags.join(' ')})` : '';
    return this.command([`APPEND ${quote(mailbox)}${fl} `, message], opts);
  }

  /** Send LOGOUT (ignoring errors) and close the socket. */
  async close(): Promise<void> {
    if (!this.closedError) {
      try {
        await this.command('LOGOUT', { timeoutMs: 5000 });
      } catch {
        // the server may close first
      }
    }
    this.socket.destroy();
  }
}

/** IMAP quoted string for ASCII text. */
export function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * Pairs of FETCH data items from an untagged FETCH response's values (["12", "FETCH", [...]]),
 * as a Map keyed by the item name as sent (upper-cased), e.g. "BODY[1]", "ENVELOPE".
 */
export function fetchItems(values: ImapValue[]): Map<string, ImapValue> {
  const out = new Map<string, ImapValue>();
  const list = values[2];
  if (!Array.isArray(list)) return out;
  for (let i = 0; i + 1 < list.length; i += 2) {
    const key = list[i];
    if (typeof key === 'string') out.set(key.toUpperCase(), list[i + 1] ?? null);
  }
  return out;
}
