import { describe, expect, it } from 'vitest';
import { CommandFramer, literalAtEnd, type FrameEvent } from '../../src/proxy/framer.js';

function drain(f: CommandFramer): FrameEvent[] {
  const out: FrameEvent[] = [];
  for (let ev = f.next(); ev; ev = f.next()) out.push(ev);
  return out;
}

const limits = { maxLine: 100, maxLiteral: 50, maxCommand: 200, maxLiterals: 2 };

describe('CommandFramer', () => {
  it('cuts whole commands, keeping every byte', () => {
    const f = new CommandFramer(limits);
    f.push(Buffer.from('a1 NOOP\r\na2 CAPA'));
    expect(drain(f)).toEqual([{ kind: 'command', data: Buffer.from('a1 NOOP\r\n') }]);
    f.push(Buffer.from('BILITY\r\n'));
    expect(drain(f)).toEqual([{ kind: 'command', data: Buffer.from('a2 CAPABILITY\r\n') }]);
  });

  it('asks for a continuation for a synchronizing literal and includes its bytes', () => {
    const f = new CommandFramer(limits);
    f.push(Buffer.from('a LOGIN {5}\r\n'));
    expect(drain(f)).toEqual([{ kind: 'continue', size: 5 }]);
    f.push(Buffer.from('us'));
    expect(drain(f)).toEqual([]);
    f.push(Buffer.from('er pass\r\n'));
    expect(drain(f)).toEqual([{ kind: 'command', data: Buffer.from('a LOGIN {5}\r\nuser pass\r\n') }]);
  });

  it('takes non-synchronizing literals without a continuation', () => {
    const f = new CommandFramer(limits);
    f.push(Buffer.from('a LOGIN {4+}\r\nuser {4+}\r\npass\r\n'));
    expect(drain(f)).toEqual([{ kind: 'command', data: Buffer.from('a LOGIN {4+}\r\nuser {4+}\r\npass\r\n') }]);
  });

  it('refuses an oversized synchronizing literal without losing step', () => {
    const f = new CommandFramer(limits);
    f.push(Buffer.from('a LOGIN {500}\r\nb NOOP\r\n'));
    const evs = drain(f);
    expect(evs[0]).toMatchObject({ kind: 'error', tag: 'a', fatal: false, code: 'TOOBIG' });
    expect(evs[1]).toEqual({ kind: 'command', data: Buffer.from('b NOOP\r\n') });
  });

  it('is fatal for an oversized non-synchronizing literal, an over-long line and too many literals', () => {
    const a = new CommandFramer(limits);
    a.push(Buffer.from('a LOGIN {500+}\r\n'));
    expect(drain(a)).toEqual([expect.objectContaining({ kind: 'error', fatal: true })]);
    a.push(Buffer.from('b NOOP\r\n'));
    expect(drain(a)).toEqual([]);

    const b = new CommandFramer(limits);
    b.push(Buffer.alloc(150, 'x'));
    expect(drain(b)).toEqual([expect.objectContaining({ kind: 'error', fatal: true })]);
    expect(b.buffered).toBe(0);

    const c = new CommandFramer(limits);
    c.push(Buffer.from('a X {1+}\r\n1 {1+}\r\n2 {1+}\r\n3\r\n'));
    expect(drain(c)).toEqual([expect.objectContaining({ kind: 'error', fatal: true, message: 'Too many literals' })]);
  });

  it('does not read {n} inside an unterminated quoted string as a literal', () => {
    expect(literalAtEnd('a LOGIN "x{5}\r\n')).toBeNull();
    expect(literalAtEnd('a LOGIN "x" {5}\r\n')).toEqual({ size: 5, sync: true });
    expect(literalAtEnd('a LOGIN ~{5+}\r\n')).toEqual({ size: 5, sync: false });
    const f = new CommandFramer(limits);
    f.push(Buffer.from('a LOGIN "x{5}\r\n'));
    expect(drain(f)).toEqual([{ kind: 'command', data: Buffer.from('a LOGIN "x{5}\r\n') }]);
  });

  it('delivers raw lines in line mode and hands back the rest', () => {
    const f = new CommandFramer(limits);
    f.setLineMode(true);
    f.push(Buffer.from('AGZvbwBiYXI=\r\nrest'));
    expect(drain(f)).toEqual([{ kind: 'line', line: Buffer.from('AGZvbwBiYXI=') }]);
    expect(f.takeRest().toString()).toBe('rest');
    expect(f.buffered).toBe(0);
  });

  it('reset drops everything buffered', () => {
    const f = new CommandFramer(limits);
    f.push(Buffer.from('a STARTTLS\r\nb LOGIN x y\r\n'));
    expect(drain(f).length).toBe(2);
    f.push(Buffer.from('c LOGIN u p\r\n'));
    f.reset();
    expect(drain(f)).toEqual([]);
  });
});
