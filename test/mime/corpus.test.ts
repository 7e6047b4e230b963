import { describe, expect, it } from 'vitest';
import { corpusMessage, generateCorpus, KINDS } from '../fixtures/corpus.js';
import { bodyStructure, envelope, indexMessage } from '../../src/mime/index.js';

describe('corpus generator', () => {
  const corpus = generateCorpus(300);

  it('is deterministic per seed and position', () => {
    const again = generateCorpus(40);
    for (let i = 0; i < again.length; i++) {
      expect(again[i]!.name).toBe(corpus[i]!.name);
      expect(again[i]!.raw.equals(corpus[i]!.raw)).toBe(true);
    }
    expect(corpusMessage(7).raw.equals(corpus[7]!.raw)).toBe(true);
    expect(generateCorpus(3, 2)[1]!.raw.equals(corpus[1]!.raw)).toBe(false);
  });

  it('covers every kind, malformed ones included, with unique names', () => {
    const kinds = new Set(corpus.map((m) => m.name.slice(6)));
    expect([...kinds].sort()).toEqual(Object.keys(KINDS).sort());
    for (const k of ['bad-missing-close-boundary', 'bad-boundary-prefix', 'bad-base64', 'bad-8bit-headers', 'bad-lf-only', 'bad-no-blank-line', 'bad-deep-multipart']) {
      expect(kinds.has(k)).toBe(true);
    }
    expect(new Set(corpus.map((m) => m.name)).size).toBe(corpus.length);
  });

  it('spans small to large messages', () => {
    const sizes = corpus.map((m) => m.raw.length);
    expect(Math.min(...sizes)).toBeLessThan(1000);
    expect(Math.max(...sizes)).toBeGreaterThan(100_000);
    expect(Math.max(...sizes)).toBeLessThan(250_000);
  });

  it('has the features it promises', () => {
    const all = corpus.map((m) => m.raw.toString('latin1')).join('\n');
    for (const needle of ['multipart/alternative', 'message/rfc822', 'Content-Transfer-Encoding: base64', 'quoted-printable', '=?ISO-2022-JP?', '=?ISO-8859-1?', '=?UTF-8?', '=?windows-1252?', "*0*=utf-8''", 'undisclosed-recipients:;', 'multipart/digest']) {
      expect(all).toContain(needle);
    }
    const lfOnly = corpus.find((m) => m.name.endsWith('bad-lf-only'))!;
    expect(lfOnly.raw.includes('\r\n')).toBe(false);
  });

  it('indexes every message into a structure', () => {
    for (const m of corpus) {
      const index = indexMessage(m.raw);
      expect(index.rawSize).toBe(m.raw.length);
      expect(envelope(m.raw, index)).toHaveLength(10);
      expect(Array.isArray(bodyStructure(m.raw, index, true))).toBe(true);
    }
    const nested = corpus.find((m) => m.name.endsWith('rfc822-twice'))!;
    const root = indexMessage(nested.raw).root;
    expect(root.children[1]!.message!.message).not.toBeNull();
  });
});
