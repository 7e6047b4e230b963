import { describe, expect, it } from 'vitest';
import { bodyStructure, indexMessage, MAX_DEPTH } from '../../src/mime/index.js';
import { crlfMessage, plain } from './helpers.js';

function bs(text: string, extended = true): unknown {
  const raw = crlfMessage(text);
  return plain(bodyStructure(raw, indexMessage(raw), extended));
}

describe('bodyStructure', () => {
  it('describes a plain message with the default charset and a line count', () => {
    expect(bs('Subject: x\n\nline\n')).toEqual(['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 6, 1, null, null, null, null]);
    expect(bs('Subject: x\n\nline\n', false)).toEqual(['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 6, 1]);
  });

  it('keeps case as written and carries all extension data', () => {
    const s = bs(
      'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XX"\n\n--XX\n' +
        'Content-Type: TEXT/Plain; CHARSET=UTF-8; format=flowed\nContent-ID: <cid@x>\nContent-Description: desc  here\n' +
        'Content-Transfer-Encoding: Quoted-Printable\nContent-MD5: abc\nContent-Language: en, de\nContent-Location: http://x/y\n\nhello=3D\nworld\n' +
        '--XX\nContent-Type: application/octet-stream; name="a b.bin"\nContent-Disposition: ATTACHMENT; filename*0="long"; filename*1="name.bin"; size=3\n' +
        'Content-Transfer-Encoding: base64\n\nAAEC\n--XX--\n',
    );
    expect(s).toEqual([
      ['TEXT', 'Plain', ['CHARSET', 'UTF-8', 'format', 'flowed'], '<cid@x>', 'desc  here', 'Quoted-Printable', 15, 1, 'abc', null, ['en', 'de'], 'http://x/y'],
      ['application', 'octet-stream', ['name', 'a b.bin'], null, null, 'base64', 4, null, ['ATTACHMENT', ['size', '3', 'filename', 'longname.bin']], null, null],
      'mixed',
      ['boundary', 'XX'],
      null,
      null,
      null,
    ]);
  });

  it('merges RFC 2231 continuations without decoding them', () => {
    const s = bs("MIME-Version: 1.0\nContent-Type: text/plain; name*=utf-8''%E2%82%AC.txt; title*0*=us-ascii'en'This%20is; title*1=\" 100%\"\n\nx") as unknown[];
    expect(s[2]).toEqual(['name*', "utf-8''%E2%82%AC.txt", 'title*', "us-ascii'en'This%20is 100%25", 'charset', 'us-ascii']);
  });

  it('keeps numbered pieces apart when an index is missing', () => {
    const s = bs('MIME-Version: 1.0\nContent-Type: text/plain; a*0=x; a*2=z\n\nx') as unknown[];
    expect(s[2]).toEqual(['a*0', 'x', 'a*2', 'z', 'charset', 'us-ascii']);
  });

  it('skips broken parameters and keeps the rest', () => {
    const s = bs('Content-Type: text/plain; a=1; a=2; b; c="q\\"x"; D=""\n\nx') as unknown[];
    expect(s[2]).toEqual(['a', '1', 'a', '2', 'D', '', 'charset', 'us-ascii']);
  });

  it('nests message/rfc822 with envelope, body and lines', () => {
    const s = bs('Content-Type: message/rfc822\n\nFrom: in@x\nSubject: inner\n\nbody\n') as unknown[];
    expect(s.slice(0, 7)).toEqual(['message', 'rfc822', null, null, null, '7bit', 36]);
    expect((s[7] as unknown[])[1]).toBe('inner');
    expect(s[8]).toEqual(['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 6, 1, null, null, null, null]);
    expect(s[9]).toBe(4);
  });

  it('nests message/global like message/rfc822 (RFC 9051 7.5.2)', () => {
    const s = bs('Content-Type: message/global\n\nFrom: in@x\nSubject: inner\n\nbody\n') as unknown[];
    expect(s.slice(0, 2)).toEqual(['message', 'global']);
    expect((s[7] as unknown[])[1]).toBe('inner');
    expect(s[9]).toBe(4);
  });

  it('defaults parts of multipart/digest to message/rfc822', () => {
    const s = bs('Content-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: a@b\nSubject: dig\n\nbody\n--d--\n') as unknown[];
    expect((s[0] as unknown[]).slice(0, 2)).toEqual(['message', 'rfc822']);
    expect(s[1]).toBe('digest');
  });

  it('ignores Content-* fields without MIME-Version or Content-Type', () => {
    expect(bs('Content-Transfer-Encoding: base64\nContent-ID: <x>\n\naGk=\n')).toEqual(['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 6, 1, null, null, null, null]);
  });

  it('writes an empty text part for a multipart without parts', () => {
    expect(bs('Content-Type: multipart/mixed\n\nno boundary\n')).toEqual([
      ['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 0, 0, null, null, null, null],
      'mixed',
      null,
      null,
      null,
      null,
    ]);
  });

  it('reports odd content types as written', () => {
    expect((bs('Content-Type: text\n\nx\n') as unknown[]).slice(0, 3)).toEqual(['text', '', ['charset', 'us-ascii']]);
    expect(bs('Content-Type: garbage\n\nx\n')).toEqual(['garbage', '', null, null, null, '7bit', 3, null, null, null, null]);
  });

  it('makes containers nested deeper than the cap opaque application/octet-stream', () => {
    let body = 'Content-Type: text/plain\n\nleaf\n';
    for (let d = MAX_DEPTH + 5; d > 0; d--) body = `Content-Type: multipart/mixed; boundary=b${d}\n\n--b${d}\n${body}--b${d}--\n`;
    let s = bs(body) as unknown[];
    let depth = 0;
    while (Array.isArray(s[0])) {
      s = s[0] as unknown[];
      depth++;
    }
    expect(depth).toBe(MAX_DEPTH - 1);
    expect(s.slice(0, 3)).toEqual(['application', 'octet-stream', ['boundary', `b${MAX_DEPTH}`]]);
  });
});

describe('bodyStructure: Dovecot canonical forms', () => {
  it('writes a plain 7bit message in canonical lower case', () => {
    expect(bs('Content-Type: TEXT/PLAIN\nContent-Transfer-Encoding: 7BIT\n\nx\n')).toEqual(['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 3, 1, null, null, null, null]);
    // a broken parameter is dropped, and what is left is plain 7bit
    expect(bs('Content-Type: Text/Plain; a; b=c\n\nx\n', false)).toEqual(['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 3, 1]);
    // any other parameter or field keeps the header's own spelling
    expect((bs('Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; format=flowed\n\nx\n') as unknown[]).slice(0, 3)).toEqual(['TEXT', 'PLAIN', ['CHARSET', 'US-ASCII', 'format', 'flowed']]);
    expect((bs('Content-Type: TEXT/PLAIN\nContent-Transfer-Encoding: 8bit\n\nx\n') as unknown[]).slice(0, 2)).toEqual(['TEXT', 'PLAIN']);
  });

  it('shows a container type on an unparsed part as application/octet-stream', () => {
    expect(bs('MIME-Version: 1.0\nContent-Type: multipart\n\nx\n')).toEqual(['application', 'octet-stream', null, null, null, '7bit', 3, null, null, null, null]);
    expect((bs('Content-Type: message\n\nx\n') as unknown[]).slice(0, 2)).toEqual(['message', '']);
  });

  it('treats junk after the subtype as an empty content type', () => {
    expect(bs('Content-Type: text/plain junk\n\nx\n')).toEqual(['', '', null, null, null, '7bit', 3, null, null, null, null]);
    expect((bs('Content-Type: text/plain; a=b junk\n\nx\n') as unknown[]).slice(0, 3)).toEqual(['text', 'plain', ['a', 'b', 'charset', 'us-ascii']]);
  });
});
