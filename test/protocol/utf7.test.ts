import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Utf7Error, decodeMailboxName, encodeMailboxName } from '../../src/protocol/utf7.js';

describe('modified UTF-7 (RFC 3501 5.1.3)', () => {
  it('encodes and decodes the RFC example', () => {
    expect(encodeMailboxName('~peter/mail/台北/日本語')).toBe('~peter/mail/&U,BTFw-/&ZeVnLIqe-');
    expect(decodeMailboxName('~peter/mail/&U,BTFw-/&ZeVnLIqe-')).toBe('~peter/mail/台北/日本語');
  });

  it('writes "&" as "&-" and reads it back', () => {
    expect(encodeMailboxName('&')).toBe('&-');
    expect(encodeMailboxName('Tom & Jerry')).toBe('Tom &- Jerry');
    expect(decodeMailboxName('&-')).toBe('&');
    expect(decodeMailboxName('&-&-')).toBe('&&');
    expect(decodeMailboxName('Tom &- Jerry')).toBe('Tom & Jerry');
  });

  it('handles common names, controls, astral characters and the empty name', () => {
    const cases: Array<[string, string]> = [
      ['', ''],
      ['INBOX', 'INBOX'],
      ['Entwürfe', 'Entw&APw-rfe'],
      ['é', '&AOk-'],
      ['é&', '&AOk-&-'],
      ['\u0001', '&AAE-'],
      ['\u007f', '&AH8-'],
      ['😀', '&2D3eAA-'],
      ['a😀b', 'a&2D3eAA-b'],
    ];
    for (const [uni, wire] of cases) {
      expect(encodeMailboxName(uni)).toBe(wire);
      expect(decodeMailboxName(wire)).toBe(uni);
    }
  });

  it('puts consecutive non-ASCII characters into one encoded run', () => {
    expect(encodeMailboxName('éé')).toBe('&AOkA6Q-');
    expect(encodeMailboxName('日本語')).toBe('&ZeVnLIqe-');
  });

  it('rejects invalid encodings instead of guessing', () => {
    const invalid: Array<[string, string]> = [
      ['&', '"&" not closed at the end'],
      ['&AOk', 'run not closed'],
      ['a&AOkb', 'run not closed (hits a non-base64 character)'],
      ['&AO!-', 'character outside modified BASE64'],
      ['&AOk/-', '"/" is standard BASE64, not modified'],
      ['&AOk=-', 'padding "=" is not used'],
      ['&AOl-', 'non-zero padding bits'],
      ['&AOkA-', 'superfluous BASE64 character (non-minimal)'],
      ['&AGE-', 'encoded printable ASCII "a"'],
      ['&ACA-', 'encoded space'],
      ['&AH4-', 'encoded "~"'],
      ['&ACY-', 'encoded "&" (must be "&-")'],
      ['&AOkAYQ-', 'run ending in a character that could be direct'],
      ['&AOk-&AOk-', 'adjacent encoded runs must be one run'],
      ['&2D0-', 'unpaired high surrogate at the end of a run'],
      ['&3AA-', 'unpaired low surrogate'],
      ['&2D3YPQ-', 'two high surrogates'],
      ['&2D0A6Q-', 'high surrogate followed by a BMP character'],
      ['&2D0-&3AA-', 'surrogate pair split across two runs'],
      ['&&-', '"&" inside a run'],
      ['a\u00e9b', 'raw 8-bit character'],
      ['a\tb', 'raw control character'],
      ['&-&', 'second "&" not closed'],
    ];
    expect(invalid.length).toBeGreaterThanOrEqual(12);
    for (const [wire, why] of invalid) {
      expect(() => decodeMailboxName(wire), why).toThrow(Utf7Error);
    }
  });

  it('refuses to encode an unpaired surrogate', () => {
    expect(() => encodeMailboxName('a\ud83d')).toThrow(Utf7Error);
    expect(() => encodeMailboxName('\ude00b')).toThrow(Utf7Error);
    expect(() => encodeMailboxName('\ud83d\ud83d\ude00')).toThrow(Utf7Error);
  });

  it('round-trips arbitrary Unicode, astral planes included, through printable ASCII', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const wire = encodeMailboxName(s);
        return /^[\x20-\x7e]*$/.test(wire) && decodeMailboxName(wire) === s;
      }),
      { numRuns: 1000 },
    );
  });

  it('accepts only the canonical spelling: whatever decodes re-encodes to the same bytes', () => {
    const alphabet = fc.constantFrom('&', '-', 'A', 'O', 'k', '2', 'D', '3', 'e', ',', '+', 'a', '/', ' ', 'Z', '0');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 16 }), (chars) => {
        const wire = chars.join('');
        let decoded: string;
        try {
          decoded = decodeMailboxName(wire);
        } catch (err) {
          expect(err).toBeInstanceOf(Utf7Error);
          return;
        }
        expect(encodeMailboxName(decoded)).toBe(wire);
      }),
      { numRuns: 5000 },
    );
  });
});
