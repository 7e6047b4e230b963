import { describe, expect, it } from 'vitest';
import { CommandParser } from '../../src/protocol/parser.js';
import type { Command, FetchItem, ParserEvent } from '../../src/protocol/ast.js';

function run(input: string): ParserEvent[] {
  const p = new CommandParser();
  p.push(Buffer.from(input));
  const out: ParserEvent[] = [];
  for (let e = p.next(); e; e = p.next()) out.push(e);
  return out;
}

function fetch(line: string): Extract<Command, { name: 'FETCH' }> {
  const evs = run(`${line}\r\n`).filter((e) => e.kind !== 'continue');
  expect(evs).toHaveLength(1);
  const e = evs[0]!;
  if (e.kind !== 'command' || e.command.name !== 'FETCH') throw new Error(`expected FETCH, got ${JSON.stringify(e)}`);
  return e.command;
}

function items(spec: string): FetchItem[] {
  return fetch(`a FETCH 1 ${spec}`).items;
}

function err(line: string): Extract<ParserEvent, { kind: 'error' }> {
  const evs = run(`${line}\r\n`);
  expect(evs).toHaveLength(1);
  const e = evs[0]!;
  if (e.kind !== 'error') throw new Error(`expected an error, got ${e.kind}`);
  expect(e).toMatchObject({ fatal: false, tag: 'a', name: 'FETCH' });
  return e;
}

describe('FETCH items', () => {
  it('macros are expanded', () => {
    expect(items('ALL')).toEqual([{ type: 'FLAGS' }, { type: 'INTERNALDATE' }, { type: 'RFC822.SIZE' }, { type: 'ENVELOPE' }]);
    expect(items('fast')).toEqual([{ type: 'FLAGS' }, { type: 'INTERNALDATE' }, { type: 'RFC822.SIZE' }]);
    expect(items('FULL')).toEqual([{ type: 'FLAGS' }, { type: 'INTERNALDATE' }, { type: 'RFC822.SIZE' }, { type: 'ENVELOPE' }, { type: 'BODY' }]);
  });

  it('macros are not allowed inside a list', () => {
    expect(err('a FETCH 1 (ALL)').message).toMatch(/Unknown fetch item ALL/);
  });

  it('every simple item, alone and in a list', () => {
    const simple = ['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT', 'MODSEQ', 'EMAILID', 'THREADID', 'SAVEDATE'];
    for (const s of simple) expect(items(s.toLowerCase())).toEqual([{ type: s }]);
    expect(items(`(${simple.join(' ')})`)).toEqual(simple.map((type) => ({ type })));
  });

  it('BODY[] sections', () => {
    expect(items('BODY[]')).toEqual([{ type: 'BODY[]', peek: false, section: { part: [] } }]);
    expect(items('BODY.PEEK[HEADER]')).toEqual([{ type: 'BODY[]', peek: true, section: { part: [], text: 'HEADER' } }]);
    expect(items('BODY[TEXT]')).toEqual([{ type: 'BODY[]', peek: false, section: { part: [], text: 'TEXT' } }]);
    expect(items('BODY[1.2.3]')).toEqual([{ type: 'BODY[]', peek: false, section: { part: [1, 2, 3] } }]);
    expect(items('body[4.2.mime]')).toEqual([{ type: 'BODY[]', peek: false, section: { part: [4, 2], text: 'MIME' } }]);
    expect(items('BODY[3.HEADER]')).toEqual([{ type: 'BODY[]', peek: false, section: { part: [3], text: 'HEADER' } }]);
    expect(items('BODY[1.2.HEADER.FIELDS (From "Subject" {2}\r\nTo)]')).toEqual([
      { type: 'BODY[]', peek: false, section: { part: [1, 2], text: 'HEADER.FIELDS', fields: ['From', 'Subject', 'To'] } },
    ]);
    expect(items('BODY.PEEK[HEADER.FIELDS.NOT (Received)]')).toEqual([
      { type: 'BODY[]', peek: true, section: { part: [], text: 'HEADER.FIELDS.NOT', fields: ['Received'] } },
    ]);
  });

  it('partials', () => {
    expect(items('BODY[]<0.2048>')).toEqual([{ type: 'BODY[]', peek: false, section: { part: [] }, partial: { offset: 0, length: 2048 } }]);
    expect(items('BINARY.PEEK[1]<100.5>')).toEqual([{ type: 'BINARY[]', peek: true, part: [1], partial: { offset: 100, length: 5 } }]);
    expect(err('a FETCH 1 BODY[]<0.0>').message).toMatch(/zero/);
    expect(err('a FETCH 1 BODY[]<5>').message).toMatch(/\./);
    expect(err('a FETCH 1 BODY[]<1.2').message).toMatch(/>/);
  });

  it('BINARY, BINARY.PEEK, BINARY.SIZE', () => {
    expect(items('(BINARY[] BINARY[1.2] BINARY.SIZE[3])')).toEqual([
      { type: 'BINARY[]', peek: false, part: [] },
      { type: 'BINARY[]', peek: false, part: [1, 2] },
      { type: 'BINARY.SIZE', part: [3] },
    ]);
    expect(err('a FETCH 1 BINARY[TEXT]').message).toMatch(/binary section/);
    expect(err('a FETCH 1 BINARY.SIZE').message).toMatch(/needs a section/);
  });

  it('invalid sections', () => {
    for (const s of ['BODY[0]', 'BODY[MIME]', 'BODY[1.TEXT.HEADER]', 'BODY[1.]', 'BODY[FOO]', 'BODY[HEADER.FIELDS]', 'BODY[HEADER.FIELDS ()]', 'BODY[1.0]', 'BODY[TEXT', 'BODY.PEEK']) {
      err(`a FETCH 1 ${s}`);
    }
  });

  it('unknown items and empty lists', () => {
    expect(err('a FETCH 1 FOO').message).toMatch(/Unknown fetch item FOO/);
    expect(err('a FETCH 1 ()').message).toMatch(/Empty fetch items/);
    expect(err('a FETCH 1').message).toBe('Missing argument: fetch items');
    expect(err('a FETCH 1 (FLAGS').message).toMatch(/Missing \)/);
  });
});

describe('FETCH command', () => {
  it('sequence sets and UID', () => {
    expect(fetch('a UID FETCH 1:*,5 FLAGS')).toEqual({
      tag: 'a',
      name: 'FETCH',
      uid: true,
      sequence: {
        kind: 'ranges',
        ranges: [
          { start: 1, end: '*' },
          { start: 5, end: 5 },
        ],
      },
      items: [{ type: 'FLAGS' }],
      vanished: false,
    });
    expect(fetch('a FETCH $ UID').sequence).toEqual({ kind: 'saved' });
  });

  it('CHANGEDSINCE and VANISHED modifiers', () => {
    expect(fetch('a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)')).toMatchObject({ changedSince: 12345n, vanished: true });
    expect(fetch('a FETCH 1:* (FLAGS MODSEQ) (CHANGEDSINCE 9223372036854775807)')).toMatchObject({
      changedSince: 9223372036854775807n,
      vanished: false,
    });
  });

  it('modifier errors', () => {
    expect(err('a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)').message).toMatch(/only allowed with UID FETCH/);
    err('a UID FETCH 1 FLAGS (VANISHED)');
    err('a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)');
    err('a FETCH 1 FLAGS (FOO)');
    err('a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)');
  });
});
