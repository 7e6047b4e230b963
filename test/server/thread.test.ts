import { describe, expect, it } from 'vitest';
import { threadByReferences } from '../../src/server/thread/references.js';
import { threadByOrderedSubject } from '../../src/server/thread/orderedsubject.js';
import { Container, formatThreads, type ThreadMessage } from '../../src/server/thread/tree.js';

/** A thread input; ids are sequence numbers, dates default to the sequence number (in minutes). */
function msg(seq: number, o: Partial<ThreadMessage> = {}): ThreadMessage {
  return {
    id: seq,
    seq,
    date: seq * 60_000,
    baseSubject: `subject ${seq}`,
    isReply: false,
    messageId: `m${seq}@x`,
    references: [],
    inReplyTo: [],
    ...o,
  };
}

function refs(messages: ThreadMessage[]): string {
  return formatThreads(threadByReferences(messages));
}

describe('formatThreads', () => {
  it('writes the RFC 5256 example shape', () => {
    const node = (id: number, ...children: Container[]): Container => {
      const c = new Container(msg(id));
      for (const ch of children) {
        ch.parent = c;
        c.children.push(ch);
      }
      return c;
    };
    const t1 = node(2);
    const t2 = node(3, node(6, node(4, node(23)), node(44, node(7, node(96)))));
    expect(formatThreads([t1, t2])).toBe('(2)(3 6 (4 23)(44 7 96))');
  });

  it('writes a dummy root as nested children only', () => {
    const d = new Container();
    for (const id of [3, 5]) {
      const c = new Container(msg(id));
      c.parent = d;
      d.children.push(c);
    }
    expect(formatThreads([d])).toBe('((3)(5))');
  });

  it('writes nothing for no threads', () => {
    expect(formatThreads([])).toBe('');
  });
});

describe('THREAD=REFERENCES', () => {
  it('chains replies through References', () => {
    expect(refs([msg(1), msg(2, { references: ['m1@x'] }), msg(3, { references: ['m1@x', 'm2@x'] })])).toBe('(1 2 3)');
  });

  it('makes several replies to one message siblings', () => {
    expect(refs([msg(1), msg(2, { references: ['m1@x'] }), msg(3, { references: ['m1@x'] })])).toBe('(1 (2)(3))');
  });

  it('uses the first In-Reply-To id when there is no References', () => {
    expect(refs([msg(1), msg(2, { inReplyTo: ['m1@x', 'other@x'] })])).toBe('(1 2)');
  });

  it('keeps a dummy root that has several children', () => {
    expect(refs([msg(1, { references: ['gone@x'] }), msg(2, { references: ['gone@x'] })])).toBe('((1)(2))');
  });

  it('promotes the only child of a dummy root', () => {
    expect(refs([msg(1, { references: ['gone@x'] })])).toBe('(1)');
  });

  it('promotes children of a dummy that is not at the root', () => {
    // 1 -> (missing) -> 2: the missing middle vanishes and 2 hangs under 1.
    expect(refs([msg(1), msg(2, { references: ['m1@x', 'gone@x'] })])).toBe('(1 2)');
  });

  it('sorts threads and siblings by sent date, then sequence', () => {
    const out = refs([
      msg(1, { date: 5000 }),
      msg(2, { date: 1000 }),
      msg(3, { date: 3000, references: ['m2@x'] }),
      msg(4, { date: 2000, references: ['m2@x'] }),
      msg(5, { date: 5000 }),
    ]);
    expect(out).toBe('(2 (4)(3))(1)(5)');
  });

  it('gathers a reply without references under the original by subject', () => {
    const out = refs([msg(1, { baseSubject: 'hello' }), msg(2, { baseSubject: 'HELLO', isReply: true, messageId: null })]);
    expect(out).toBe('(1 2)');
  });

  it('puts two non-replies with the same subject under a dummy', () => {
    expect(refs([msg(1, { baseSubject: 'hello' }), msg(2, { baseSubject: 'hello' })])).toBe('((1)(2))');
  });

  it('adds more same-subject roots to the dummy holder', () => {
    const out = refs([msg(1, { baseSubject: 'x' }), msg(2, { baseSubject: 'x' }), msg(3, { baseSubject: 'x', isReply: true })]);
    expect(out).toBe('((1)(2)(3))');
  });

  it('does not group messages with an empty base subject', () => {
    expect(refs([msg(1, { baseSubject: '' }), msg(2, { baseSubject: '' })])).toBe('(1)(2)');
  });

  it('treats a duplicate Message-ID as a message of its own', () => {
    const out = refs([msg(1, { messageId: 'dup@x' }), msg(2, { messageId: 'dup@x' }), msg(3, { references: ['dup@x'] })]);
    expect(out).toBe('(1 3)(2)');
  });

  it('survives reference loops', () => {
    const out = refs([msg(1, { references: ['m2@x'] }), msg(2, { references: ['m1@x'] })]);
    expect(out.match(/\d+/g)?.sort()).toEqual(['1', '2']);
  });

  it('survives a message that references itself', () => {
    expect(refs([msg(1, { references: ['m1@x'] })])).toBe('(1)');
  });

  it('handles a 20000-message reply chain without deep recursion', () => {
    const list: ThreadMessage[] = [];
    for (let i = 1; i <= 20000; i++) list.push(msg(i, { baseSubject: 'chain', references: i > 1 ? [`m${i - 1}@x`] : [] }));
    const out = refs(list);
    expect(out.startsWith('(1 2 3 ')).toBe(true);
    expect(out.endsWith(' 19999 20000)')).toBe(true);
  });
});

describe('THREAD=ORDEREDSUBJECT', () => {
  it('groups by base subject, children under the first, threads by first date', () => {
    const out = formatThreads(
      threadByOrderedSubject([
        msg(1, { baseSubject: 'b', date: 10 }),
        msg(2, { baseSubject: 'a', date: 20 }),
        msg(3, { baseSubject: 'B', date: 5 }),
        msg(4, { baseSubject: 'b', date: 30 }),
        msg(5, { baseSubject: 'a', date: 25 }),
        msg(6, { baseSubject: 'c', date: 1 }),
      ]),
    );
    expect(out).toBe('(6)(3 (1)(4))(2 5)');
  });
});
