import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ClientStreamScanner, TaggedReplyWatcher } from '../../src/proxy/scanner.js';

function feedAll(s: ClientStreamScanner, chunks: Buffer[]): { forwarded: Buffer; logoutTag?: string } {
  const out: Buffer[] = [];
  for (const c of chunks) {
    const r = s.feed(c);
    out.push(...r.forward);
    if (r.logoutTag !== undefined) return { forwarded: Buffer.concat(out), logoutTag: r.logoutTag };
  }
  return { forwarded: Buffer.concat(out) };
}

function chunked(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, data.length]) {
    if (p > prev) out.push(data.subarray(prev, p));
    prev = Math.max(prev, p);
  }
  return out;
}

describe('ClientStreamScanner', () => {
  it('finds LOGOUT at a command boundary and forwards what came before it', () => {
    const s = new ClientStreamScanner();
    const r = s.feed(Buffer.from('a1 SELECT INBOX\r\na2 logout\r\n'));
    expect(Buffer.concat(r.forward).toString()).toBe('a1 SELECT INBOX\r\n');
    expect(r.logoutTag).toBe('a2');
    expect(s.sawSelect).toBe(true);
    expect(s.uncacheable).toBeUndefined();
  });

  it('passes the chunk itself through when there is nothing to hold back', () => {
    const s = new ClientStreamScanner();
    const chunk = Buffer.from('a1 NOOP\r\n');
    const r = s.feed(chunk);
    expect(r.forward).toHaveLength(1);
    expect(r.forward[0].buffer).toBe(chunk.buffer);
  });

  it('never mistakes literal contents for a LOGOUT', () => {
    const s = new ClientStreamScanner();
    const msg = 'x LOGOUT\r\n';
    const r = s.feed(Buffer.from(`a APPEND INBOX {${msg.length}+}\r\n${msg}\r\nb NOOP\r\n`));
    expect(r.logoutTag).toBeUndefined();
    expect(s.feed(Buffer.from('c LOGOUT\r\n')).logoutTag).toBe('c');
  });

  it('marks sessions that changed state as uncacheable', () => {
    for (const cmd of ['a ENABLE QRESYNC', 'a SELECT INBOX (CONDSTORE)', 'a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5)', 'a STATUS INBOX (HIGHESTMODSEQ)', 'a NOTIFY NONE']) {
      const s = new ClientStreamScanner();
      s.feed(Buffer.from(`${cmd}\r\n`));
      expect(s.uncacheable, cmd).toBeDefined();
    }
    const plain = new ClientStreamScanner();
    plain.feed(Buffer.from('a UID FETCH 1:* (FLAGS)\r\nb SEARCH SUBJECT hello\r\n'));
    expect(plain.uncacheable).toBeUndefined();
  });

  it('stops scanning after COMPRESS', () => {
    const s = new ClientStreamScanner();
    const r = s.feed(Buffer.from('a COMPRESS DEFLATE\r\n\x00\x01b LOGOUT\r\n'));
    expect(r.logoutTag).toBeUndefined();
    expect(Buffer.concat(r.forward).toString('latin1')).toBe('a COMPRESS DEFLATE\r\n\x00\x01b LOGOUT\r\n');
    expect(s.passthrough).toBe(true);
    expect(s.feed(Buffer.from('c LOGOUT\r\n')).logoutTag).toBeUndefined();
  });

  it('forwards exactly the bytes before LOGOUT however the stream is cut (property)', () => {
    const atom = fc.stringMatching(/^[A-Za-z0-9]{1,8}$/);
    const literalBody = fc.oneof(fc.constant('z LOGOUT\r\n'), fc.constant('\r\ny LOGOUT\r\n'), fc.string({ maxLength: 30 }));
    const command = fc.oneof(
      fc.tuple(atom, atom).map(([t, n]) => `${t} ${n === 'LOGOUT' ? 'NOOP' : n}\r\n`),
      fc.tuple(atom, literalBody, fc.boolean()).map(([t, body, plus]) => {
        const b = Buffer.from(body, 'utf8');
        return Buffer.concat([Buffer.from(`${t} APPEND INBOX {${b.length}${plus ? '+' : ''}}\r\n`), b, Buffer.from('\r\n')]).toString('latin1');
      }),
      atom.map((t) => `${t} IDLE\r\nDONE\r\n`),
    );
    fc.assert(
      fc.property(fc.array(command, { maxLength: 8 }), atom, fc.array(fc.nat(400), { maxLength: 12 }), (cmds, tag, cuts) => {
        const before = Buffer.from(cmds.join(''), 'latin1');
        const stream = Buffer.concat([before, Buffer.from(`${tag} LOGOUT\r\nafter NOOP\r\n`)]);
        const s = new ClientStreamScanner();
        const r = feedAll(s, chunked(stream, cuts));
        expect(r.logoutTag).toBe(tag);
        expect(r.forwarded.equals(before)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });
});

describe('TaggedReplyWatcher', () => {
  it('forwards everything before its tagged reply, split anywhere', () => {
    const stream = Buffer.from('* 1 FETCH (FLAGS ())\r\nc3 OK done\r\nikabc1 OK NOOP\r\n');
    for (let cut = 0; cut <= stream.length; cut++) {
      const w = new TaggedReplyWatcher('ikabc1', true);
      const a = w.feed(stream.subarray(0, cut));
      const parts = a.forward ? [a.forward] : [];
      let done = a.done ? a : undefined;
      if (!done) {
        const b = w.feed(stream.subarray(cut));
        if (b.forward) parts.push(b.forward);
        done = b;
      }
      expect(done.done, `cut ${cut}`).toBe(true);
      expect(done.line).toBe('ikabc1 OK NOOP');
      expect(Buffer.concat(parts).toString()).toBe('* 1 FETCH (FLAGS ())\r\nc3 OK done\r\n');
    }
  });

  it('recognises the reply at the very start when the stream was at a line start', () => {
    const w = new TaggedReplyWatcher('ikx', true);
    const r = w.feed(Buffer.from('ikx BAD No mailbox selected\r\nrest'));
    expect(r).toMatchObject({ done: true, line: 'ikx BAD No mailbox selected' });
    expect(r.rest?.toString()).toBe('rest');
    const mid = new TaggedReplyWatcher('ikx', false);
    expect(mid.feed(Buffer.from('ikx OK\r\n')).done).toBe(false);
  });
});
