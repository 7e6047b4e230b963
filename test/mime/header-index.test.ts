/** indexHeader: the top-level header alone, from a whole message or a prefix of one. */
import { describe, expect, it } from 'vitest';
import { indexHeader, indexMessage } from '../../src/mime/index.js';

const msg = Buffer.from('From: a@example.org\r\nSubject: folded\r\n  subject\r\nTo: b@example.org\r\n\r\nbody\r\n--x\r\n');

describe('indexHeader', () => {
  it('finds the same header fields and offsets as the full index', () => {
    const { index, complete } = indexHeader(msg);
    const full = indexMessage(msg).root;
    expect(complete).toBe(true);
    expect(index.headerOnly).toBe(true);
    expect(index.root.headers).toEqual(full.headers);
    expect([index.root.headerEnd, index.root.bodyStart, index.root.headerSize]).toEqual([full.headerEnd, full.bodyStart, full.headerSize]);
  });

  it('reports a prefix that ends inside the header (or inside the blank line) as incomplete', () => {
    const blank = msg.indexOf('\r\n\r\n');
    for (const cut of [5, blank, blank + 2, blank + 3]) expect(indexHeader(msg.subarray(0, cut)).complete).toBe(false);
    expect(indexHeader(msg.subarray(0, blank + 4)).complete).toBe(true);
  });

  it('handles LF-only and body-less messages', () => {
    const lf = Buffer.from('Subject: x\nTo: y@example.org\n\nbody\n');
    const h = indexHeader(lf);
    expect(h.complete).toBe(true);
    expect(h.index.bareLf).toBe(true);
    expect(h.index.root.headerSize).toBe(indexMessage(lf).root.headerSize);
    const none = Buffer.from('Subject: only a header');
    expect(indexHeader(none).complete).toBe(false);
    expect(indexHeader(none).index.root.headers).toEqual(indexMessage(none).root.headers);
  });
});

describe('indexHeader on the corpus', () => {
  it('gives ENVELOPE and HEADER sections identical to the full index, from the whole message or the shortest complete prefix', async () => {
    const { generateCorpus } = await import('../fixtures/corpus.js');
    const { encodeValue } = await import('../../src/protocol/writer.js');
    const { envelope, extractSection } = await import('../../src/mime/index.js');
    const wire = (v: Parameters<typeof encodeValue>[0]): string => encodeValue(v, { utf8: true }).toString('latin1');
    const sections = [{ part: [], text: 'HEADER' as const }, { part: [], text: 'HEADER.FIELDS' as const, fields: ['From', 'Subject'] }, { part: [], text: 'HEADER.FIELDS.NOT' as const, fields: ['Received'] }];
    for (const m of generateCorpus(309)) {
      const full = indexMessage(m.raw);
      // As HeaderReader reads: 1 KB, then longer prefixes until the header is complete.
      let prefix = m.raw.subarray(0, 1024);
      while (!indexHeader(prefix).complete && prefix.length < m.raw.length) prefix = m.raw.subarray(0, prefix.length * 4);
      for (const raw of [m.raw, prefix]) {
        const h = indexHeader(raw).index;
        expect(wire(envelope(raw, h)), m.name).toBe(wire(envelope(m.raw, full)));
        for (const s of sections) expect(extractSection(raw, h, s)!.equals(extractSection(m.raw, full, s)!), `${m.name} ${s.text}`).toBe(true);
      }
    }
  });
});
