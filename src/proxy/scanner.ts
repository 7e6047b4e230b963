/**
 * After authentication the proxy passes bytes untouched, but it watches two things:
 * - client → server: command boundaries (literals skipped by their announced size) so that a
 *   `tag LOGOUT` can be answered by the proxy and the upstream connection kept; and commands that
 *   change session state in ways a later client must not inherit (ENABLE, CONDSTORE, COMPRESS...);
 * - server → client, only while the proxy waits for its own command: that command's tagged reply.
 */
import { literalAtEnd } from './framer.js';

const LF = 0x0a;
/** A first line longer than this cannot be `tag LOGOUT`: it is forwarded without waiting for its end. */
const HEAD_MAX = 128;
/** Command text (outside literals) examined for state-changing keywords; longer commands make the session uncacheable. */
const TEXT_MAX = 4096;
const LOGOUT_LINE = /^[^\s(){%*"\\\]+]{1,100} LOGOUT\r?\n$/i;
// Commands after which the upstream session differs from a fresh login in a way a client could notice.
const STATEFUL = new Set(['ENABLE', 'COMPRESS', 'NOTIFY', 'LANGUAGE', 'UNAUTHENTICATE', 'AUTHENTICATE', 'LOGIN', 'STARTTLS', 'CONTEXT']);
// CONDSTORE/QRESYNC are turned on implicitly by these words (RFC 7162 3.1): once on, FETCH replies carry MODSEQ.
const STATEFUL_WORDS = /CONDSTORE|QRESYNC|MODSEQ|CHANGEDSINCE|RETURN\s*\([^)]*UPDATE/i;

/** What feeding one chunk produced. */
export interface ScanResult {
  /** Bytes to send upstream, in order (often just the chunk itself). */
  forward: Buffer[];
  /** Set when a `tag LOGOUT` command was found: it and everything after it are not forwarded. */
  logoutTag?: string;
}

/** Watches the client → server stream of an authenticated session. */
export class ClientStreamScanner {
  /** A SELECT or EXAMINE was sent: the upstream may be in the selected state. */
  sawSelect = false;
  /** Why the session may not be cached (undefined: it may). */
  uncacheable: string | undefined;
  /** After COMPRESS the stream is opaque: no more scanning. */
  passthrough = false;
  /** Commands seen (statistics). */
  commands = 0;

  private literalRemaining = 0;
  private commandStart = true;
  private held: Buffer | undefined;
  private text = '';
  private lineTail = '';
  private firstLine = true;

  /** Process one chunk from the client. */
  feed(chunk: Buffer): ScanResult {
    if (this.passthrough) return { forward: [chunk] };
    const out: Buffer[] = [];
    let fwdStart = 0;
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.literalRemaining > 0) {
        const n = Math.min(this.literalRemaining, len - pos);
        pos += n;
        this.literalRemaining -= n;
        continue;
      }
      const deciding = this.commandStart;
      const nl = chunk.indexOf(LF, pos);
      const end = nl === -1 ? len : nl + 1;
      const piece = chunk.subarray(pos, end);
      if (deciding) {
        const headLen = (this.held?.length ?? 0) + piece.length;
        if (nl === -1 && headLen <= HEAD_MAX) {
          // Not yet known whether this is LOGOUT: hold the bytes back until the line ends.
          if (pos > fwdStart) out.push(chunk.subarray(fwdStart, pos));
          this.held = this.held ? Buffer.concat([this.held, piece]) : Buffer.from(piece);
          this.addText(piece);
          fwdStart = len;
          pos = len;
          break;
        }
        if (nl !== -1 && headLen <= HEAD_MAX) {
          const line = this.held ? Buffer.concat([this.held, piece]) : piece;
          if (LOGOUT_LINE.test(line.toString('latin1'))) {
            if (pos > fwdStart) out.push(chunk.subarray(fwdStart, pos));
            this.held = undefined;
            this.commands++;
            return { forward: out, logoutTag: line.toString('latin1').split(' ')[0] };
          }
        }
        if (this.held) {
          if (pos > fwdStart) out.push(chunk.subarray(fwdStart, pos));
          out.push(this.held);
          this.held = undefined;
          fwdStart = pos;
        }
        this.commandStart = false;
      }
      this.addText(piece);
      pos = end;
      if (nl !== -1) {
        this.endOfLine();
        if (this.passthrough) break;
      }
    }
    if (fwdStart < len) out.push(fwdStart === 0 ? chunk : chunk.subarray(fwdStart));
    return { forward: out };
  }

  private addText(piece: Buffer): void {
    const s = piece.toString('latin1');
    this.lineTail = (this.lineTail + s).slice(-24);
    if (this.text.length < TEXT_MAX) this.text += s.slice(0, TEXT_MAX - this.text.length + 1);
  }

  private endOfLine(): void {
    const text = this.text;
    if (text.length > TEXT_MAX) this.uncacheable ??= 'command too long to inspect';
    if (this.firstLine) {
      this.commands++;
      const words = text.trimEnd().split(' ');
      let name = (words[1] ?? '').toUpperCase();
      if (name === 'UID') name = (words[2] ?? '').toUpperCase();
      if (name === 'SELECT' || name === 'EXAMINE') this.sawSelect = true;
      if (STATEFUL.has(name)) this.uncacheable ??= name;
      if (name === 'COMPRESS') this.passthrough = true;
    }
    if (STATEFUL_WORDS.test(text)) this.uncacheable ??= 'CONDSTORE/QRESYNC';
    const m = text.length <= TEXT_MAX ? literalAtEnd(text) : literalAtEnd(this.lineTail, false);
    this.text = '';
    this.lineTail = '';
    if (m) {
      this.literalRemaining = m.size;
      this.firstLine = false;
      this.commandStart = false;
    } else {
      this.firstLine = true;
      this.commandStart = true;
    }
  }
}

/**
 * Finds the tagged reply to one command of the proxy's own in the server → client stream,
 * forwarding everything before it. The tag is random, so message text cannot fake it.
 */
export class TaggedReplyWatcher {
  private carry: Buffer = Buffer.alloc(0);
  private reply: Buffer | undefined;
  private readonly pattern: Buffer;

  /** `atLineStart`: the last byte already forwarded was LF (or nothing was). */
  constructor(
    readonly tag: string,
    private atLineStart = true,
  ) {
    this.pattern = Buffer.from(`\n${tag} `, 'latin1');
  }

  /** Feed server bytes; once `done`, `line` is the tagged reply and `rest` anything after it. */
  feed(chunk: Buffer): { forward: Buffer | undefined; done: boolean; line?: string; rest?: Buffer } {
    if (this.reply) {
      this.reply = Buffer.concat([this.reply, chunk]);
      return this.finishReply(undefined);
    }
    let data = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = Buffer.alloc(0);
    let idx: number;
    if (this.atLineStart && data.subarray(0, this.pattern.length - 1).equals(this.pattern.subarray(1))) {
      idx = -1;
    } else {
      idx = data.indexOf(this.pattern);
      if (idx === -1) {
        // Keep a tail that could be the start of the pattern split across chunks.
        const keep = Math.min(data.length, this.pattern.length - 1);
        const forward = data.subarray(0, data.length - keep);
        if (forward.length > 0) this.atLineStart = forward[forward.length - 1] === LF;
        this.carry = Buffer.from(data.subarray(data.length - keep));
        // With nothing forwarded, the line-start state that applies to the carry is unchanged.
        return { forward: forward.length ? forward : undefined, done: false };
      }
    }
    const forward = data.subarray(0, idx + 1);
    data = data.subarray(idx + 1);
    this.reply = data;
    return this.finishReply(forward.length ? forward : undefined);
  }

  private finishReply(forward: Buffer | undefined): { forward: Buffer | undefined; done: boolean; line?: string; rest?: Buffer } {
    const reply = this.reply as Buffer;
    const lf = reply.indexOf(LF);
    if (lf === -1) return { forward, done: false };
    const line = reply.subarray(0, lf).toString('latin1').replace(/\r$/, '');
    return { forward, done: true, line, rest: reply.subarray(lf + 1) };
  }
}
