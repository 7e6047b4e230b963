/** The pure parts of the LMTP listener: DATA reading, MAIL/RCPT arguments, listen addresses, recipients. */
import { describe, expect, it } from 'vitest';
import { DotReader } from '../../src/server/lmtp/data-reader.js';
import { EnvelopeSyntaxError, parseEnvelopeArg, splitAddress } from '../../src/server/lmtp/envelope.js';
import { formatLmtpAddress, parseLmtpAddress } from '../../src/server/lmtp/listen-address.js';
import { matchRecipient, UserDirectory } from '../../src/server/lmtp/recipients.js';
import { rfc5322Date, traceHeaders } from '../../src/server/lmtp/trace-headers.js';

/** Feed `wire` to a reader in pieces cut at `cuts`; returns the message, the bytes used and whether it ended. */
function read(wire: string, cuts: number[] = [], max = 1 << 20): { message: string; used: number; done: boolean; tooBig: boolean } {
  const buf = Buffer.from(wire, 'latin1');
  const r = new DotReader(max);
  let used = 0;
  let at = 0;
  for (const end of [...cuts, buf.length]) {
    if (r.done) break;
    const piece = buf.subarray(at, end);
    used += r.feed(piece);
    at = end;
  }
  return { message: r.message().toString('latin1'), used, done: r.done, tooBig: r.tooBig };
}

describe('DotReader', () => {
  const wire = 'Subject: x\r\n\r\n..leading dot\r\n.\r\r\n...\r\nbare lf\nbare\rcr\r\n.\r\nMAIL FROM:<a@b>\r\n';
  const expected = 'Subject: x\r\n\r\n.leading dot\r\n\r\r\n..\r\nbare lf\r\nbare\rcr\r\n';
  const end = wire.indexOf('\r\n.\r\n') + 5;

  it('unstuffs dots, turns bare LF into CRLF, keeps bare CR, and stops after the end line', () => {
    expect(read(wire)).toEqual({ message: expected, used: end, done: true, tooBig: false });
  });

  it('reads the same whatever the chunk boundaries', () => {
    for (let a = 0; a <= end; a++) {
      expect(read(wire, [a]).message).toBe(expected);
      for (let b = a; b <= end; b += 3) {
        const r = read(wire, [a, b]);
        expect(r.message).toBe(expected);
        expect(r.done).toBe(true);
      }
    }
  });

  it('ends an empty message at once and accepts the bare-LF end line', () => {
    expect(read('.\r\n')).toMatchObject({ message: '', done: true, used: 3 });
    expect(read('a\n.\nrest')).toMatchObject({ message: 'a\r\n', done: true, used: 4 });
  });

  it('is not done without the end line', () => {
    expect(read('a\r\n.x\r\n')).toMatchObject({ done: false, message: 'a\r\nx\r\n' });
  });

  it('keeps nothing past the size limit but reads to the end', () => {
    const r = read(`${'x'.repeat(50)}\r\n${'y'.repeat(50)}\r\n.\r\nNEXT`, [20, 60], 60);
    expect(r).toMatchObject({ tooBig: true, done: true, message: '' });
    expect(r.used).toBe(107);
    expect(read('12345678\r\n.\r\n', [], 10)).toMatchObject({ tooBig: false, message: '12345678\r\n' });
  });
});

describe('MAIL and RCPT arguments', () => {
  it('parses the address and the parameters', () => {
    const m = parseEnvelopeArg('FROM:<a@example.org> SIZE=123 body=8BITMIME', 'FROM');
    expect(m.address).toBe('a@example.org');
    expect([...m.params]).toEqual([
      ['SIZE', '123'],
      ['BODY', '8BITMIME'],
    ]);
    expect(parseEnvelopeArg('from: <>', 'FROM').address).toBe('');
    expect(parseEnvelopeArg('TO:<@relay.example,@b.example:bob@example.org>', 'TO').address).toBe('bob@example.org');
    expect(parseEnvelopeArg('TO:<"john >doe"@example.org>', 'TO').address).toBe('"john >doe"@example.org');
    expect(parseEnvelopeArg('TO:<postmaster>', 'TO').address).toBe('postmaster');
  });

  it('refuses what is not an address', () => {
    for (const bad of ['TO:bob@example.org', 'TO:<bob@example.org', 'TO:<>', 'TO:<bo b@example.org>', 'TO:<a@b>X=1', 'FROM:<a@b>', 'TO:<a@b> =x']) {
      expect(() => parseEnvelopeArg(bad, 'TO'), bad).toThrow(EnvelopeSyntaxError);
    }
  });

  it('splits local part and domain, unquoting the local part', () => {
    expect(splitAddress('a+b@example.org')).toEqual({ local: 'a+b', domain: 'example.org' });
    expect(splitAddress('"x\\"y"@d')).toEqual({ local: 'x"y', domain: 'd' });
    expect(splitAddress('postmaster')).toEqual({ local: 'postmaster', domain: '' });
  });
});

describe('listen addresses', () => {
  it('takes PORT (on loopback), HOST:PORT, [v6]:PORT and a socket path', () => {
    expect(parseLmtpAddress(2424)).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 2424 });
    expect(parseLmtpAddress('2424')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 2424 });
    expect(parseLmtpAddress('0.0.0.0:24')).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 24 });
    expect(parseLmtpAddress('[::1]:24')).toEqual({ kind: 'tcp', host: '::1', port: 24 });
    expect(parseLmtpAddress('/run/imapkit/lmtp')).toEqual({ kind: 'unix', path: '/run/imapkit/lmtp' });
    expect(formatLmtpAddress(parseLmtpAddress('[::1]:24'))).toBe('[::1]:24');
    expect(formatLmtpAddress(parseLmtpAddress('2424'))).toBe('127.0.0.1:2424');
  });

  it('refuses anything else, saying what is expected', () => {
    for (const bad of ['', 'x', '70000', 'host:', ':24', 'host:99999', 'run/lmtp', '/run/', 2.5, -1]) {
      expect(() => parseLmtpAddress(bad), String(bad)).toThrow(/expected PORT, HOST:PORT or the absolute path of a unix socket/);
    }
  });
});

describe('recipients', () => {
  const users = ['alice', 'bob@example.org', 'Carl', 'dup', 'DUP'];

  it('tries the full address, then the local part, then both without +detail', () => {
    expect(matchRecipient('alice@example.org', users)).toEqual({ address: 'alice@example.org', user: 'alice' });
    expect(matchRecipient('bob@example.org', users)).toEqual({ address: 'bob@example.org', user: 'bob@example.org' });
    expect(matchRecipient('bob+news@example.org', users)).toEqual({ address: 'bob+news@example.org', user: 'bob@example.org', detail: 'news' });
    expect(matchRecipient('alice+a+b@x.example', users)).toEqual({ address: 'alice+a+b@x.example', user: 'alice', detail: 'a+b' });
    expect(matchRecipient('alice+@x.example', users)).toEqual({ address: 'alice+@x.example', user: 'alice' });
    expect(matchRecipient('bob@other.example', users)).toBeNull();
    expect(matchRecipient('nobody@example.org', users)).toBeNull();
  });

  it('falls back to a case-insensitive match only when it is unique', () => {
    expect(matchRecipient('carl@example.org', users)?.user).toBe('Carl');
    expect(matchRecipient('BOB@EXAMPLE.ORG', users)?.user).toBe('bob@example.org');
    expect(matchRecipient('Dup@example.org', users)).toBeNull();
    expect(matchRecipient('dup@example.org', users)?.user).toBe('dup');
  });

  it('re-reads the user list on a miss, and serves hits from the cached list for a while', async () => {
    let list = ['alice'];
    let reads = 0;
    let now = 0;
    const dir = new UserDirectory({ listUsers: async () => (reads++, list) }, 1000, () => now);
    expect((await dir.resolve('alice'))?.user).toBe('alice');
    expect((await dir.resolve('alice'))?.user).toBe('alice');
    expect(reads).toBe(1);
    list = ['alice', 'bob'];
    expect((await dir.resolve('bob'))?.user).toBe('bob');
    expect(reads).toBe(2);
    list = ['bob'];
    now = 2000;
    expect(await dir.resolve('alice')).toBeNull();
  });
});

describe('trace headers', () => {
  it('writes Return-Path, Delivered-To and a folded Received with an RFC 5322 date', () => {
    const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));
    expect(rfc5322Date(date)).toBe('Tue, 2 Jan 2024 03:04:05 +0000');
    const h = traceHeaders({ sender: 's@x', recipient: 'r@y', lhloName: 'mx', client: '[::1]', serverName: 'host', id: 'ID1', date }).toString();
    expect(h).toBe('Return-Path: <s@x>\r\nDelivered-To: r@y\r\nReceived: from mx ([::1])\r\n\tby host (imapkit) with LMTP id ID1\r\n\tfor <r@y>; Tue, 2 Jan 2024 03:04:05 +0000\r\n');
  });
});
