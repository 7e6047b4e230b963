/** The search layout cache (src/server/search/layout.ts): bounded, least recently used out first. */
import { describe, expect, it } from 'vitest';
import { LayoutCache, layoutOf, type SearchLayout } from '../../src/server/search/layout.js';
import { indexMessage } from '../../src/mime/index.js';

const layout = (n: number): SearchLayout => ({ plainHeaders: Array.from({ length: n }, (_, i) => i), otherHeaders: [], plainBodies: [], otherBodies: [] });

describe('LayoutCache', () => {
  it('stays within its byte bound, evicting the least recently used first', () => {
    const cache = new LayoutCache(1000);
    cache.set('a', layout(2));
    cache.set('b', layout(2));
    cache.set('c', layout(2));
    expect(cache.get('a')).toBeDefined();
    // Each costs about 176 bytes: the sixth forces out the least recently used, which is b now.
    for (const k of ['d', 'e', 'f']) cache.set(k, layout(2));
    expect(cache.size).toBe(5);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    cache.set('huge', layout(200));
    expect(cache.size).toBe(0);
    expect(new LayoutCache(0).size).toBe(0);
  });

  it('sorts a message into plain and encoded header blocks and bodies', () => {
    const raw = Buffer.from(
      'Subject: =?utf-8?q?x?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n' +
        '--b\r\nContent-Type: text/plain\r\n\r\nplain text\r\n' +
        '--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n' +
        '--b\r\nContent-Type: image/png\r\n\r\nxx\r\n--b--\r\n',
    );
    const l = layoutOf(raw, indexMessage(raw));
    expect(l.otherHeaders.length).toBe(2);
    expect(l.plainHeaders.length).toBe(6);
    expect(raw.toString('latin1', l.plainBodies[0], l.plainBodies[1])).toBe('plain text');
    expect(l.otherBodies.map((b) => [b.cte, b.charset])).toEqual([['base64', 'utf-8']]);
  });
});
