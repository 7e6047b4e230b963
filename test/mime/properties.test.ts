/**
 * Properties of the indexer on arbitrary and mutated input: it never throws, offsets nest, and the
 * sizes BODYSTRUCTURE reports are the lengths of the bytes BODY[] serves.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bodyStructure, decodePart, envelope, extractSection, indexMessage, sortFields, bodyText, type MessageIndex, type MimePart } from '../../src/mime/index.js';
import { generateCorpus } from '../fixtures/corpus.js';

function countLf(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, i + 1)) n++;
  return n;
}

/** Check structural invariants; returns a description of the first violation, or null. */
function violation(raw: Buffer, index: MessageIndex): string | null {
  const len = raw.length;
  const check = (p: MimePart, lo: number, hi: number, path: number[]): string | null => {
    if (!(lo <= p.headerStart && p.headerStart <= p.headerEnd && p.headerEnd <= p.bodyStart && p.bodyStart <= p.bodyEnd && p.bodyEnd <= hi)) {
      return `offsets out of order at ${path.join('.')}: ${p.headerStart} ${p.headerEnd} ${p.bodyStart} ${p.bodyEnd} in [${lo}, ${hi}]`;
    }
    if (path.length > 0) {
      const bytes = extractSection(raw, index, { part: path });
      if (bytes === null || bytes.length !== p.size) return `size ${p.size} != ${bytes?.length} at ${path.join('.')}`;
      if (countLf(bytes) !== p.lines) return `lines ${p.lines} != ${countLf(bytes)} at ${path.join('.')}`;
    }
    let prev = p.bodyStart;
    for (let i = 0; i < p.children.length; i++) {
      const c = p.children[i]!;
      if (c.headerStart < prev) return `child ${i + 1} overlaps at ${path.join('.')}`;
      const v = check(c, p.bodyStart, p.bodyEnd, [...path, i + 1]);
      if (v) return v;
      prev = c.bodyEnd;
    }
    if (p.message && (p.message.headerStart !== p.bodyStart || p.message.bodyEnd > p.bodyEnd)) return `embedded message outside its part at ${path.join('.')}`;
    return null;
  };
  if (index.root.bodyEnd !== len) return 'root does not end at the end of data';
  if (extractSection(raw, index, { part: [] })!.length !== index.size) return 'size differs from BODY[] length';
  return check(index.root, 0, len, []);
}

function exercise(raw: Buffer): string | null {
  const index = indexMessage(raw);
  envelope(raw, index);
  bodyStructure(raw, index, true);
  decodePart(raw, index, []);
  decodePart(raw, index, [1]);
  extractSection(raw, index, { part: [1], text: 'MIME' });
  extractSection(raw, index, { part: [], text: 'HEADER.FIELDS.NOT', fields: ['Subject'] });
  sortFields(raw, index);
  bodyText(raw, index);
  return violation(raw, index);
}

const LINES = [
  'Content-Type: multipart/mixed; boundary=b',
  'Content-Type: multipart/alternative; boundary="b2"',
  'Content-Type: message/rfc822',
  'Content-Type: multipart/digest; boundary=b',
  'Content-Transfer-Encoding: base64',
  'Content-Transfer-Encoding: quoted-printable',
  'MIME-Version: 1.0',
  'From: "A" <a@b>, grp: c@d;',
  'Subject: =?utf-8?q?x?=',
  ' folded',
  '--b',
  '--b--',
  '--b2',
  '--b2--',
  '--bb',
  '',
  'aGVsbG8=',
  'soft =',
  '=ZZ',
  'text \xff\x00',
];

const mimeish = fc
  .array(fc.tuple(fc.constantFrom(...LINES), fc.constantFrom('\r\n', '\n', '\r\n', '')), { maxLength: 60 })
  .map((lines) => Buffer.from(lines.map(([l, e]) => l + e).join(''), 'latin1'));

describe('indexer properties', () => {
  it('never throws and keeps its invariants on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        expect(exercise(Buffer.from(bytes))).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it('never throws and keeps its invariants on MIME-like line soup', () => {
    fc.assert(
      fc.property(mimeish, (raw) => {
        expect(exercise(raw)).toBeNull();
      }),
      { numRuns: 400 },
    );
  });

  it('survives truncation and byte damage of real messages', () => {
    const corpus = generateCorpus(64).filter((m) => m.raw.length < 20000);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: corpus.length - 1 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        (which, cut, flips) => {
          const src = corpus[which]!.raw;
          const raw = Buffer.from(src.subarray(0, Math.floor(src.length * (0.5 + cut / 2))));
          for (const [at, byte] of flips) if (raw.length > 0) raw[Math.floor(at * raw.length) % raw.length] = byte;
          expect(exercise(raw)).toBeNull();
        },
      ),
      { numRuns: 200 },
    );
  });

  it('handles the empty message', () => {
    const raw = Buffer.alloc(0);
    const index = indexMessage(raw);
    expect(index.size).toBe(0);
    expect(exercise(raw)).toBeNull();
    expect(extractSection(raw, index, { part: [1] })!.length).toBe(0);
  });
});
