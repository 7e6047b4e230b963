/**
 * The response writer: ResponseValue trees -> IMAP bytes (RFC 3501 4, 7; RFC 9051 4.3 for UTF-8
 * quoted strings; RFC 3516 for `~{n}`). Each response line becomes one Buffer (plus streamed
 * literals), and ResponseWriter queues lines behind backpressure and streamed literals so that
 * callers can emit responses synchronously.
 */
import type { Readable } from 'node:stream';
import type { ResponseValue } from './values.js';

/** Writer options. */
export interface WriterOptions {
  /** UTF8=ACCEPT is enabled: quoted strings may carry UTF-8. */
  utf8?: boolean;
}

/** A streamed literal waiting in a line (its `{n}\r\n` header is already in the preceding Buffer). */
interface StreamPart {
  stream: () => Readable;
  size: number;
}

type Part = Buffer | StreamPart;

/** Longest string (in bytes) written as a quoted string; anything longer becomes a literal. */
const MAX_QUOTED = 1024;
/** Queued buffers are merged into writes of up to this size when flushing after backpressure. */
const COALESCE = 64 * 1024;
/** Characters of literal-free lines batched into one Buffer. */
const TEXT_BATCH = 32 * 1024;

const CRLF = '\r\n';

/** Accumulates one line: text for everything but literals, Buffers for literal bodies. */
class LineEncoder {
  text = '';
  readonly parts: Part[] = [];
  constructor(
    private readonly utf8: boolean,
    private readonly allowStreams: boolean,
  ) {}

  value(v: ResponseValue): void {
    if (v === null) {
      this.text += 'NIL';
    } else if (typeof v === 'string') {
      this.string(v);
    } else if (typeof v === 'number') {
      // IMAP numbers are unsigned integers; anything else is a caller bug that would corrupt the stream.
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not an IMAP number: ${v}`);
      this.text += String(v);
    } else if (typeof v === 'bigint') {
      if (v < 0n) throw new RangeError(`not an IMAP number: ${v}`);
      this.text += v.toString();
    } else if (Array.isArray(v)) {
      this.text += '(';
      for (let i = 0; i < v.length; i++) {
        if (i > 0) this.text += ' ';
        this.value(v[i]);
      }
      this.text += ')';
    } else if ('adjacent' in v) {
      this.text += '(';
      for (const item of v.adjacent) this.value(item);
      this.text += ')';
    } else if ('atom' in v) {
      const a = v.atom;
      // An atom is written verbatim; a CR or LF in it would let text inject a response line.
      if (v.checked !== true && (a.indexOf('\r') >= 0 || a.indexOf('\n') >= 0)) throw new Error(`atom holds CR or LF: ${JSON.stringify(a)}`);
      this.text += a;
    } else if ('literal' in v) {
      this.literal(v.literal, v.binary === true);
    } else if ('stream' in v) {
      if (!this.allowStreams) throw new Error('stream literal outside ResponseWriter.untagged');
      if (!Number.isSafeInteger(v.size) || v.size < 0) throw new RangeError(`bad stream literal size: ${v.size}`);
      this.text += `${v.binary === true ? '~' : ''}{${v.size}}${CRLF}`;
      this.flushText();
      this.parts.push({ stream: v.stream, size: v.size });
    } else {
      throw new TypeError('unknown response value');
    }
  }

  private string(s: string): void {
    const len = s.length;
    // UTF-8 never takes fewer bytes than UTF-16 code units, so a long string is a literal at once.
    if (len > MAX_QUOTED) {
      this.literal(Buffer.from(s, 'utf8'), false);
      return;
    }
    let escape = false;
    let wide = false;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c === 0x7f) {
        this.literal(Buffer.from(s, 'utf8'), false);
        return;
      }
      if (c > 0x7f) {
        if (!this.utf8) {
          this.literal(Buffer.from(s, 'utf8'), false);
          return;
        }
        wide = true;
      } else if (c === 0x22 || c === 0x5c) {
        escape = true;
      }
    }
    if (wide && Buffer.byteLength(s, 'utf8') > MAX_QUOTED) {
      this.literal(Buffer.from(s, 'utf8'), false);
      return;
    }
    this.text += '"' + (escape ? s.replace(/["\\]/g, '\\$&') : s) + '"';
  }

  private literal(data: Buffer, binary: boolean): void {
    this.text += `${binary ? '~' : ''}{${data.length}}${CRLF}`;
    if (data.length === 0) return;
    this.flushText();
    this.parts.push(data);
  }

  private flushText(): void {
    if (this.text !== '') {
      this.parts.push(Buffer.from(this.text, 'utf8'));
      this.text = '';
    }
  }

  /** Ends the line: its text when it holds no literal (the common case), else its parts. */
  finishLine(): string | Part[] {
    if (this.parts.length === 0) return this.text + CRLF;
    return this.finish();
  }

  /** Ends the line and returns its parts (a single Buffer unless literals were involved). */
  finish(): Part[] {
    this.text += CRLF;
    this.flushText();
    return this.parts;
  }
}

/** Joins the buffers of a stream-free line. */
function joinParts(parts: Part[]): Buffer {
  if (parts.length === 1) return parts[0] as Buffer;
  return Buffer.concat(parts as Buffer[]);
}

/** Encodes one value (no streamed literals: those throw). */
export function encodeValue(v: ResponseValue, opts?: WriterOptions): Buffer {
  const enc = new LineEncoder(opts?.utf8 === true, false);
  enc.value(v);
  const parts = enc.parts;
  if (enc.text !== '') parts.push(Buffer.from(enc.text, 'utf8'));
  if (parts.length === 0) return Buffer.alloc(0);
  return joinParts(parts);
}

/** Encodes "<prefix> v1 v2...\r\n" (no streamed literals: those throw). */
export function encodeLine(prefix: string, values: ResponseValue[], opts?: WriterOptions): Buffer {
  return joinParts(lineParts(prefix, values, opts?.utf8 === true, false));
}

/** An encoder holding "<prefix> v1 v2..." (the line not yet ended). */
function encodeValues(prefix: string, values: ResponseValue[], utf8: boolean, allowStreams: boolean): LineEncoder {
  const enc = new LineEncoder(utf8, allowStreams);
  enc.text = prefix;
  for (let i = 0; i < values.length; i++) {
    enc.text += ' ';
    enc.value(values[i]);
  }
  return enc;
}

function lineParts(prefix: string, values: ResponseValue[], utf8: boolean, allowStreams: boolean): Part[] {
  return encodeValues(prefix, values, utf8, allowStreams).finish();
}

/** Encodes one line for the writer: its text when literal-free, else its parts. */
function lineOut(prefix: string, values: ResponseValue[], utf8: boolean): string | Part[] {
  return encodeValues(prefix, values, utf8, true).finishLine();
}

/** Free text of a status response: CR, LF and NUL would break the line, so they become spaces. */
function cleanText(text: string): string {
  return /[\r\n\0]/.test(text) ? text.replace(/[\r\n\0]/g, ' ') : text;
}

/** Response codes and tags are built by the server itself; a line break in one is a bug. */
function checkNoBreak(what: string, s: string): void {
  if (s.indexOf('\r') >= 0 || s.indexOf('\n') >= 0) throw new Error(`${what} holds CR or LF: ${JSON.stringify(s)}`);
}

/** Writable features used when the sink offers them (NodeJS.WritableStream does not declare them). */
interface SinkExtras {
  cork?: () => void;
  uncork?: () => void;
  destroy?: (err?: Error) => void;
}

/** Bookkeeping for one sink: bytes handed to it whose write callbacks have not fired yet. */
class SinkState {
  outstanding = 0;
  // FIFO of write sizes; Writable calls write callbacks in order.
  private sizes: number[] = [];
  private head = 0;
  corked = false;
  readonly onWritten: (err?: Error | null) => void;

  constructor(
    readonly sink: NodeJS.WritableStream,
    done: (state: SinkState, err?: Error | null) => void,
  ) {
    this.onWritten = (err) => {
      this.outstanding -= this.sizes[this.head++];
      if (this.head > 1024 && this.head * 2 > this.sizes.length) {
        this.sizes = this.sizes.slice(this.head);
        this.head = 0;
      }
      done(this, err);
    };
  }

  record(size: number): void {
    this.sizes.push(size);
    this.outstanding += size;
  }
}

/**
 * Writes responses to a sink (socket, TLS socket, deflate stream). All methods are synchronous;
 * output is queued while the sink pushes back or a streamed literal is being copied.
 */
export class ResponseWriter {
  private utf8On: boolean;
  private state: SinkState;
  private readonly queue: Part[] = [];
  private qHead = 0;
  private queuedBytes = 0;
  /** Sink said write() === false: hold output until 'drain'. */
  private blocked = false;
  /** The streamed literal being copied, if any. */
  private active: { source: Readable; size: number; seen: number; paused: boolean } | undefined;
  private failed: Error | undefined;
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  /**
   * Literal-free untagged lines not yet turned into bytes: a FETCH of thousands of messages then
   * makes one Buffer per TEXT_BATCH characters instead of one per line. Flushed before any other
   * output, when it grows past TEXT_BATCH, at the end of the tick, and by drain().
   */
  private text = '';
  private textFlushQueued = false;

  private readonly flushTextTick = (): void => {
    this.textFlushQueued = false;
    this.flushText();
  };

  private readonly onDrain = (): void => {
    this.blocked = false;
    const a = this.active;
    if (a) {
      if (a.paused) {
        a.paused = false;
        a.source.resume();
      }
      return;
    }
    this.pump();
  };

  private readonly uncorkTick = (state: SinkState): void => {
    if (state.corked) {
      state.corked = false;
      (state.sink as SinkExtras).uncork?.();
    }
  };

  private readonly written = (state: SinkState, err?: Error | null): void => {
    // A sink swapped out (the plain socket under TLS) reports to its successor, not to us.
    if (state !== this.state) return;
    if (err) {
      this.fail(err);
      return;
    }
    this.checkIdle();
  };

  /** Creates a writer on a sink. */
  constructor(sink: NodeJS.WritableStream, opts?: WriterOptions) {
    this.utf8On = opts?.utf8 === true;
    this.state = this.attach(sink);
  }

  /** UTF8=ACCEPT enabled: quoted strings may carry UTF-8. */
  set utf8(on: boolean) {
    this.utf8On = on;
  }

  /** Whether UTF-8 quoted strings are on. */
  get utf8(): boolean {
    return this.utf8On;
  }

  /** Writes "* v1 v2...\r\n"; values may hold streamed literals, copied in order. */
  untagged(values: ResponseValue[]): void {
    const out = lineOut('*', values, this.utf8On);
    if (typeof out === 'string') {
      if (this.failed) return;
      this.text += out;
      if (this.text.length >= TEXT_BATCH) this.flushText();
      else if (!this.textFlushQueued) {
        this.textFlushQueued = true;
        process.nextTick(this.flushTextTick);
      }
      return;
    }
    this.flushText();
    if (out.length === 1) this.send(out[0] as Buffer);
    else this.sendParts(out);
  }

  /** Turns the batched lines into one Buffer and sends it. */
  private flushText(): void {
    if (this.text === '') return;
    const text = this.text;
    this.text = '';
    this.send(Buffer.from(text, 'utf8'));
  }

  /** Writes "tag STATUS [code] text\r\n". */
  tagged(tag: string, status: 'OK' | 'NO' | 'BAD' | 'PREAUTH' | 'BYE', code: string | undefined, text: string): void {
    checkNoBreak('tag', tag);
    this.flushText();
    this.send(Buffer.from(statusLine(tag, status, code, text), 'utf8'));
  }

  /** Writes "+ text\r\n" (a command continuation request). */
  continuation(text: string): void {
    this.flushText();
    this.send(Buffer.from(`+ ${cleanText(text)}${CRLF}`, 'utf8'));
  }

  /** Writes "* BYE [code] text\r\n". */
  bye(text: string, code?: string): void {
    this.flushText();
    this.send(Buffer.from(statusLine('*', 'BYE', code, text), 'utf8'));
  }

  /** Writes pre-encoded bytes. */
  raw(buf: Buffer): void {
    this.flushText();
    if (buf.length > 0) this.send(buf);
  }

  /** Bytes accepted by the writer that the sink has not finished writing (queued here or buffered there). */
  get pending(): number {
    let n = this.queuedBytes + this.state.outstanding + this.text.length;
    if (this.active) n += this.active.size - this.active.seen;
    return n;
  }

  /** Resolves once everything written so far has been flushed by the sink; rejects if the writer failed. */
  drain(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    this.flushText();
    // Flush a pending cork now rather than next tick: the caller is waiting for the bytes to leave.
    this.uncorkTick(this.state);
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Swaps the sink (after STARTTLS or COMPRESS); only once drained, else queued output would go astray. */
  setSink(sink: NodeJS.WritableStream): void {
    if (this.text !== '') throw new Error('ResponseWriter.setSink called with output still batched: await drain() first');
    if (this.qHead < this.queue.length || this.active) {
      throw new Error('ResponseWriter.setSink called with output still queued: await drain() first');
    }
    this.uncorkTick(this.state);
    this.state.sink.removeListener('drain', this.onDrain);
    this.blocked = false;
    this.state = this.attach(sink);
  }

  private attach(sink: NodeJS.WritableStream): SinkState {
    sink.on('drain', this.onDrain);
    return new SinkState(sink, this.written);
  }

  /** Hot path: one line, no literals to stream. */
  private send(buf: Buffer): void {
    if (this.failed) return;
    if (this.blocked || this.active || this.qHead < this.queue.length) {
      this.enqueue(buf);
      return;
    }
    this.write(buf);
  }

  private sendParts(parts: Part[]): void {
    if (this.failed) return;
    for (const p of parts) this.enqueue(p);
    if (!this.blocked && !this.active) this.pump();
  }

  private enqueue(p: Part): void {
    this.queue.push(p);
    this.queuedBytes += Buffer.isBuffer(p) ? p.length : p.size;
  }

  private write(buf: Buffer): void {
    const st = this.state;
    const extras = st.sink as SinkExtras;
    // Cork for the rest of this tick so a burst of lines leaves in one writev, not one syscall each.
    if (!st.corked && typeof extras.cork === 'function' && typeof extras.uncork === 'function') {
      st.corked = true;
      extras.cork();
      process.nextTick(this.uncorkTick, st);
    }
    st.record(buf.length);
    if (!st.sink.write(buf, st.onWritten)) this.blocked = true;
  }

  /** Writes queued output until the sink pushes back or a streamed literal starts. */
  private pump(): void {
    const q = this.queue;
    while (!this.failed && !this.blocked && !this.active && this.qHead < q.length) {
      const p = q[this.qHead];
      if (Buffer.isBuffer(p)) {
        // Merge a run of small queued buffers into one write.
        let end = this.qHead + 1;
        let total = p.length;
        while (end < q.length) {
          const nx = q[end];
          if (!Buffer.isBuffer(nx) || total + nx.length > COALESCE) break;
          total += nx.length;
          end++;
        }
        const buf = end - this.qHead === 1 ? p : Buffer.concat(q.slice(this.qHead, end) as Buffer[], total);
        for (let i = this.qHead; i < end; i++) q[i] = undefined as unknown as Part;
        this.qHead = end;
        this.queuedBytes -= total;
        this.write(buf);
      } else {
        q[this.qHead++] = undefined as unknown as Part;
        this.queuedBytes -= p.size;
        this.copy(p);
      }
    }
    if (this.qHead >= q.length) {
      q.length = 0;
      this.qHead = 0;
    } else if (this.qHead > 4096 && this.qHead * 2 > q.length) {
      q.splice(0, this.qHead);
      this.qHead = 0;
    }
    this.checkIdle();
  }

  private copy(p: StreamPart): void {
    let source: Readable;
    try {
      source = p.stream();
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    const a = { source, size: p.size, seen: 0, paused: false };
    this.active = a;
    const cleanup = (): void => {
      source.removeListener('data', onData);
      source.removeListener('end', onEnd);
      source.removeListener('error', onError);
      source.removeListener('close', onClose);
    };
    const onData = (chunk: Buffer | string): void => {
      if (this.active !== a) return;
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      a.seen += buf.length;
      if (a.seen > a.size) {
        cleanup();
        source.destroy();
        this.fail(new Error(`streamed literal overran its announced size of ${a.size} bytes`));
        return;
      }
      if (buf.length === 0) return;
      const st = this.state;
      st.record(buf.length);
      if (!st.sink.write(buf, st.onWritten)) {
        this.blocked = true;
        a.paused = true;
        source.pause();
      }
    };
    const onEnd = (): void => {
      cleanup();
      if (this.active !== a) return;
      if (a.seen !== a.size) {
        this.fail(new Error(`streamed literal ended after ${a.seen} of ${a.size} announced bytes`));
        return;
      }
      this.active = undefined;
      if (!this.blocked) this.pump();
    };
    const onError = (err: Error): void => {
      cleanup();
      if (this.active !== a) return;
      this.fail(err);
    };
    // A source destroyed without an error emits neither 'end' nor 'error'; without this the writer would hang.
    const onClose = (): void => {
      cleanup();
      if (this.active !== a) return;
      this.fail(new Error(`streamed literal closed after ${a.seen} of ${a.size} announced bytes`));
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
    source.once('close', onClose);
  }

  private idle(): boolean {
    return !this.active && this.qHead >= this.queue.length && this.state.outstanding === 0;
  }

  private checkIdle(): void {
    if (this.waiters.length === 0 || !this.idle()) return;
    const w = this.waiters;
    this.waiters = [];
    for (const x of w) x.resolve();
  }

  /**
   * The output can no longer be trusted (a literal came out short or long, the source or the sink
   * failed): the client would misparse everything after it, so the sink is destroyed.
   */
  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.text = '';
    const a = this.active;
    this.active = undefined;
    if (a) a.source.destroy();
    this.queue.length = 0;
    this.qHead = 0;
    this.queuedBytes = 0;
    const sink = this.state.sink as NodeJS.WritableStream & SinkExtras;
    if (typeof sink.destroy === 'function') sink.destroy(err);
    else sink.emit('error', err);
    const w = this.waiters;
    this.waiters = [];
    for (const x of w) x.reject(err);
  }
}

function statusLine(tag: string, status: string, code: string | undefined, text: string): string {
  let line = `${tag} ${status}`;
  if (code !== undefined && code !== '') {
    checkNoBreak('response code', code);
    line += ` [${code}]`;
  }
  const t = cleanText(text);
  // RFC 9051 makes the text optional; RFC 3501 wants at least one character, so send none rather than a bare space.
  if (t !== '') line += ` ${t}`;
  return line + CRLF;
}
