/** Shared helpers for the MIME tests. */
import type { ResponseValue } from '../../src/protocol/values.js';

/** A message from text written with "\n": line ends become CRLF; bytes are latin1. */
export function crlfMessage(text: string): Buffer {
  return Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** A response value as plain JSON: literals become their latin1 text. */
export function plain(v: ResponseValue): unknown {
  if (v === null || typeof v === 'number' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if ('adjacent' in v) return v.adjacent.map(plain);
  if ('atom' in v) return v.atom;
  if ('literal' in v) return v.literal.toString('latin1');
  return '<stream>';
}
