/**
 * Fuzzes the proxy's pre-authentication state machine in-process (no sockets): at least 100,000
 * random and mutated client streams per run, cut into random chunks. Asserts that it never throws,
 * never hangs, keeps its buffers within the limits, only writes well-formed response lines, and
 * does nothing after it decided to close. The seed is printed so a failure can be replayed
 * (IMAPKIT_FUZZ_SEED=...).
 */
import { describe, expect, it } from 'vitest';
import { PreAuthSession, type PreAuthAction } from '../../src/proxy/preauth.js';

const STREAMS = Number(process.env.IMAPKIT_FUZZ_STREAMS ?? 100_000);
const TIME_LIMIT_MS = 60_000;
const LIMITS = { maxLine: 1024, maxLiteral: 256, maxCommand: 2048, maxLiterals: 3 };

/** mulberry32: a small seedable generator with a full 2^32 period. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const CORPUS = [
  'a CAPABILITY\r\n',
  'b NOOP\r\n',
  'c ID ("name" "fuzz" "version" "1")\r\n',
  'c2 ID NIL\r\n',
  'd LOGIN user pass\r\n',
  'e LOGIN "us\\"er" "p\\\\ass"\r\n',
  'f LOGIN {4}\r\nuser {4}\r\npass\r\n',
  'g LOGIN {4+}\r\nuser ~{4+}\r\npass\r\n',
  `h AUTHENTICATE PLAIN ${b64('\0user\0pass')}\r\n`,
  `i AUTHENTICATE PLAIN\r\n${b64('authz\0user\0pass')}\r\n`,
  'j AUTHENTICATE PLAIN =\r\n',
  'k AUTHENTICATE PLAIN\r\n*\r\n',
  'l STARTTLS\r\n',
  'm LOGOUT\r\n',
  'n SELECT INBOX\r\n',
  'o LOGIN {999999999999}\r\n',
  'p LOGIN {300+}\r\n',
  'q FETCH 1:* (BODY[HEADER.FIELDS (FROM TO)])\r\n',
  'r APPEND INBOX (\\Seen) {3}\r\nabc\r\n',
  '(((((((((((((((((((\r\n',
  '"unterminated {5}\r\n',
  'DONE\r\n',
  '\r\n',
];
const SPECIAL = Buffer.from('{}+~"\\\r\n ()[]*%0123456789ALOGINUTHPSabc=\x00\x01\xff');

function randomBytes(r: () => number, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = r() < 0.7 ? SPECIAL[Math.floor(r() * SPECIAL.length)] : Math.floor(r() * 256);
  return out;
}

function mutate(r: () => number, data: Buffer): Buffer {
  let d = data;
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const pos = Math.floor(r() * (d.length + 1));
    switch (Math.floor(r() * 7)) {
      case 0:
        if (d.length) d = Buffer.concat([d.subarray(0, pos), Buffer.from([Math.floor(r() * 256)]), d.subarray(Math.min(d.length, pos + 1))]);
        break;
      case 1:
        d = Buffer.concat([d.subarray(0, pos), randomBytes(r, 1 + Math.floor(r() * 8)), d.subarray(pos)]);
        break;
      case 2:
        d = Buffer.concat([d.subarray(0, pos), d.subarray(Math.min(d.length, pos + 1 + Math.floor(r() * 10)))]);
        break;
      case 3: {
        const len = Math.floor(r() * 40);
        d = Buffer.concat([d.subarray(0, pos), d.subarray(pos, pos + len), d.subarray(pos)]);
        break;
      }
      case 4:
        d = Buffer.concat([d.subarray(0, pos), Buffer.from(`{${Math.floor(r() * 2 ** (r() * 40))}${r() < 0.5 ? '+' : ''}}\r\n`), d.subarray(pos)]);
        break;
      case 5:
        d = d.subarray(0, pos);
        break;
      default:
        d = Buffer.concat([d.subarray(0, pos), Buffer.alloc(Math.floor(r() * 3000), r() < 0.5 ? 'A' : ' '), d.subarray(pos)]);
    }
  }
  return d;
}

function makeStream(r: () => number): Buffer {
  if (r() < 0.3) return randomBytes(r, Math.floor(r() * 400));
  const parts: string[] = [];
  const n = 1 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) parts.push(CORPUS[Math.floor(r() * CORPUS.length)]);
  const base = Buffer.from(parts.join(''), 'latin1');
  return r() < 0.15 ? base : mutate(r, base);
}

/** Every write must be whole CRLF-terminated lines that look like IMAP responses. */
function checkWrite(data: Buffer): void {
  const s = data.toString('latin1');
  if (!s.endsWith('\r\n')) throw new Error(`write not CRLF-terminated: ${JSON.stringify(s)}`);
  for (const line of s.slice(0, -2).split('\r\n')) {
    if (/[\r\n]/.test(line)) throw new Error(`bare CR/LF in response: ${JSON.stringify(line)}`);
    if (!/^(\* |\+ |[\x21-\x7e]{1,64} (OK|NO|BAD) )/.test(line) && line !== '+ ') throw new Error(`malformed response line: ${JSON.stringify(line)}`);
    if (line.length > 600) throw new Error('response line too long');
  }
}

const seen = { login: 0, starttls: 0, close: 0, literalContinue: 0, bad: 0, loggedIn: 0 };

function runStream(r: () => number, stream: Buffer): void {
  const s = new PreAuthSession({ secure: false, starttls: true, requireTls: r() < 0.2, limits: LIMITS, maxCommands: 40 });
  checkWrite(s.greeting());
  let closed = false;
  let pos = 0;
  const handle = (actions: PreAuthAction[], depth = 0): void => {
    if (depth > 100) throw new Error('action chain did not end');
    for (const a of actions) {
      if (closed) throw new Error(`action after close: ${a.type}`);
      if (a.type === 'write') {
        checkWrite(a.data);
        const t = a.data.toString('latin1');
        if (t.includes('+ Ready')) seen.literalContinue++;
        if (/ BAD /.test(t)) seen.bad++;
      } else if (a.type === 'close') {
        closed = true;
        seen.close++;
      } else if (a.type === 'starttls') {
        seen.starttls++;
        handle(s.tlsStarted(), depth + 1);
      } else if (a.type === 'login') {
        seen.login++;
        if (/[\x00-\x1f\x7f]/.test(a.user) || a.user === '' || a.password.length > 4096) throw new Error('unsafe login passed on');
        const ok = r() < 0.2;
        const next = s.loginResult(ok ? { ok: true, capabilities: ['IMAP4rev1', 'IDLE'] } : { ok: false, text: 'nope\r\nfake' });
        handle(next, depth + 1);
        if (ok) {
          seen.loggedIn++;
          s.takeRest();
          closed = true;
        }
      }
    }
  };
  while (pos < stream.length && !closed) {
    const size = 1 + Math.floor(r() * (r() < 0.5 ? 8 : 600));
    const chunk = stream.subarray(pos, pos + size);
    pos += size;
    const actions = s.push(chunk);
    if (actions.length > 4) throw new Error(`too many actions for one push: ${actions.length}`);
    handle(actions);
    if (s.buffered > LIMITS.maxLine + LIMITS.maxCommand + 600) throw new Error(`buffer bound exceeded: ${s.buffered}`);
  }
}

describe('proxy pre-auth fuzz', () => {
  it(`survives ${STREAMS} random and mutated streams`, () => {
    const seed = Number(process.env.IMAPKIT_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const r = rng(seed);
    const started = Date.now();
    let done = 0;
    let bytes = 0;
    for (; done < STREAMS && Date.now() - started < TIME_LIMIT_MS; done++) {
      const stream = makeStream(r);
      bytes += stream.length;
      try {
        runStream(r, stream);
      } catch (err) {
        throw new Error(`seed ${seed}, stream ${done}: ${(err as Error).message}\nstream: ${JSON.stringify(stream.toString('latin1').slice(0, 2000))}`);
      }
    }
    console.log(`proxy pre-auth fuzz: ${done} streams, ${(bytes / 1e6).toFixed(1)} MB in ${Date.now() - started} ms (seed ${seed})`, seen);
    expect(done).toBeGreaterThanOrEqual(STREAMS);
    // The streams must reach every branch that matters, or the run proves little.
    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(100);
  }, 90_000);
});
