import { describe, expect, it } from 'vitest';
import { envelope, indexMessage } from '../../src/mime/index.js';
import { crlfMessage, plain } from './helpers.js';

function env(text: string): unknown[] {
  const raw = crlfMessage(text);
  return plain(envelope(raw, indexMessage(raw))) as unknown[];
}

describe('envelope (RFC 3501 7.4.2, built like Dovecot)', () => {
  it('lists the ten fields, defaulting Sender and Reply-To to From', () => {
    const e = env('Date: Mon, 1 Jan 2001 00:00:00 +0000\nSubject: hi\nFrom: "Ann Example" <ann@example.com>\nTo: bob@example.com\nMessage-ID: <1@x>\nIn-Reply-To: <0@x>\n\nbody\n');
    expect(e).toEqual([
      'Mon, 1 Jan 2001 00:00:00 +0000',
      'hi',
      [['Ann Example', null, 'ann', 'example.com']],
      [['Ann Example', null, 'ann', 'example.com']],
      [['Ann Example', null, 'ann', 'example.com']],
      [[null, null, 'bob', 'example.com']],
      null,
      null,
      '<0@x>',
      '<1@x>',
    ]);
  });

  it('is all NIL for a message without header fields', () => {
    expect(env('\nbody\n')).toEqual([null, null, null, null, null, null, null, null, null, null]);
  });

  it('cleans the subject for humans but only unfolds other strings', () => {
    const e = env('Subject:   hello   world \n  again\tx\nDate: Mon, 1 Jan 2001\n 00:00:00 +0000 \nMessage-ID: <x@y>  \nIn-Reply-To:   <a@b>\n <c@d>\n\n');
    expect(e[0]).toBe('Mon, 1 Jan 2001 00:00:00 +0000 ');
    expect(e[1]).toBe('hello world again x');
    expect(e[8]).toBe('<a@b> <c@d>');
    expect(e[9]).toBe('<x@y>  ');
  });

  it('parses address lists: comments as names, groups, routes, missing parts', () => {
    const e = env(
      'To: "Foo Bar" <foo@bar>, baz@q (Baz Q), =?utf-8?q?J=C3=B6?= <j@k>, grp: a@b, c@d;, <@r1,@r2:x@y>, user, "q a"@b, ""\n' +
        'Cc: undisclosed-recipients:;\nBcc: a@[1.2.3.4], Joe (c) Bloggs <jb@x>, first.last@example.com., .odd.@x\n\n',
    );
    expect(e[5]).toEqual([
      ['Foo Bar', null, 'foo', 'bar'],
      ['Baz Q', null, 'baz', 'q'],
      ['=?utf-8?q?J=C3=B6?=', null, 'j', 'k'],
      [null, null, 'grp', null],
      [null, null, 'a', 'b'],
      [null, null, 'c', 'd'],
      [null, null, null, null],
      [null, '@r1,@r2', 'x', 'y'],
      [null, null, 'user', 'MISSING_DOMAIN'],
      [null, null, 'q a', 'b'],
      ['', null, 'MISSING_MAILBOX', 'MISSING_DOMAIN'],
    ]);
    expect(e[6]).toEqual([
      [null, null, 'undisclosed-recipients', null],
      [null, null, null, null],
    ]);
    expect(e[7]).toEqual([
      [null, null, 'a', '[1.2.3.4]'],
      ['Joe Bloggs', null, 'jb', 'x'],
      [null, null, 'first.last', 'MISSING_DOMAIN'],
      [null, null, '.odd.', 'x'],
    ]);
  });

  it('accumulates repeated address fields and keeps the last subject', () => {
    const e = env('Subject: x\nFrom: first@x\nFrom: second@x\nSubject: y\n\nhi');
    expect(e[1]).toBe('y');
    expect(e[2]).toEqual([
      [null, null, 'first', 'x'],
      [null, null, 'second', 'x'],
    ]);
  });

  it('returns raw 8-bit bytes as literals and keeps encoded words undecoded', () => {
    const raw = Buffer.from('Subject: Gr\xc3\xbc\xc3\x9fe\r\nFrom: J\xfcrgen <j@x>\r\n\r\n', 'latin1');
    const e = envelope(raw, indexMessage(raw));
    expect(e[1]).toEqual({ literal: Buffer.from('Gr\xc3\xbc\xc3\x9fe', 'latin1') });
    expect(plain(e[2])).toEqual([['J\xfcrgen', null, 'j', 'x']]);
  });

  it('replaces NUL in envelope strings with U+FFFD', () => {
    const raw = Buffer.from('Subject: a\x00b\r\n\r\n', 'latin1');
    expect(plain(envelope(raw, indexMessage(raw))[1])).toBe('a\xef\xbf\xbdb');
  });
});
