import { describe, expect, it } from 'vitest';
import { decodeBase64, decodePart, decodeQuotedPrintable, indexMessage } from '../../src/mime/index.js';
import { crlfMessage } from './helpers.js';

function binary(text: string, part: number[]): string | null {
  const raw = crlfMessage(text);
  const r = decodePart(raw, indexMessage(raw), part);
  return r === null || r === 'UNKNOWN-CTE' ? r : r.toString('latin1');
}

describe('transfer decoders', () => {
  it('decodes base64, ignoring bytes outside the alphabet (RFC 2045 6.8)', () => {
    expect(decodeBase64(Buffer.from('aGVs\r\nbG8=')).toString()).toBe('hello');
    expect(decodeBase64(Buffer.from('aG Vs*!bG8')).toString()).toBe('hello');
    expect(decodeBase64(Buffer.from('QUJD=RE')).toString()).toBe('ABCD');
    expect(decodeBase64(Buffer.from('a')).length).toBe(0);
    const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 253, 254, 255]);
    expect(decodeBase64(Buffer.from(bytes.toString('base64'))).equals(bytes)).toBe(true);
  });

  it('decodes quoted-printable: soft breaks, trailing space, either hex case', () => {
    expect(decodeQuotedPrintable(Buffer.from('h=C3=A9llo =\r\nworld  \r\nx=3d=3D\r\n')).toString('latin1')).toBe('h\xc3\xa9llo world\r\nx==\r\n');
    expect(decodeQuotedPrintable(Buffer.from('soft = \nnext\n')).toString()).toBe('soft next\r\n');
    // a broken escape is kept literally (RFC 2045 6.7 note 1)
    expect(decodeQuotedPrintable(Buffer.from('bad =ZZ and =4')).toString()).toBe('bad =ZZ and =4');
    expect(decodeQuotedPrintable(Buffer.from('ends=')).toString()).toBe('ends');
  });
});

describe('decodePart (BINARY, RFC 3516)', () => {
  const MSG = `From: a@b
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=o

--o
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

caf=C3=A9
--o
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAEC/w==
--o
Content-Type: message/rfc822

From: x@y
Content-Type: text/plain
Content-Transfer-Encoding: base64

aGVsbG8=
--o--
`;

  it('decodes a leaf by its transfer encoding', () => {
    expect(binary(MSG, [1])).toBe('caf\xc3\xa9');
    expect([...Buffer.from(binary(MSG, [2])!, 'latin1')]).toEqual([0, 1, 2, 255]);
    expect(binary(MSG, [9])).toBeNull();
  });

  it('decodes the leaves below a message part and relabels them binary', () => {
    expect(binary(MSG, [3])).toBe('From: x@y\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nhello');
    expect(binary(MSG, [3, 1])).toBe('hello');
  });

  it('decodes the whole message for [] with headers rewritten', () => {
    const all = binary(MSG, [])!;
    expect(all.startsWith('From: a@b\r\nMIME-Version: 1.0\r\n')).toBe(true);
    expect(all).toContain('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: binary\r\n\r\ncaf\xc3\xa9\r\n--o\r\n');
    expect(all).not.toContain('base64');
    expect(all.endsWith('--o--\r\n')).toBe(true);
  });

  it('reports an unknown encoding anywhere below as UNKNOWN-CTE', () => {
    const m = 'Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n--b--\n';
    expect(binary(m, [1])).toBe('UNKNOWN-CTE');
    expect(binary(m, [])).toBe('UNKNOWN-CTE');
  });

  it('uses the raw Content-Transfer-Encoding even without MIME-Version', () => {
    expect(binary('Content-Transfer-Encoding: base64\n\naGk=\n', [1])).toBe('hi');
  });

  it('serves 7bit bodies with CRLF line ends and keeps NUL', () => {
    const raw = Buffer.from('Subject: x\n\na\x00b\nc\n', 'latin1');
    const r = decodePart(raw, indexMessage(raw), [1]) as Buffer;
    expect(r.toString('latin1')).toBe('a\x00b\r\nc\r\n');
  });
});
