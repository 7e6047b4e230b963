/**
 * One test per malformed-mail fixture (test/fixtures/mime/*.eml). The expected structures were
 * checked against Dovecot 2.3 (the golden interop test also runs these files).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bodyStructure, decodePart, envelope, extractSection, indexMessage, MAX_DEPTH, type MimePart } from '../../src/mime/index.js';
import { plain } from './helpers.js';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/mime');

function load(name: string): { raw: Buffer; index: ReturnType<typeof indexMessage> } {
  const raw = readFileSync(path.join(dir, name));
  return { raw, index: indexMessage(raw) };
}

function body(raw: Buffer, p: MimePart): string {
  return raw.toString('latin1', p.bodyStart, p.bodyEnd);
}

describe('malformed mail fixtures', () => {
  it('missing-close-boundary: the last part runs to the end', () => {
    const { raw, index } = load('missing-close-boundary.eml');
    expect(index.root.children).toHaveLength(2);
    expect(body(raw, index.root.children[1]!)).toBe('AAECAwQF\r\n');
    expect(index.root.children[1]!.bodyEnd).toBe(raw.length);
    expect((decodePart(raw, index, [2]) as Buffer).equals(Buffer.from([0, 1, 2, 3, 4, 5]))).toBe(true);
  });

  it('boundary-prefix: the longest open boundary wins, a prefix match still counts', () => {
    const { raw, index } = load('boundary-prefix.eml');
    const [alt, text, trap] = index.root.children;
    expect(index.root.children).toHaveLength(3);
    expect(alt!.multipart).toBe(true);
    expect(alt!.children.map((c) => body(raw, c))).toEqual(['inner plain', '<p>inner html</p>']);
    // "--=_bogus" starts with "--=_b": it is a boundary (RFC 2046 5.1.1 only requires the prefix)
    expect(body(raw, text!)).toBe('text with a line that starts like the boundary:');
    // the line after that boundary line is the next part's header, cut short by "--=_b--"
    expect(raw.toString('latin1', trap!.headerStart, trap!.headerEnd)).toBe('end');
    expect(trap!.size).toBe(0);
  });

  it('broken-base64: indexed normally, decoded leniently', () => {
    const { raw, index } = load('broken-base64.eml');
    expect(plain(bodyStructure(raw, index, false))).toEqual([
      ['text', 'plain', ['charset', 'us-ascii'], null, null, 'base64', 22, 2],
      ['application', 'octet-stream', null, null, null, 'BASE64', 7],
      'mixed',
    ]);
    expect((decodePart(raw, index, [1]) as Buffer).toString()).toBe('hello world');
    expect((decodePart(raw, index, [2]) as Buffer).toString()).toBe('ABCD');
  });

  it('raw-8bit-headers: bytes kept as they are', () => {
    const { raw, index } = load('raw-8bit-headers.eml');
    const e = plain(envelope(raw, index)) as unknown[];
    expect(e[1]).toBe('Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln');
    expect(e[2]).toEqual([['J\xfcrgen M\xfcller', null, 'j', 'example.com']]);
    const s = plain(bodyStructure(raw, index, true)) as unknown[];
    expect(s[2]).toEqual(['charset', 'utf-8', 'name', 'na\xc3\xafve.txt']);
  });

  it('lf-only: parsed with bare LF, served and sized with CRLF', () => {
    const { raw, index } = load('lf-only.eml');
    expect(index.bareLf).toBe(true);
    expect(index.root.children).toHaveLength(2);
    const part1 = extractSection(raw, index, { part: [1] })!;
    expect(part1.toString()).toBe('line one\r\nline two');
    expect(index.root.children[0]!.size).toBe(part1.length);
    expect(index.size).toBe(extractSection(raw, index, { part: [] })!.length);
  });

  it('no-blank-line: the whole message is header, the body is empty', () => {
    const { raw, index } = load('no-blank-line.eml');
    expect(index.root.headers.map((h) => h.name)).toEqual(['From', 'Subject', 'To']);
    expect(index.root.bodyStart).toBe(raw.length);
    expect(plain(bodyStructure(raw, index, false))).toEqual(['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 0, 0]);
    expect(extractSection(raw, index, { part: [], text: 'TEXT' })!.length).toBe(0);
    // HEADER.FIELDS.NOT gives the header as it is, without a blank line it never had
    expect(extractSection(raw, index, { part: [], text: 'HEADER.FIELDS.NOT', fields: ['x'] })!.toString()).toBe(raw.toString());
    // no blank line in the message, none in HEADER.FIELDS either (RFC 3501 6.4.5)
    expect(extractSection(raw, index, { part: [], text: 'HEADER.FIELDS', fields: ['to'] })!.toString()).toBe('To: b@example.com\r\n');
  });

  it('part-header-cut: a boundary ends a part header; empty parts survive', () => {
    const { raw, index } = load('part-header-cut.eml');
    const parts = index.root.children;
    expect(parts).toHaveLength(3);
    expect(raw.toString('latin1', parts[0]!.headerStart, parts[0]!.headerEnd)).toBe('Content-Type: text/plain');
    expect(parts[0]!.size).toBe(0);
    expect(parts[1]!.message).not.toBeNull();
    expect(body(raw, parts[2]!)).toBe('last');
  });

  it('deep-nesting: containers stop at the depth cap', () => {
    const { raw, index } = load('deep-nesting.eml');
    let p = index.root;
    let depth = 0;
    while (p.multipart) {
      p = p.children[0]!;
      depth++;
    }
    expect(depth).toBe(MAX_DEPTH - 1);
    expect(p.type).toBe('application');
    expect(p.contentType).toBe('multipart');
    expect(p.children).toHaveLength(0);
    expect(p.bodyEnd).toBeGreaterThan(p.bodyStart);
    expect(bodyStructure(raw, index, true)).toBeDefined();
  });

  it('nul-bytes: indexed; NUL becomes U+FFFD in ENVELOPE and 0x80 in BODY', () => {
    const { raw, index } = load('nul-bytes.eml');
    expect(plain(envelope(raw, index)[1])).toBe('nul\xef\xbf\xbdbyte');
    expect([...extractSection(raw, index, { part: [1] })!]).toContain(0x80);
    expect([...(decodePart(raw, index, [1]) as Buffer)]).toContain(0);
  });
});
