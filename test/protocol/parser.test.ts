import { describe, expect, it } from 'vitest';
import { CommandParser, DEFAULT_LIMITS } from '../../src/protocol/parser.js';
import type { ParserEvent, ParserLimits } from '../../src/protocol/ast.js';

function drain(p: CommandParser, out: ParserEvent[] = []): ParserEvent[] {
  for (let e = p.next(); e; e = p.next()) out.push(e);
  return out;
}

/** Push the chunks one by one, draining events after each. */
function feed(chunks: Array<Buffer | string>, limits?: Partial<ParserLimits>): ParserEvent[] {
  const p = new CommandParser(limits);
  const out: ParserEvent[] = [];
  for (const c of chunks) {
    p.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
    drain(p, out);
  }
  return out;
}

function kinds(evs: ParserEvent[]): string[] {
  return evs.map((e) => (e.kind === 'command' ? `command:${e.command.tag}:${e.command.name}` : e.kind === 'error' ? `error:${e.tag}` : e.kind));
}

// A deterministic PRNG so the random splits are the same on every run.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STREAM = Buffer.from(
  [
    'a1 LOGIN {4}\r\nuser "p\\"w\\\\"\r\n',
    'a2 APPEND INBOX (\\Seen) {5+}\r\nhello ~{4}\r\nb\0\r\n UTF8 (~{3+}\r\nabc)\r\n',
    'a3 SEARCH CHARSET UTF-8 SUBJECT "\u00fc\\\\x" TEXT ~{2}\r\nab\r\n',
    'a4 UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS ({4}\r\nFrom)])\r\n',
    'a5 NOOP\n',
  ].join(''),
  'utf8',
);

describe('streaming', () => {
  const reference = feed([STREAM]);

  it('parses the reference stream', () => {
    expect(kinds(reference)).toEqual([
      'continue',
      'command:a1:LOGIN',
      'continue',
      'command:a2:APPEND',
      'continue',
      'command:a3:SEARCH',
      'continue',
      'command:a4:FETCH',
      'command:a5:NOOP',
    ]);
    expect(reference[1]).toMatchObject({ command: { user: 'user', password: 'p"w\\' } });
    expect(reference[3]).toMatchObject({
      command: {
        messages: [
          { data: Buffer.from('hello'), binary: false },
          { data: Buffer.from('b\0\r\n'), binary: true },
          { data: Buffer.from('abc'), binary: true, utf8: true },
        ],
      },
    });
    expect(reference[5]).toMatchObject({
      command: {
        criteria: {
          type: 'and',
          keys: [
            { type: 'header', field: 'subject', value: '\u00fc\\x' },
            { type: 'text', value: 'ab' },
          ],
        },
      },
    });
    expect(reference[6]).toEqual({ kind: 'continue', tag: 'a4', name: 'FETCH', size: 4 });
  });

  it('gives the same events for a split at every byte boundary', () => {
    for (let i = 1; i < STREAM.length; i++) {
      expect(feed([STREAM.subarray(0, i), STREAM.subarray(i)])).toEqual(reference);
    }
  });

  it('gives the same events byte by byte and for random three-way splits', () => {
    const bytes: Buffer[] = [];
    for (let i = 0; i < STREAM.length; i++) bytes.push(STREAM.subarray(i, i + 1));
    expect(feed(bytes)).toEqual(reference);
    const rnd = prng(7);
    for (let k = 0; k < 300; k++) {
      const a = 1 + Math.floor(rnd() * (STREAM.length - 2));
      const b = a + 1 + Math.floor(rnd() * (STREAM.length - a - 1));
      expect(feed([STREAM.subarray(0, a), STREAM.subarray(a, b), STREAM.subarray(b)])).toEqual(reference);
    }
  });

  it('emits continue exactly when a synchronizing literal header is complete, before its data', () => {
    const p = new CommandParser();
    const seen: Array<[number, ParserEvent]> = [];
    for (let i = 0; i < STREAM.length; i++) {
      p.push(STREAM.subarray(i, i + 1));
      for (let e = p.next(); e; e = p.next()) seen.push([i, e]);
    }
    const continues = seen.filter(([, e]) => e.kind === 'continue');
    expect(continues).toHaveLength(4);
    for (const [i, e] of continues) {
      // The last byte pushed was the LF after "{n}": no literal byte had arrived yet.
      expect(STREAM.subarray(i - 2, i + 1).toString()).toBe('}\r\n');
      expect(e.kind === 'continue' && STREAM.subarray(0, i).toString('latin1').endsWith(`{${e.size}}\r`)).toBe(true);
    }
  });

  it('returns null while a command is incomplete and counts the held bytes', () => {
    const p = new CommandParser();
    p.push(Buffer.from('a1 LOGIN joe'));
    expect(p.next()).toBeNull();
    expect(p.buffered).toBe(12);
    p.push(Buffer.from(' "secret"\r'));
    expect(p.next()).toBeNull();
    p.push(Buffer.from('\n'));
    expect(p.next()).toMatchObject({ kind: 'command', command: { tag: 'a1', password: 'secret' } });
    expect(p.next()).toBeNull();
    expect(p.buffered).toBe(0);
  });

  it('hands out one event at a time and leaves later bytes untouched', () => {
    const p = new CommandParser();
    p.push(Buffer.from('a NOOP\r\nb NOOP\r\n'));
    expect(p.next()).toMatchObject({ command: { tag: 'a' } });
    expect(p.buffered).toBe(8);
    expect(p.next()).toMatchObject({ command: { tag: 'b' } });
  });

  it('many chunks pushed before draining, drained one event at a time', () => {
    const p = new CommandParser();
    for (let i = 0; i < 300; i++) p.push(Buffer.from(`t${i} NOOP\r\n`));
    const tags: string[] = [];
    for (let e = p.next(); e; e = p.next()) if (e.kind === 'command') tags.push(e.command.tag);
    expect(tags).toHaveLength(300);
    expect(tags[299]).toBe('t299');
    expect(p.buffered).toBe(0);
  });

  it('MULTIAPPEND of ten messages: one continuation per synchronizing literal', () => {
    const parts = ['a APPEND INBOX'];
    for (let i = 0; i < 10; i++) parts.push(` (\\Seen) {3}\r\nm${i}!`);
    const evs = feed([`${parts.join('')}\r\n`]);
    expect(kinds(evs)).toEqual([...Array<string>(10).fill('continue'), 'command:a:APPEND']);
    const last = evs[10]!;
    if (last.kind !== 'command' || last.command.name !== 'APPEND') throw new Error('no APPEND');
    expect(last.command.messages.map((m) => m.data.toString())).toEqual(Array.from({ length: 10 }, (_v, i) => `m${i}!`));
  });

  it('copies literal data out of the pushed buffer', () => {
    const p = new CommandParser();
    const input = Buffer.from('a APPEND INBOX {5+}\r\nhello\r\n');
    p.push(input);
    const e = p.next();
    input.fill(0x41);
    expect(e).toMatchObject({ command: { messages: [{ data: Buffer.from('hello') }] } });
  });

  it('ignores empty lines and accepts bare LF', () => {
    expect(kinds(feed(['\r\n\r\na NOOP\n\nb LOGOUT\r\n']))).toEqual(['command:a:NOOP', 'command:b:LOGOUT']);
  });

  it('a literal header inside a quoted string is not a literal', () => {
    const evs = feed(['a SEARCH SUBJECT "foo {5}\r\nb NOOP\r\n']);
    expect(kinds(evs)).toEqual(['error:a', 'command:b:NOOP']);
    expect(evs[0]).toMatchObject({ message: expect.stringMatching(/Unterminated/) });
  });

  it('continues after many literals in one command (past the prefix checks)', () => {
    const parts = ['a SEARCH'];
    for (let i = 0; i < 12; i++) parts.push(` TEXT {2}\r\nx${i % 10}`);
    const evs = feed([`${parts.join('')}\r\n`]);
    expect(evs.filter((e) => e.kind === 'continue')).toHaveLength(12);
    expect(evs[12]).toMatchObject({ kind: 'command', command: { criteria: { type: 'and' } } });
  });
});

describe('literal checks before "+"', () => {
  it('a command that cannot take a literal there gets an error and no continuation', () => {
    expect(kinds(feed(['a NOOP {5}\r\nb NOOP\r\n']))).toEqual(['error:a', 'command:b:NOOP']);
    expect(kinds(feed(['a FROB {5}\r\nb NOOP\r\n']))).toEqual(['error:a', 'command:b:NOOP']);
    expect(kinds(feed(['a FETCH {5}\r\nb NOOP\r\n']))).toEqual(['error:a', 'command:b:NOOP']);
    expect(kinds(feed(['a APPEND INBOX "bad date" {5}\r\nb NOOP\r\n']))).toEqual(['error:a', 'command:b:NOOP']);
  });

  it('a rejected non-synchronizing literal is skipped with the rest of its command', () => {
    const evs = feed(['a NOOP {10+}\r\nb LOGOUT\r\n more {3+}\r\nxyz rest\r\nc NOOP\r\n']);
    expect(kinds(evs)).toEqual(['error:a', 'command:c:NOOP']);
  });

  it('binary literals only where literal8 is allowed', () => {
    expect(kinds(feed(['a SELECT ~{5}\r\nb NOOP\r\n']))).toEqual(['error:a', 'command:b:NOOP']);
    expect(kinds(feed(['a SEARCH TEXT ~{1}\r\nx\r\n']))).toEqual(['continue', 'command:a:SEARCH']);
  });

  it('errors out of the final parse come after the literal', () => {
    const evs = feed(['a LOGIN {3}\r\njoe\r\n']);
    expect(kinds(evs)).toEqual(['continue', 'error:a']);
    expect(evs[1]).toMatchObject({ message: 'Missing argument: password', name: 'LOGIN' });
  });
});

describe('limits', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_LIMITS).toEqual({ maxLineLength: 65536, maxLiteralSize: 64 * 1024 * 1024, maxDepth: 64, maxItems: 100000 });
  });

  it('synchronizing literal over maxLiteralSize: TOOBIG, non-fatal, no literal expected', () => {
    const evs = feed(['a APPEND INBOX {11}\r\nb NOOP\r\n'], { maxLiteralSize: 10 });
    expect(evs[0]).toEqual({ kind: 'error', tag: 'a', name: 'APPEND', message: 'Literal too big', code: 'TOOBIG', fatal: false });
    expect(kinds(evs)).toEqual(['error:a', 'command:b:NOOP']);
    expect(kinds(feed(['a APPEND INBOX {10}\r\n0123456789\r\n'], { maxLiteralSize: 10 }))).toEqual(['continue', 'command:a:APPEND']);
  });

  it('synchronizing literal of 2 GB or beyond 2^53: TOOBIG, non-fatal', () => {
    for (const n of ['2147483648', '99999999999999999999999999']) {
      const evs = feed([`a APPEND INBOX {${n}}\r\nb NOOP\r\n`]);
      expect(kinds(evs)).toEqual(['error:a', 'command:b:NOOP']);
      expect(evs[0]).toMatchObject({ code: 'TOOBIG', fatal: false });
    }
  });

  it('non-synchronizing literal over the limit: skipped by counting, never buffered', () => {
    const p = new CommandParser({ maxLiteralSize: 1000 });
    p.push(Buffer.from('a APPEND INBOX {5000000+}\r\n'));
    expect(p.next()).toMatchObject({ kind: 'error', tag: 'a', code: 'TOOBIG', fatal: false });
    const chunk = Buffer.from('b LOGOUT\r\n'.repeat(6554)).subarray(0, 65536);
    let sent = 0;
    while (sent + chunk.length <= 5000000) {
      p.push(chunk);
      sent += chunk.length;
      expect(p.next()).toBeNull();
      expect(p.buffered).toBeLessThan(100);
    }
    p.push(Buffer.alloc(5000000 - sent, 0x41));
    p.push(Buffer.from(' (\\Seen) {3+}\r\nxyz\r\nc NOOP\r\n'));
    expect(drain(p).map((e) => e.kind === 'command' && e.command.tag)).toEqual(['c']);
  });

  it('a 2 GB non-synchronizing literal allocates nothing', () => {
    const p = new CommandParser();
    p.push(Buffer.from('a APPEND INBOX {2147483648+}\r\n'));
    expect(p.next()).toMatchObject({ kind: 'error', code: 'TOOBIG', fatal: false });
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 16; i++) {
      p.push(chunk);
      expect(p.next()).toBeNull();
      expect(p.buffered).toBe(0);
    }
  });

  it('a non-synchronizing literal too large to count is fatal', () => {
    const p = new CommandParser();
    p.push(Buffer.from('a APPEND INBOX {99999999999999999999+}\r\nb NOOP\r\n'));
    expect(p.next()).toMatchObject({ kind: 'error', tag: 'a', code: 'TOOBIG', fatal: true });
    expect(p.next()).toBeNull();
    p.push(Buffer.from('c NOOP\r\n'));
    expect(p.next()).toBeNull();
    expect(p.buffered).toBe(0);
  });

  it('line over maxLineLength: TOOBIG, skipped without buffering, non-fatal', () => {
    const p = new CommandParser({ maxLineLength: 100 });
    p.push(Buffer.from('t7 SEARCH TEXT '));
    const out: ParserEvent[] = [];
    for (let i = 0; i < 1000; i++) {
      p.push(Buffer.from('abcdefg'));
      drain(p, out);
      expect(p.buffered).toBeLessThan(200);
    }
    p.push(Buffer.from('\r\nu NOOP\r\n'));
    drain(p, out);
    expect(kinds(out)).toEqual(['error:t7', 'command:u:NOOP']);
    expect(out[0]).toMatchObject({ code: 'TOOBIG', fatal: false, message: 'Line too long', name: 'SEARCH' });
  });

  it('an over-long line whose end is in the same chunk', () => {
    const evs = feed([`a LOGIN ${'x'.repeat(200)} y\r\nb NOOP\r\n`], { maxLineLength: 100 });
    expect(kinds(evs)).toEqual(['error:a', 'command:b:NOOP']);
  });

  it('a line of exactly maxLineLength is accepted', () => {
    const line = `a LOGIN u ${'p'.repeat(90)}`;
    expect(line.length).toBe(100);
    expect(kinds(feed([`${line}\r\n`], { maxLineLength: 100 }))).toEqual(['command:a:LOGIN']);
  });

  it('an over-long line ending in a non-synchronizing literal skips the literal too', () => {
    const evs = feed([`a SEARCH TEXT ${'x'.repeat(300)} TEXT {12+}\r\nz LOGOUT\r\n!! more\r\nb NOOP\r\n`], { maxLineLength: 100 });
    expect(kinds(evs)).toEqual(['error:a', 'command:b:NOOP']);
  });

  it('an over-long line after a literal', () => {
    const evs = feed([`a SEARCH TEXT {1}\r\nx TEXT ${'y'.repeat(300)}\r\nb NOOP\r\n`], { maxLineLength: 100 });
    expect(kinds(evs)).toEqual(['continue', 'error:a', 'command:b:NOOP']);
  });

  it('nesting beyond maxDepth: LIMIT, tagged, non-fatal', () => {
    const deep = `a SEARCH ${'('.repeat(5)}SEEN${')'.repeat(5)}\r\nb NOOP\r\n`;
    const evs = feed([deep], { maxDepth: 4 });
    expect(kinds(evs)).toEqual(['error:a', 'command:b:NOOP']);
    expect(evs[0]).toMatchObject({ code: 'LIMIT', fatal: false });
    expect(kinds(feed([deep], { maxDepth: 5 }))).toEqual(['command:a:SEARCH', 'command:b:NOOP']);
    expect(feed([`a SEARCH ${'NOT '.repeat(10)}SEEN\r\n`], { maxDepth: 4 })[0]).toMatchObject({ kind: 'error', code: 'LIMIT' });
  });

  it('deep nesting with the default limit does not overflow the stack', () => {
    const evs = feed([`a SEARCH ${'('.repeat(20000)}SEEN${')'.repeat(20000)}\r\nb SEARCH ${'NOT '.repeat(15000)}SEEN\r\n`]);
    expect(evs).toHaveLength(2);
    expect(evs.every((e) => e.kind === 'error' && e.code === 'LIMIT' && !e.fatal)).toBe(true);
  });

  it('too many items: LIMIT, tagged, non-fatal', () => {
    const evs = feed([`a FETCH 1 (${'FLAGS '.repeat(20).trim()})\r\nb NOOP\r\n`], { maxItems: 10 });
    expect(kinds(evs)).toEqual(['error:a', 'command:b:NOOP']);
    expect(evs[0]).toMatchObject({ code: 'LIMIT', message: expect.stringMatching(/Too many items/) });
  });

  it('too many literals in one command', () => {
    const evs = feed(['a SEARCH TEXT {1+}\r\nx TEXT {1+}\r\ny TEXT {1+}\r\nz\r\nb NOOP\r\n'], { maxItems: 2 });
    expect(kinds(evs)).toEqual(['error:a', 'command:b:NOOP']);
  });

  it('whole command over maxCommandSize', () => {
    const evs = feed(['a APPEND INBOX {60+}\r\n', 'x'.repeat(60), ' {60+}\r\n', 'y'.repeat(60), '\r\nb NOOP\r\n'], {
      maxLiteralSize: 80,
      maxCommandSize: 120,
    });
    expect(kinds(evs)).toEqual(['error:a', 'command:b:NOOP']);
    expect(evs[0]).toMatchObject({ code: 'TOOBIG', message: 'Command too long' });
  });
});

describe('line mode', () => {
  it('yields raw lines for AUTHENTICATE continuations', () => {
    const p = new CommandParser();
    p.push(Buffer.from('a AUTHENTICATE PLAIN\r\nAGpvZQBzZWNyZXQ=\r\n\r\n*\r\nb NOOP\r\n'));
    expect(p.next()).toMatchObject({ kind: 'command', command: { name: 'AUTHENTICATE' } });
    p.setLineMode(true);
    expect(p.next()).toEqual({ kind: 'line', line: 'AGpvZQBzZWNyZXQ=' });
    expect(p.next()).toEqual({ kind: 'line', line: '' });
    expect(p.next()).toEqual({ kind: 'line', line: '*' });
    p.setLineMode(false);
    expect(p.next()).toMatchObject({ kind: 'command', command: { tag: 'b' } });
  });

  it("IDLE's DONE split across chunks; literal headers are not special", () => {
    const p = new CommandParser();
    p.push(Buffer.from('a IDLE\r\nDO'));
    expect(p.next()).toMatchObject({ command: { name: 'IDLE' } });
    p.setLineMode(true);
    expect(p.next()).toBeNull();
    p.push(Buffer.from('NE\r'));
    expect(p.next()).toBeNull();
    p.push(Buffer.from('\nx {5}\r\n'));
    expect(p.next()).toEqual({ kind: 'line', line: 'DONE' });
    expect(p.next()).toEqual({ kind: 'line', line: 'x {5}' });
  });

  it('an over-long line in line mode is an untagged error and is skipped', () => {
    const p = new CommandParser({ maxLineLength: 10 });
    p.setLineMode(true);
    p.push(Buffer.from(`${'x'.repeat(50)}\r\nDONE\r\n`));
    expect(p.next()).toMatchObject({ kind: 'error', tag: '*', code: 'TOOBIG', fatal: false });
    expect(p.next()).toEqual({ kind: 'line', line: 'DONE' });
  });
});

describe('robustness', () => {
  it('garbage yields errors, never throws, and the stream recovers', () => {
    const garbage = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x28, 0x29, 0x7b, 0x7d, 0x22, 0x5c, 0x0d, 0x0a]);
    const evs = feed([garbage, 'a NOOP\r\n']);
    expect(kinds(evs)).toEqual(['error:*', 'command:a:NOOP']);
  });

  it('the tag is reported whenever it could be read', () => {
    expect(feed(['tag42 SEARCH BOGUS\r\n'])[0]).toMatchObject({ kind: 'error', tag: 'tag42', name: 'SEARCH' });
    expect(feed(['tag42\r\n'])[0]).toMatchObject({ kind: 'error', tag: 'tag42' });
    expect(feed(['(bad NOOP\r\n'])[0]).toMatchObject({ kind: 'error', tag: '*' });
  });
});

describe('over-long line ending in "{n+}\\r\\r\\n"', () => {
  it('gives the same events whole and chunked (the line does not end in a literal header)', () => {
    const limits = { maxLineLength: 200, maxLiteralSize: 300, maxDepth: 6, maxItems: 60, maxCommandSize: 1200 };
    const input = Buffer.from(`a3 LOGIN ${'NOT '.repeat(60)}joe {6+}\r\r\nsecret\r\n`, 'latin1');
    const run = (chunks: Buffer[]): string[] => {
      const p = new CommandParser(limits);
      const out: string[] = [];
      for (const c of chunks) {
        p.push(c);
        for (let ev = p.next(); ev; ev = p.next()) out.push(`${ev.kind}:${ev.kind === 'error' ? ev.tag : ''}`);
      }
      return out;
    };
    const whole = run([input]);
    expect(run([input.subarray(0, 100), input.subarray(100)])).toEqual(whole);
    // "secret" starts a new command line: it is not swallowed as literal data.
    expect(whole).toContain('error:secret');
  });
});
