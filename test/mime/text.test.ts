import { describe, expect, it } from 'vitest';
import { baseSubject, bodyText, headerValues, indexMessage, parseDate, sortFields } from '../../src/mime/index.js';
import { crlfMessage } from './helpers.js';

function idx(text: string): { raw: Buffer; index: ReturnType<typeof indexMessage> } {
  const raw = crlfMessage(text);
  return { raw, index: indexMessage(raw) };
}

describe('headerValues', () => {
  it('decodes RFC 2047 words in several charsets and unfolds', () => {
    const { raw, index } = idx(
      'Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?= and\n =?UTF-8?B?8J+OiQ==?= =?UTF-8?B?IMOc?=\n' +
        'Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=\nSubject: =?windows-1252?Q?=93quoted=94_=80?=\n\n',
    );
    expect(headerValues(raw, index, 'subject')).toEqual(['Café crème and 🎉 Ü', '日本語', '“quoted” €']);
    expect(headerValues(raw, index, 'SUBJECT')).toHaveLength(3);
    expect(headerValues(raw, index, 'x-missing')).toEqual([]);
  });

  it('reads raw 8-bit header bytes as UTF-8, or Windows-1252 when not valid UTF-8', () => {
    const raw = Buffer.from('Subject: Gr\xc3\xbc\xc3\x9fe\r\nFrom: J\xfcrgen <j@x>\r\n\r\n', 'latin1');
    const index = indexMessage(raw);
    expect(headerValues(raw, index, 'Subject')).toEqual(['Grüße']);
    expect(headerValues(raw, index, 'From')).toEqual(['Jürgen <j@x>']);
  });
});

describe('bodyText', () => {
  it('decodes text parts by transfer encoding and charset, skipping attachments', () => {
    const { raw, index } = idx(
      'Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9\n' +
        '--b\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\nPGI+w7w8L2I+\n' +
        '--b\nContent-Type: application/octet-stream\n\nnot text\n' +
        '--b\nContent-Type: message/rfc822\n\nSubject: inner\nContent-Type: text/plain; charset=ISO-2022-JP\n\n\x1b$BF|K\\8l\x1b(B\n--b--\n',
    );
    const t = bodyText(raw, index);
    expect(t).toContain('café');
    expect(t).toContain('<b>ü</b>');
    expect(t).toContain('日本語');
    expect(t).not.toContain('not text');
  });
});

describe('sortFields (RFC 5256, RFC 5957)', () => {
  it('computes base subjects', () => {
    expect(baseSubject('Re: Fwd: [list] Hello  world (fwd)')).toBe('Hello world');
    expect(baseSubject('[fwd: Re: topic]')).toBe('topic');
    expect(baseSubject('RE:re: FW: x')).toBe('x');
    expect(baseSubject('[only blob]')).toBe('[only blob]');
    expect(baseSubject('Re[2]: x')).toBe('x');
    expect(baseSubject('   ')).toBe('');
  });

  it('extracts first mailboxes, display names and message ids', () => {
    const { raw, index } = idx(
      'From: =?UTF-8?Q?J=C3=B6rg?= <jorg@example.com>, other@example.com\nTo: plain@example.org\nCc: "C" <cc1@x>\n' +
        'Subject: =?UTF-8?Q?Re=3A_caf=C3=A9?=\nDate: Mon, 1 Jan 2001 10:00:00 +0100\nMessage-ID: <m1@x>\nIn-Reply-To: <p@x> (comment)\n' +
        'References: <a@x>\n <b@x> <p@x>\n\n',
    );
    const s = sortFields(raw, index);
    expect(s.from).toBe('jorg');
    expect(s.to).toBe('plain');
    expect(s.cc).toBe('cc1');
    expect(s.displayFrom).toBe('Jörg');
    expect(s.displayTo).toBe('plain@example.org');
    expect(s.baseSubject).toBe('café');
    expect(s.date?.toISOString()).toBe('2001-01-01T09:00:00.000Z');
    expect(s.messageId).toBe('m1@x');
    expect(s.inReplyTo).toBe('p@x');
    expect(s.references).toEqual(['a@x', 'b@x', 'p@x']);
  });

  it('leaves absent fields empty', () => {
    const { raw, index } = idx('X: y\n\n');
    expect(sortFields(raw, index)).toEqual({ baseSubject: '', from: '', to: '', cc: '', displayFrom: '', displayTo: '', references: [] });
  });

  it('parses dates with comments and rejects garbage', () => {
    expect(parseDate('Tue, 2 Feb 2021 03:04:05 -0800 (PST)')?.toISOString()).toBe('2021-02-02T11:04:05.000Z');
    expect(parseDate('not a date')).toBeUndefined();
  });
});
