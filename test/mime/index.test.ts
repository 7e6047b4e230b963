import { describe, expect, it } from 'vitest';
import { extractSection, indexMessage, resolvePart } from '../../src/mime/index.js';
import { crlfMessage } from './helpers.js';

const MIXED = crlfMessage(`From: a@example.com
Subject: test
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

preamble
--XX
Content-Type: text/plain

hello
world
--XX
Content-Type: message/rfc822

From: inner@example.com
Subject: inner
Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/plain

inner plain
--b
Content-Type: text/html

<b>x</b>
--b--
--XX
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAEC
--XX--
epilogue
`);

function text(b: Buffer | null): string | null {
  return b === null ? null : b.toString('latin1');
}

describe('indexMessage: tree and offsets', () => {
  const idx = indexMessage(MIXED);
  const root = idx.root;

  it('finds the parts of a multipart with nested message/rfc822', () => {
    expect(root.multipart).toBe(true);
    expect(root.children.map((c) => `${c.type}/${c.subtype}`)).toEqual(['text/plain', 'message/rfc822', 'application/octet-stream']);
    const msg = root.children[1]!.message!;
    expect(msg.multipart).toBe(true);
    expect(msg.children.map((c) => c.subtype)).toEqual(['plain', 'html']);
    expect(idx.partCount).toBe(7);
  });

  it('records byte offsets of headers and bodies', () => {
    const p1 = root.children[0]!;
    expect(MIXED.toString('latin1', p1.headerStart, p1.headerEnd)).toBe('Content-Type: text/plain\r\n');
    // the line break before the boundary belongs to the boundary
    expect(MIXED.toString('latin1', p1.bodyStart, p1.bodyEnd)).toBe('hello\r\nworld');
    expect(p1.lines).toBe(1);
    expect(p1.size).toBe(12);
    expect(root.headers.map((h) => h.name)).toEqual(['From', 'Subject', 'MIME-Version', 'Content-Type']);
    expect(root.bodyEnd).toBe(MIXED.length);
    expect(idx.size).toBe(MIXED.length);
    expect(idx.bareLf).toBe(false);
  });

  it('keeps the epilogue and preamble inside the multipart body', () => {
    const body = MIXED.toString('latin1', root.bodyStart, root.bodyEnd);
    expect(body.startsWith('preamble\r\n--XX')).toBe(true);
    expect(body.endsWith('--XX--\r\nepilogue\r\n')).toBe(true);
  });

  it('resolves IMAP part numbers (RFC 3501 6.4.5)', () => {
    expect(resolvePart(root, [1])).toBe(root.children[0]);
    expect(resolvePart(root, [2])).toBe(root.children[1]);
    expect(resolvePart(root, [2, 1])).toBe(root.children[1]!.message!.children[0]);
    expect(resolvePart(root, [2, 2])).toBe(root.children[1]!.message!.children[1]);
    expect(resolvePart(root, [4])).toBeNull();
    // a non-multipart part is its own part 1, at any level (Dovecot)
    expect(resolvePart(root, [1, 1])).toBe(root.children[0]);
    expect(resolvePart(root, [1, 2])).toBeNull();
    expect(resolvePart(root, [0])).toBeNull();
  });
});

describe('extractSection', () => {
  const idx = indexMessage(MIXED);

  it('returns part bodies, MIME headers, and the whole message', () => {
    expect(text(extractSection(MIXED, idx, { part: [] }))).toBe(MIXED.toString('latin1'));
    expect(text(extractSection(MIXED, idx, { part: [1] }))).toBe('hello\r\nworld');
    expect(text(extractSection(MIXED, idx, { part: [1], text: 'MIME' }))).toBe('Content-Type: text/plain\r\n\r\n');
    expect(text(extractSection(MIXED, idx, { part: [3] }))).toBe('AAEC');
    expect(text(extractSection(MIXED, idx, { part: [2, 2] }))).toBe('<b>x</b>');
  });

  it('serves HEADER and TEXT of an embedded message as n.HEADER / n.TEXT', () => {
    expect(text(extractSection(MIXED, idx, { part: [2], text: 'HEADER' }))).toBe(
      'From: inner@example.com\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n',
    );
    expect(text(extractSection(MIXED, idx, { part: [2], text: 'TEXT' }))!.startsWith('--b\r\nContent-Type: text/plain')).toBe(true);
    expect(text(extractSection(MIXED, idx, { part: [2], text: 'HEADER.FIELDS', fields: ['subject'] }))).toBe('Subject: inner\r\n\r\n');
    // HEADER of a part that is not message/rfc822 does not exist
    expect(extractSection(MIXED, idx, { part: [1], text: 'HEADER' })).toBeNull();
  });

  it('matches HEADER.FIELDS names case-insensitively and keeps the original bytes', () => {
    const raw = crlfMessage('SUBJECT:  Hello\n\tfolded\nFrom: a@b\nX-Other: 1\nsubject: again\n\nbody\n');
    const i = indexMessage(raw);
    expect(text(extractSection(raw, i, { part: [], text: 'HEADER.FIELDS', fields: ['Subject'] }))).toBe('SUBJECT:  Hello\r\n\tfolded\r\nsubject: again\r\n\r\n');
    expect(text(extractSection(raw, i, { part: [], text: 'HEADER.FIELDS.NOT', fields: ['SUBJECT'] }))).toBe('From: a@b\r\nX-Other: 1\r\n\r\n');
    expect(text(extractSection(raw, i, { part: [], text: 'HEADER.FIELDS', fields: ['nothing'] }))).toBe('\r\n');
    expect(text(extractSection(raw, i, { part: [], text: 'HEADER' }))).toBe('SUBJECT:  Hello\r\n\tfolded\r\nFrom: a@b\r\nX-Other: 1\r\nsubject: again\r\n\r\n');
    expect(text(extractSection(raw, i, { part: [], text: 'TEXT' }))).toBe('body\r\n');
  });

  it('treats a non-multipart message as its own part 1', () => {
    const raw = crlfMessage('Subject: x\n\nonly body\n');
    const i = indexMessage(raw);
    expect(text(extractSection(raw, i, { part: [1] }))).toBe('only body\r\n');
    expect(text(extractSection(raw, i, { part: [1], text: 'MIME' }))).toBe('Subject: x\r\n\r\n');
    expect(extractSection(raw, i, { part: [2] })).toBeNull();
    expect(extractSection(raw, i, { part: [1, 1] })).toBeNull();
  });

  it('numbers into a top-level message/rfc822 (1 is the message, 1.1 its body)', () => {
    const raw = crlfMessage('Content-Type: message/rfc822\n\nFrom: x@y\nSubject: in\n\ninner body\n');
    const i = indexMessage(raw);
    expect(text(extractSection(raw, i, { part: [1] }))).toBe('From: x@y\r\nSubject: in\r\n\r\ninner body\r\n');
    expect(text(extractSection(raw, i, { part: [1, 1] }))).toBe('inner body\r\n');
    expect(text(extractSection(raw, i, { part: [1], text: 'HEADER.FIELDS', fields: ['SUBJECT'] }))).toBe('Subject: in\r\n\r\n');
  });

  it('serves LF-only mail with CRLF and sizes it accordingly', () => {
    const raw = Buffer.from('Subject: lf\n\nline1\nline2\n');
    const i = indexMessage(raw);
    expect(i.bareLf).toBe(true);
    expect(i.size).toBe(raw.length + 4);
    expect(text(extractSection(raw, i, { part: [] }))).toBe('Subject: lf\r\n\r\nline1\r\nline2\r\n');
    expect(extractSection(raw, i, { part: [] })!.length).toBe(i.size);
    expect(i.root.size).toBe(14);
    expect(i.root.lines).toBe(2);
  });

  it('replaces NUL with 0x80 in BODY output', () => {
    const raw = Buffer.from('Subject: n\r\n\r\na\x00b\r\n', 'latin1');
    const out = extractSection(raw, indexMessage(raw), { part: [1] })!;
    expect([...out]).toEqual([0x61, 0x80, 0x62, 0x0d, 0x0a]);
    expect(raw.includes(0x80)).toBe(false);
  });
});
