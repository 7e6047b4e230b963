import { describe, expect, it } from 'vitest';
import { PreAuthSession, type PreAuthAction } from '../../src/proxy/preauth.js';

function text(actions: PreAuthAction[]): string {
  return actions
    .filter((a): a is Extract<PreAuthAction, { type: 'write' }> => a.type === 'write')
    .map((a) => a.data.toString())
    .join('');
}
const other = (actions: PreAuthAction[]): PreAuthAction[] => actions.filter((a) => a.type !== 'write');
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

describe('PreAuthSession', () => {
  it('greets with capabilities and answers CAPABILITY, NOOP, ID and LOGOUT itself', () => {
    const s = new PreAuthSession({ secure: false, starttls: true });
    expect(s.greeting().toString()).toMatch(/^\* OK \[CAPABILITY IMAP4rev1 .*STARTTLS.*AUTH=PLAIN\] .*\r\n$/);
    const a = s.push(Buffer.from('a CAPABILITY\r\nb NOOP\r\nc ID ("name" "x")\r\nd LOGOUT\r\ne NOOP\r\n'));
    const out = text(a);
    expect(out).toContain('* CAPABILITY IMAP4rev1');
    expect(out).toContain('a OK CAPABILITY completed\r\n');
    expect(out).toContain('b OK NOOP completed\r\n');
    expect(out).toMatch(/\* ID \("name" "imapkit proxy" "vendor" "imapkit"\)\r\nc OK/);
    expect(out).toContain('* BYE Logging out\r\nd OK LOGOUT completed\r\n');
    expect(out).not.toContain('e OK');
    expect(other(a)).toEqual([{ type: 'close', reason: 'logout' }]);
    expect(a.filter((x) => x.type === 'write')).toHaveLength(1);
  });

  it('turns LOGIN into a login action and answers with the backend capabilities', () => {
    const s = new PreAuthSession({ secure: false, starttls: false });
    const a = s.push(Buffer.from('a1 LOGIN "alice" {6+}\r\nsecret\r\na2 SELECT INBOX\r\n'));
    expect(other(a)).toEqual([{ type: 'login', tag: 'a1', user: 'alice', password: 'secret', mechanism: 'LOGIN' }]);
    expect(s.push(Buffer.from('a3 NOOP\r\n'))).toEqual([]);
    const ok = s.loginResult({ ok: true, capabilities: ['IMAP4rev1', 'IDLE', 'bad]cap'] });
    expect(text(ok)).toBe('a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n');
    expect(s.takeRest().toString()).toBe('a2 SELECT INBOX\r\na3 NOOP\r\n');
    expect(s.current).toBe('done');
  });

  it('sends a continuation for a synchronizing literal', () => {
    const s = new PreAuthSession({ secure: false, starttls: false });
    expect(text(s.push(Buffer.from('a LOGIN {5}\r\n')))).toBe('+ Ready for literal data\r\n');
    expect(text(s.push(Buffer.from('alice {3}\r\n')))).toBe('+ Ready for literal data\r\n');
    expect(other(s.push(Buffer.from('p w\r\n')))).toEqual([{ type: 'login', tag: 'a', user: 'alice', password: 'p w', mechanism: 'LOGIN' }]);
  });

  it('handles AUTHENTICATE PLAIN with SASL-IR, with a continuation, and cancellation', () => {
    const s = new PreAuthSession({ secure: true, starttls: false });
    expect(other(s.push(Buffer.from(`a AUTHENTICATE PLAIN ${b64('\0bob\0pw')}\r\n`)))).toEqual([
      { type: 'login', tag: 'a', user: 'bob', password: 'pw', authzid: undefined, mechanism: 'PLAIN' },
    ]);
    expect(text(s.loginResult({ ok: false, code: 'AUTHENTICATIONFAILED', text: 'no\r\n* BYE injected' }))).toBe(
      'a NO [AUTHENTICATIONFAILED] no * BYE injected\r\n',
    );
    expect(text(s.push(Buffer.from('b AUTHENTICATE plain\r\n')))).toBe('+ \r\n');
    expect(other(s.push(Buffer.from(`${b64('admin\0bob\0pw')}\r\n`)))).toEqual([
      { type: 'login', tag: 'b', user: 'bob', password: 'pw', authzid: 'admin', mechanism: 'PLAIN' },
    ]);
    s.loginResult({ ok: false, text: 'no' });
    s.push(Buffer.from('c AUTHENTICATE PLAIN\r\n'));
    expect(text(s.push(Buffer.from('*\r\n')))).toBe('c BAD AUTHENTICATE cancelled\r\n');
    expect(text(s.push(Buffer.from('d AUTHENTICATE PLAIN !!!!\r\n')))).toMatch(/^d BAD .*base64.*\r\n$/i);
    s.push(Buffer.from('d2 AUTHENTICATE PLAIN\r\n'));
    expect(text(s.push(Buffer.from('!!!!\r\n')))).toBe('d2 BAD Invalid base64 in SASL response\r\n');
    expect(text(s.push(Buffer.from('e AUTHENTICATE CRAM-MD5\r\n')))).toBe('e NO Unsupported authentication mechanism\r\n');
  });

  it('closes after too many failed logins', () => {
    const s = new PreAuthSession({ secure: false, starttls: false, maxFailures: 2 });
    s.push(Buffer.from('a LOGIN u p\r\n'));
    s.loginResult({ ok: false, text: 'no' });
    s.push(Buffer.from('b LOGIN u p\r\n'));
    const a = s.loginResult({ ok: false, text: 'no' });
    expect(text(a)).toContain('* BYE Too many authentication failures');
    expect(other(a)).toEqual([{ type: 'close', reason: 'Too many authentication failures' }]);
  });

  it('drops plaintext pipelined after STARTTLS and offers LOGIN only over TLS when required', () => {
    const s = new PreAuthSession({ secure: false, starttls: true, requireTls: true });
    expect(s.greeting().toString()).toContain('LOGINDISABLED');
    expect(text(s.push(Buffer.from('a LOGIN u p\r\n')))).toBe('a NO [PRIVACYREQUIRED] Use STARTTLS first\r\n');
    const a = s.push(Buffer.from('b STARTTLS\r\nc LOGIN injected pw\r\n'));
    expect(text(a)).toBe('b OK Begin TLS negotiation now\r\n');
    expect(other(a)).toEqual([{ type: 'starttls' }]);
    expect(s.tlsStarted()).toEqual([]);
    const caps = text(s.push(Buffer.from('d CAPABILITY\r\n')));
    expect(caps).not.toContain('STARTTLS');
    expect(caps).toContain('AUTH=PLAIN');
    expect(text(s.push(Buffer.from('e STARTTLS\r\n')))).toBe('e BAD STARTTLS not available\r\n');
    expect(other(s.push(Buffer.from('f LOGIN u p\r\n')))).toEqual([{ type: 'login', tag: 'f', user: 'u', password: 'p', mechanism: 'LOGIN' }]);
  });

  it('refuses other commands and bad syntax, and limits what an unauthenticated client may send', () => {
    const s = new PreAuthSession({ secure: false, starttls: false, maxCommands: 4 });
    const out = text(s.push(Buffer.from('a SELECT INBOX\r\nb ENABLE X\r\nc LOGIN onlyone\r\n')));
    expect(out).toContain('a BAD Command not allowed before authentication\r\n');
    expect(out).toContain('b BAD Command not allowed before authentication\r\n');
    expect(out).toMatch(/c BAD .*\r\n$/);
    const a = s.push(Buffer.from('d NOOP\r\ne NOOP\r\n'));
    expect(text(a)).toContain('* BYE Too many commands before authentication');
    expect(other(a)).toEqual([{ type: 'close', reason: 'Too many commands before authentication' }]);

    const t = new PreAuthSession({ secure: false, starttls: false, limits: { maxLine: 512, maxLiteral: 64, maxCommand: 1024, maxLiterals: 2 } });
    const big = t.push(Buffer.alloc(2000, 'a'));
    expect(text(big)).toBe('* BYE Line too long\r\n');
    expect(t.buffered).toBe(0);
    const u = new PreAuthSession({ secure: false, starttls: false, limits: { maxLine: 512, maxLiteral: 64, maxCommand: 1024, maxLiterals: 2 } });
    expect(text(u.push(Buffer.from('x LOGIN {65}\r\n')))).toBe('x BAD [TOOBIG] Literal too large\r\n');
  });

  it('refuses user names with control characters and passwords with NUL without asking anyone', () => {
    const s = new PreAuthSession({ secure: false, starttls: false });
    const a = s.push(Buffer.from('a LOGIN {3+}\r\na\nb pw\r\n'));
    expect(other(a)).toEqual([]);
    expect(text(a)).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed\r\n');
    const b = s.push(Buffer.from('b LOGIN user {4+}\r\np\0w1\r\n'));
    expect(other(b)).toEqual([]);
    expect(text(b)).toMatch(/^b (NO|BAD) /);
  });
});
