import { describe, expect, it } from 'vitest';
import { Readable, Writable } from 'node:stream';
import { ResponseWriter, encodeLine, encodeValue } from '../../src/protocol/writer.js';
import { atom, type ResponseValue } from '../../src/protocol/values.js';

const enc = (v: ResponseValue, utf8 = false): string => encodeValue(v, { utf8 }).toString('utf8');

/** A sink that keeps everything and completes each write on a later turn (setImmediate), like a slow socket. */
class SlowSink extends Writable {
  readonly chunks: Buffer[] = [];
  writesWhileFull = 0;
  writeCalls = 0;
  maxBuffered = 0;
  constructor(highWaterMark: number, private readonly delayed = true) {
    super({ highWaterMark });
  }
  override write(chunk: unknown, ...rest: unknown[]): boolean {
    this.writeCalls++;
    // Writing after write() said false (before 'drain') ignores backpressure.
    if (this.writableNeedDrain) this.writesWhileFull++;
    const r = (super.write as (...a: unknown[]) => boolean)(chunk, ...rest);
    this.maxBuffered = Math.max(this.maxBuffered, this.writableLength);
    return r;
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    if (this.delayed) setImmediate(cb);
    else cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** A sink that only counts bytes and keeps the head and tail, for multi-megabyte output. */
class CountingSink extends Writable {
  total = 0;
  head = Buffer.alloc(0);
  tail = Buffer.alloc(0);
  maxBuffered = 0;
  bodyOk = true;
  constructor(private readonly bodyStart: number, private readonly bodySize: number) {
    super({ highWaterMark: 16 * 1024 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    // Check the streamed body byte by byte against the pattern the source produces.
    for (let i = 0; i < chunk.length; i++) {
      const pos = this.total + i - this.bodyStart;
      if (pos >= 0 && pos < this.bodySize && chunk[i] !== pattern(pos)) this.bodyOk = false;
    }
    this.total += chunk.length;
    if (this.head.length < 200) this.head = Buffer.concat([this.head, chunk]).subarray(0, 200);
    this.tail = Buffer.concat([this.tail, chunk]);
    if (this.tail.length > 200) this.tail = this.tail.subarray(this.tail.length - 200);
    this.maxBuffered = Math.max(this.maxBuffered, this.writableLength);
    setImmediate(cb);
  }
}

const pattern = (pos: number): number => 0x41 + (pos % 26);

/** A Readable producing `size` pattern bytes on demand, tracking how far it runs ahead of the consumer. */
function patternSource(size: number, counter: { produced: number }): Readable {
  let pos = 0;
  return new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (pos >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(64 * 1024, size - pos);
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = pattern(pos + i);
      pos += n;
      counter.produced += n;
      this.push(b);
    },
  });
}

describe('encodeValue', () => {
  it('writes NIL, numbers and bigints', () => {
    expect(enc(null)).toBe('NIL');
    expect(enc(0)).toBe('0');
    expect(enc(4294967295)).toBe('4294967295');
    expect(enc(18446744073709551615n)).toBe('18446744073709551615');
  });

  it('rejects numbers IMAP cannot express', () => {
    expect(() => encodeValue(-1)).toThrow(RangeError);
    expect(() => encodeValue(1.5)).toThrow(RangeError);
    expect(() => encodeValue(Number.NaN)).toThrow(RangeError);
    expect(() => encodeValue(-1n)).toThrow(RangeError);
  });

  it('writes atoms verbatim but refuses line breaks in them', () => {
    expect(enc(atom('\\Seen'))).toBe('\\Seen');
    expect(enc(atom('BODY[HEADER.FIELDS (SUBJECT)]'))).toBe('BODY[HEADER.FIELDS (SUBJECT)]');
    expect(() => encodeValue(atom('a\r\n* BYE'))).toThrow();
  });

  it('quotes short printable strings, escaping quote and backslash', () => {
    expect(enc('')).toBe('""');
    expect(enc('hello world')).toBe('"hello world"');
    expect(enc('NIL')).toBe('"NIL"');
    expect(enc('say "hi"')).toBe('"say \\"hi\\""');
    expect(enc('a\\b')).toBe('"a\\\\b"');
    expect(enc('\\"')).toBe('"\\\\\\""');
    expect(enc('~!#$%&*()[]{}')).toBe('"~!#$%&*()[]{}"');
  });

  it('uses literals for CR, LF, NUL and other control characters', () => {
    expect(enc('a\r\nb')).toBe('{4}\r\na\r\nb');
    expect(enc('a\nb')).toBe('{3}\r\na\nb');
    expect(enc('a\rb')).toBe('{3}\r\na\rb');
    expect(enc('a\0b')).toBe('{3}\r\na\0b');
    expect(enc('a\tb')).toBe('{3}\r\na\tb');
    expect(enc('\x7f')).toBe('{1}\r\n\x7f');
  });

  it('uses literals for 8-bit text unless UTF8=ACCEPT is on, counting UTF-8 bytes', () => {
    expect(enc('café')).toBe('{5}\r\ncafé');
    expect(encodeValue('café').subarray(0, 5).toString()).toBe('{5}\r\n');
    expect(enc('café', true)).toBe('"café"');
    expect(enc('😀 "x"', true)).toBe('"😀 \\"x\\""');
    // Control characters stay literals in UTF-8 mode too.
    expect(enc('é\n', true)).toBe('{3}\r\né\n');
  });

  it('quotes up to 1024 bytes and switches to a literal beyond', () => {
    expect(enc('x'.repeat(1024))).toBe(`"${'x'.repeat(1024)}"`);
    expect(enc('x'.repeat(1025))).toBe(`{1025}\r\n${'x'.repeat(1025)}`);
    // 600 characters but 1200 bytes in UTF-8: too long to quote.
    expect(enc('é'.repeat(600), true)).toBe(`{1200}\r\n${'é'.repeat(600)}`);
    expect(enc('é'.repeat(512), true)).toBe(`"${'é'.repeat(512)}"`);
  });

  it('writes literal buffers as {n} and binary ones as ~{n}, bytes untouched', () => {
    const bytes = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x80]);
    expect(encodeValue({ literal: bytes })).toEqual(Buffer.concat([Buffer.from('{5}\r\n'), bytes]));
    expect(encodeValue({ literal: bytes, binary: true })).toEqual(Buffer.concat([Buffer.from('~{5}\r\n'), bytes]));
    expect(enc({ literal: Buffer.alloc(0) })).toBe('{0}\r\n');
    expect(enc({ literal: Buffer.alloc(0), binary: true })).toBe('~{0}\r\n');
  });

  it('writes lists, nested and empty', () => {
    expect(enc([])).toBe('()');
    expect(enc([atom('\\Seen'), atom('\\Flagged')])).toBe('(\\Seen \\Flagged)');
    expect(enc([null, 'a', [1, [2n, []]], 'b\nc'])).toBe('(NIL "a" (1 (2 ())) {3}\r\nb\nc)');
  });

  it('refuses streamed literals', () => {
    const v: ResponseValue = { stream: () => Readable.from([]), size: 0 };
    expect(() => encodeValue(v)).toThrow();
    expect(() => encodeLine('*', [[v]])).toThrow();
  });
});

describe('encodeLine', () => {
  it('joins the prefix and values with spaces and ends with CRLF', () => {
    expect(encodeLine('*', [3, atom('EXISTS')]).toString()).toBe('* 3 EXISTS\r\n');
    expect(encodeLine('* OK', []).toString()).toBe('* OK\r\n');
  });

  it('builds a FETCH line with an inline literal as one buffer', () => {
    const body = Buffer.from('Subject: x\r\n\r\nhi\r\n');
    const line = encodeLine('*', [12, atom('FETCH'), [atom('UID'), 99, atom('BODY[]'), { literal: body }]]);
    expect(line.toString()).toBe(`* 12 FETCH (UID 99 BODY[] {${body.length}}\r\n${body.toString()})\r\n`);
  });

  it('writes an ENVELOPE-like structure with 8-bit text as literals, or quoted in UTF-8 mode', () => {
    const env: ResponseValue = ['Mon, 1 Jan 2024 00:00:00 +0000', 'Grüße', [['Zoë', null, 'zoe', 'example.com']], null];
    expect(encodeLine('*', [1, atom('FETCH'), [atom('ENVELOPE'), env]]).toString()).toBe(
      '* 1 FETCH (ENVELOPE ("Mon, 1 Jan 2024 00:00:00 +0000" {7}\r\nGrüße (({4}\r\nZoë NIL "zoe" "example.com")) NIL))\r\n',
    );
    expect(encodeLine('*', [env], { utf8: true }).toString()).toBe(
      '* ("Mon, 1 Jan 2024 00:00:00 +0000" "Grüße" (("Zoë" NIL "zoe" "example.com")) NIL)\r\n',
    );
  });
});

describe('ResponseWriter', () => {
  it('writes untagged, tagged, continuation, BYE and raw output in order', async () => {
    const sink = new SlowSink(1 << 20);
    const w = new ResponseWriter(sink);
    w.untagged([atom('CAPABILITY'), atom('IMAP4rev1'), atom('IDLE')]);
    w.tagged('a1', 'OK', 'READ-WRITE', 'SELECT completed');
    w.tagged('a2', 'NO', undefined, 'no such mailbox');
    w.tagged('a3', 'BAD', '', '');
    w.continuation('Ready');
    w.continuation('');
    w.bye('shutting down', 'UNAVAILABLE');
    w.bye('bye');
    w.raw(Buffer.from('* 1 EXISTS\r\n'));
    await w.drain();
    expect(sink.text()).toBe(
      '* CAPABILITY IMAP4rev1 IDLE\r\n' +
        'a1 OK [READ-WRITE] SELECT completed\r\n' +
        'a2 NO no such mailbox\r\n' +
        'a3 BAD\r\n' +
        '+ Ready\r\n' +
        '+ \r\n' +
        '* BYE [UNAVAILABLE] shutting down\r\n' +
        '* BYE bye\r\n' +
        '* 1 EXISTS\r\n',
    );
    expect(w.pending).toBe(0);
  });

  it('keeps status text on one line and refuses line breaks in tags and codes', async () => {
    const sink = new SlowSink(1 << 20);
    const w = new ResponseWriter(sink);
    w.tagged('a1', 'NO', undefined, 'bad\r\na2 OK injected\0');
    w.continuation('x\ny');
    await w.drain();
    expect(sink.text()).toBe('a1 NO bad  a2 OK injected \r\n+ x y\r\n');
    expect(() => w.tagged('a\r\n', 'OK', undefined, 'x')).toThrow();
    expect(() => w.tagged('a', 'OK', 'X\r\n', 'x')).toThrow();
  });

  it('quotes UTF-8 only after utf8 is switched on', async () => {
    const sink = new SlowSink(1 << 20);
    const w = new ResponseWriter(sink);
    w.untagged([atom('LIST'), [], '/', 'Grüße']);
    w.utf8 = true;
    w.untagged([atom('LIST'), [], '/', 'Grüße']);
    const w2 = new ResponseWriter(sink, { utf8: true });
    w2.untagged(['ü']);
    await w.drain();
    await w2.drain();
    expect(sink.text()).toBe('* LIST () "/" {7}\r\nGrüße\r\n* LIST () "/" "Grüße"\r\n* "ü"\r\n');
  });

  it('holds output while the sink pushes back and never writes past a false write()', async () => {
    const sink = new SlowSink(64);
    const w = new ResponseWriter(sink);
    const expected: string[] = [];
    for (let i = 1; i <= 500; i++) {
      w.untagged([i, atom('FETCH'), [atom('UID'), i + 1000, atom('FLAGS'), [atom('\\Seen')]]]);
      expected.push(`* ${i} FETCH (UID ${i + 1000} FLAGS (\\Seen))\r\n`);
    }
    w.tagged('a1', 'OK', undefined, 'FETCH completed');
    expected.push('a1 OK FETCH completed\r\n');
    const total = Buffer.byteLength(expected.join(''));
    // Everything was accepted synchronously; most of it waits in the writer's queue.
    expect(w.pending).toBe(total);
    expect(sink.writableLength).toBeLessThan(total);
    await w.drain();
    expect(w.pending).toBe(0);
    expect(sink.text()).toBe(expected.join(''));
    expect(sink.writesWhileFull).toBe(0);
    // Queued lines are merged: far fewer sink writes than lines.
    expect(sink.writeCalls).toBeLessThan(100);
  });

  it('lets many lines written in one tick leave in few sink writes (corking)', async () => {
    let writes = 0;
    let chunks = 0;
    const got: Buffer[] = [];
    const sink = new Writable({
      highWaterMark: 1 << 20,
      writev(batch, cb) {
        writes++;
        chunks += batch.length;
        for (const c of batch) got.push(c.chunk as Buffer);
        cb();
      },
      write(chunk: Buffer, _e, cb) {
        writes++;
        chunks++;
        got.push(chunk);
        cb();
      },
    });
    const w = new ResponseWriter(sink);
    for (let i = 1; i <= 100; i++) w.untagged([i, atom('EXPUNGE')]);
    await w.drain();
    // Literal-free lines are batched into one Buffer, and that leaves in one write.
    expect(chunks).toBe(1);
    expect(writes).toBe(1);
    expect(Buffer.concat(got).toString()).toBe(Array.from({ length: 100 }, (_, i) => `* ${i + 1} EXPUNGE\r\n`).join(''));
  });

  it('keeps batched lines in order around literals, streams, tagged and raw output', async () => {
    const sink = new SlowSink(1 << 20);
    const w = new ResponseWriter(sink);
    w.untagged([1, atom('FETCH'), [atom('UID'), 7]]);
    w.untagged([2, atom('FETCH'), [atom('BODY[]'), { literal: Buffer.from('ab\r\n') }]]);
    w.untagged([3, atom('EXISTS')]);
    expect(w.pending).toBeGreaterThan(0);
    w.untagged([4, atom('FETCH'), [atom('BODY[]'), { stream: () => Readable.from([Buffer.from('xyz')]), size: 3 }]]);
    w.untagged([5, atom('EXISTS')]);
    w.raw(Buffer.from('* 6 EXISTS\r\n'));
    w.untagged([7, atom('EXISTS')]);
    w.tagged('a1', 'OK', undefined, 'done');
    w.untagged([8, atom('EXISTS')]);
    await w.drain();
    expect(sink.text()).toBe(
      '* 1 FETCH (UID 7)\r\n* 2 FETCH (BODY[] {4}\r\nab\r\n)\r\n* 3 EXISTS\r\n* 4 FETCH (BODY[] {3}\r\nxyz)\r\n' +
        '* 5 EXISTS\r\n* 6 EXISTS\r\n* 7 EXISTS\r\na1 OK done\r\n* 8 EXISTS\r\n',
    );
    expect(w.pending).toBe(0);
    // More than one batch of text in one tick still leaves whole and in order.
    const big = new SlowSink(1 << 22);
    const w2 = new ResponseWriter(big);
    for (let i = 1; i <= 5000; i++) w2.untagged([i, atom('FETCH'), [atom('X'), atom('y'.repeat(20))]]);
    await w2.drain();
    expect(big.text()).toBe(Array.from({ length: 5000 }, (_, i) => `* ${i + 1} FETCH (X ${'y'.repeat(20)})\r\n`).join(''));
  });

  it('counts bytes held by a sink that has not flushed yet as pending', async () => {
    let release: (() => void) | undefined;
    const sink = new Writable({
      highWaterMark: 1 << 20,
      write(_chunk, _e, cb) {
        release = () => cb();
      },
    });
    const w = new ResponseWriter(sink);
    w.untagged([atom('OK')]);
    expect(w.pending).toBe('* OK\r\n'.length);
    let drained = false;
    const d = w.drain().then(() => {
      drained = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(drained).toBe(false);
    release?.();
    await d;
    expect(drained).toBe(true);
    expect(w.pending).toBe(0);
  });

  it('streams a 20 MB literal in order without buffering it, queueing later lines behind it', async () => {
    const size = 20 * 1024 * 1024;
    const prefix = '* 1 FETCH (UID 7 BODY[] {' + size + '}\r\n';
    const sink = new CountingSink(Buffer.byteLength(prefix), size);
    const counter = { produced: 0 };
    let maxAhead = 0;
    const w = new ResponseWriter(sink);
    let opened = 0;
    w.untagged([
      1,
      atom('FETCH'),
      [
        atom('UID'),
        7,
        atom('BODY[]'),
        {
          stream: () => {
            opened++;
            return patternSource(size, counter);
          },
          size,
        },
      ],
    ]);
    w.untagged([2, atom('FETCH'), [atom('FLAGS'), []]]);
    w.tagged('a1', 'OK', undefined, 'done');
    expect(w.pending).toBeGreaterThanOrEqual(size);
    // Sample how far the source runs ahead of what the sink has taken, at every sink write.
    const origWrite = sink._write.bind(sink);
    sink._write = (chunk, e, cb) => {
      maxAhead = Math.max(maxAhead, counter.produced - sink.total);
      origWrite(chunk, e, cb);
    };
    await w.drain();
    expect(opened).toBe(1);
    const suffix = ')\r\n* 2 FETCH (FLAGS ())\r\na1 OK done\r\n';
    expect(sink.total).toBe(Buffer.byteLength(prefix) + size + suffix.length);
    expect(sink.head.subarray(0, prefix.length).toString()).toBe(prefix);
    expect(sink.tail.subarray(sink.tail.length - suffix.length).toString()).toBe(suffix);
    expect(sink.bodyOk).toBe(true);
    // Memory stays bounded: never more than a few chunks in flight.
    expect(maxAhead).toBeLessThan(1024 * 1024);
    expect(sink.maxBuffered).toBeLessThan(512 * 1024);
    expect(w.pending).toBe(0);
  });

  it('destroys the sink when a streamed literal comes up short', async () => {
    const sink = new SlowSink(1 << 20);
    let sinkError: Error | undefined;
    sink.on('error', (e) => (sinkError = e));
    const w = new ResponseWriter(sink);
    w.untagged([atom('X'), { stream: () => Readable.from([Buffer.from('abc')]), size: 5 }]);
    w.untagged([atom('after')]);
    await expect(w.drain()).rejects.toThrow(/3 of 5/);
    expect(sink.destroyed).toBe(true);
    expect(sinkError?.message).toMatch(/3 of 5/);
    expect(sink.text()).not.toContain('after');
  });

  it('destroys the sink when a streamed literal runs long, without writing the excess', async () => {
    const sink = new SlowSink(1 << 20);
    sink.on('error', () => {});
    const w = new ResponseWriter(sink);
    w.untagged([atom('X'), { stream: () => Readable.from([Buffer.from('abc'), Buffer.from('defg')]), size: 5 }]);
    await expect(w.drain()).rejects.toThrow(/overran/);
    expect(sink.destroyed).toBe(true);
    expect(sink.text()).not.toContain('defg');
  });

  it('destroys the sink when the literal source fails', async () => {
    const sink = new SlowSink(1 << 20);
    sink.on('error', () => {});
    const w = new ResponseWriter(sink);
    const source = new Readable({
      read() {
        this.destroy(new Error('disk gone'));
      },
    });
    w.untagged([atom('X'), { stream: () => source, size: 10, binary: true }]);
    await expect(w.drain()).rejects.toThrow(/disk gone/);
    expect(sink.destroyed).toBe(true);
    expect(sink.text()).toBe('* X ~{10}\r\n');
  });

  it('writes a zero-size stream literal and an exact small one', async () => {
    const sink = new SlowSink(1 << 20);
    const w = new ResponseWriter(sink);
    w.untagged([{ stream: () => Readable.from([]), size: 0 }, { stream: () => Readable.from(['ab', 'c']), size: 3, binary: true }]);
    await w.drain();
    expect(sink.text()).toBe('* {0}\r\n ~{3}\r\nabc\r\n');
  });

  it('swaps the sink once drained and refuses while output is queued', async () => {
    const a = new SlowSink(16);
    const b = new SlowSink(1 << 20);
    const w = new ResponseWriter(a);
    w.tagged('a1', 'OK', undefined, 'Begin TLS negotiation now');
    w.untagged([atom('queued'), atom('behind'), atom('backpressure')]);
    expect(() => w.setSink(b)).toThrow(/drain/);
    await w.drain();
    w.setSink(b);
    w.untagged([atom('CAPABILITY'), atom('IMAP4rev1')]);
    await w.drain();
    expect(a.text()).toBe('a1 OK Begin TLS negotiation now\r\n* queued behind backpressure\r\n');
    expect(b.text()).toBe('* CAPABILITY IMAP4rev1\r\n');
    // The old sink's 'drain' no longer drives the writer.
    expect(a.listenerCount('drain')).toBe(0);
  });

  it('rejects drain() when the sink fails, and drops later output', async () => {
    const sink = new Writable({
      write(_c, _e, cb) {
        cb(new Error('connection reset'));
      },
    });
    sink.on('error', () => {});
    const w = new ResponseWriter(sink);
    w.untagged([atom('OK')]);
    await expect(w.drain()).rejects.toThrow(/connection reset/);
    expect(() => w.untagged([atom('more')])).not.toThrow();
    await expect(w.drain()).rejects.toThrow(/connection reset/);
  });
});

describe('adjacent lists', () => {
  it('writes an address list without separators, as RFC 3501 env-from requires', () => {
    const v = { adjacent: [[null, null, 'a', 'b.example'], [null, null, 'c', 'd.example']] };
    expect(encodeValue(v).toString()).toBe('((NIL NIL "a" "b.example")(NIL NIL "c" "d.example"))');
  });
});
