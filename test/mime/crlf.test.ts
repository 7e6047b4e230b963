import { describe, expect, it } from 'vitest';
import { hasBareLf, toCrlf } from '../../src/mime/crlf.js';

describe('toCrlf', () => {
  it('leaves CRLF text untouched (same buffer)', () => {
    const b = Buffer.from('a\r\nb\r\n');
    expect(hasBareLf(b)).toBe(false);
    expect(toCrlf(b)).toBe(b);
  });
  it('turns bare LF into CRLF, including at the start and end', () => {
    expect(toCrlf(Buffer.from('\na\nb\r\nc\n')).toString()).toBe('\r\na\r\nb\r\nc\r\n');
  });
  it('keeps a lone CR as it is', () => {
    expect(toCrlf(Buffer.from('a\rb\n')).toString()).toBe('a\rb\r\n');
  });
});
