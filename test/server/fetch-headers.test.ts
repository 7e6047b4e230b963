/** Header-only FETCH: ENVELOPE and HEADER sections parse (and, where the store can, read) only the header. */
import { describe, expect, it, vi } from 'vitest';
import type { Command, FetchItem } from '../../src/protocol/ast.js';
import type { MailboxHandle } from '../../src/store/contract.js';
import { encodeValue } from '../../src/protocol/writer.js';
import { envelope, extractSection, indexMessage } from '../../src/mime/index.js';
import { fetchCommand } from '../../src/server/commands/fetch.js';
import { planFetch } from '../../src/server/fetch/build.js';
import { BodyReader } from '../../src/server/fetch/bodies.js';
import { HeaderReader, type PrefixReadable } from '../../src/server/fetch/headers.js';
import { openSession, seqSet, tagged } from './messages-helpers.js';

/** A handle over fixed messages that serves prefixes and records the lengths asked for. */
function prefixHandle(messages: Map<number, Buffer>, withPrefix = true): MailboxHandle & { asked: number[]; reads: number[] } {
  const asked: number[] = [];
  const reads: number[] = [];
  const h = {
    asked,
    reads,
    async read(uid: number) {
      reads.push(uid);
      return messages.get(uid) ?? null;
    },
  } as unknown as MailboxHandle & { asked: number[]; reads: number[] } & PrefixReadable;
  if (withPrefix) {
    h.readPrefix = async (uid: number, bytes: number) => {
      asked.push(bytes);
      const m = messages.get(uid);
      if (!m) return null;
      return { data: m.subarray(0, bytes), whole: bytes >= m.length };
    };
  }
  return h;
}

const wire = (v: Parameters<typeof encodeValue>[0]): string => encodeValue(v, { utf8: true }).toString('latin1');

/** ENVELOPE and BODY[HEADER] as the full parse gives them. */
function fullAnswers(raw: Buffer): { env: string; header: string } {
  const idx = indexMessage(raw);
  return { env: wire(envelope(raw, idx)), header: extractSection(raw, idx, { part: [], text: 'HEADER' })!.toString('latin1') };
}

const longHeader = Buffer.from(
  [
    'From: Alice <alice@example.org>',
    ...Array.from({ length: 40 }, (_, i) => `Received: from relay${i}.example.net by mx.example.org; Mon, 01 Jan 2024 10:00:${String(i).padStart(2, '0')} +0000`),
    'To: Bob <bob@example.org>, Carol <carol@example.org>',
    'Subject: a header longer than the first read',
    'Message-ID: <long@example.org>',
    '',
    'body line\n'.repeat(2000),
  ].join('\r\n'),
);
const noBody = Buffer.from('From: a@example.org\r\nSubject: no body at all\r\nTo: b@example.org');
const lfOnly = Buffer.from('From: "Lf" <lf@example.org>\nSubject: bare\n line feeds\nTo: x@example.org\n\nBody\nmore\n');

describe('HeaderReader', () => {
  it('reads a longer prefix when the header does not fit in the first chunk, never the whole message', async () => {
    const h = prefixHandle(new Map([[1, longHeader]]));
    const r = new HeaderReader(h, new BodyReader(h, [1]), 256);
    const got = (await r.read(1))!;
    expect(h.asked.length).toBeGreaterThan(1);
    expect(h.reads).toEqual([]);
    expect(got.raw.length).toBeLessThan(longHeader.length);
    expect(got.index.headerOnly).toBe(true);
    const full = fullAnswers(longHeader);
    expect(wire(envelope(got.raw, got.index))).toBe(full.env);
    expect(extractSection(got.raw, got.index, { part: [], text: 'HEADER' })!.toString('latin1')).toBe(full.header);
  });

  it('takes a message without a body (no blank line) whole', async () => {
    const h = prefixHandle(new Map([[1, noBody]]));
    const got = (await new HeaderReader(h, new BodyReader(h, [1]), 16).read(1))!;
    expect(got.raw.equals(noBody)).toBe(true);
    const full = fullAnswers(noBody);
    expect(wire(envelope(got.raw, got.index))).toBe(full.env);
    expect(extractSection(got.raw, got.index, { part: [], text: 'HEADER' })!.toString('latin1')).toBe(full.header);
  });

  it('serves the header of an LF-only message with CRLF line ends', async () => {
    const h = prefixHandle(new Map([[1, lfOnly]]));
    const got = (await new HeaderReader(h, new BodyReader(h, [1]), 8).read(1))!;
    const header = extractSection(got.raw, got.index, { part: [], text: 'HEADER' })!.toString('latin1');
    expect(header).toBe('From: "Lf" <lf@example.org>\r\nSubject: bare\r\n line feeds\r\nTo: x@example.org\r\n\r\n');
    expect(header).toBe(fullAnswers(lfOnly).header);
    expect(wire(envelope(got.raw, got.index))).toBe(fullAnswers(lfOnly).env);
  });

  it('falls back to whole reads when the store has no prefix reads', async () => {
    const h = prefixHandle(new Map([[1, longHeader]]), false);
    const got = (await new HeaderReader(h, new BodyReader(h, [1])).read(1))!;
    expect(h.reads).toEqual([1]);
    expect(wire(envelope(got.raw, got.index))).toBe(fullAnswers(longHeader).env);
    expect(await new HeaderReader(h, new BodyReader(h, [2])).read(2)).toBeNull();
  });
});

describe('planFetch header-only items', () => {
  const body = (text?: 'HEADER' | 'HEADER.FIELDS' | 'TEXT', part: number[] = []): FetchItem => ({ type: 'BODY[]', peek: true, section: { part, text, fields: text === 'HEADER.FIELDS' ? ['SUBJECT'] : undefined } });
  it('marks top-level HEADER sections and RFC822.HEADER as header-only', () => {
    for (const items of [[body('HEADER')], [body('HEADER.FIELDS')], [{ type: 'RFC822.HEADER' } as FetchItem]]) {
      const p = planFetch(items, false, false);
      expect([p.needHeader, p.needIndex, p.needRaw]).toEqual([true, false, false]);
    }
    expect(planFetch([body('TEXT')], false, false).needIndex).toBe(true);
    expect(planFetch([body('HEADER', [1])], false, false).needIndex).toBe(true);
  });
});

describe('FETCH without a full parse', () => {
  type FetchCmd = Extract<Command, { name: 'FETCH' }>;
  const cmd = (items: FetchItem[]): FetchCmd => ({ tag: 'A1', name: 'FETCH', uid: false, sequence: seqSet('1:*'), items, changedSince: undefined, vanished: false });
  const items: FetchItem[] = [
    { type: 'ENVELOPE' },
    { type: 'BODY[]', peek: true, section: { part: [], text: 'HEADER' } },
    { type: 'BODY[]', peek: true, section: { part: [], text: 'HEADER.FIELDS', fields: ['Subject'] } },
    { type: 'RFC822.SIZE' },
  ];

  it('answers ENVELOPE and header sections from the header alone, LF-only and body-less messages included', async () => {
    // Unique subjects: the process-wide structure cache must not answer ENVELOPE here.
    const tag = `${process.pid}-${Date.now()}`;
    const lf = Buffer.from(lfOnly.toString('latin1').replace('bare', `bare ${tag}`), 'latin1');
    const nb = Buffer.from(noBody.toString('latin1').replace('no body', `no body ${tag}`), 'latin1');
    const s = await openSession([lf, nb]);
    // As a store without structures (maildir's default): the memory store would have the server compute all answers to write back.
    Object.assign(s.handle, { structures: undefined, saveStructures: undefined });
    const message = vi.spyOn(s.ctx, 'message');
    expect(tagged(await fetchCommand(s.ctx, cmd(items)))).toBe('OK Fetch completed.');
    expect(message).not.toHaveBeenCalled();
    const out = s.ctx.lines.join('\n');
    for (const raw of [lf, nb]) {
      const full = fullAnswers(raw);
      expect(out).toContain(`ENVELOPE ${full.env}`);
      expect(out).toContain(full.header);
    }
    expect(out).toContain(`BODY[HEADER.FIELDS (SUBJECT)] {${`Subject: bare ${tag}\r\n line feeds\r\n\r\n`.length}}\r\nSubject: bare ${tag}\r\n line feeds\r\n\r\n`);
    expect(out).toContain(`BODY[HEADER.FIELDS (SUBJECT)] {${`Subject: no body ${tag} at all\r\n`.length}}\r\nSubject: no body ${tag} at all\r\n`);
  });

  it('still parses fully when an item needs the body too', async () => {
    const s = await openSession([lfOnly]);
    const message = vi.spyOn(s.ctx, 'message');
    await fetchCommand(s.ctx, cmd([...items, { type: 'BODY[]', peek: true, section: { part: [1] } }]));
    expect(message).toHaveBeenCalled();
    expect(s.ctx.lines.join('\n')).toContain(fullAnswers(lfOnly).header);
  });
});
