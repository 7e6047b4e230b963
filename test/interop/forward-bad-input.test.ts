/**
 * Bad input: mail without a Message-ID, a 40 MB message, broken MIME, and a target that refuses an
 * APPEND (Dovecot's quota plugin with quota_max_mail_size answers NO [LIMIT]). Each ends with a
 * clear log line where something was refused, the forward going on, and nothing recorded as
 * forwarded that was not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendRaw, duplicates, forwardBlock, haveDovecot, listMailbox, message, rawLogin, startDovecot, startForward, waitFor, type TestDovecot } from '../forward/helpers.js';
import { SyncState } from '../../src/sync/state.js';
import { FORWARD_SCOPE, REFUSED_SCOPE, stateFile } from '../../src/forward/session.js';

const enabled = haveDovecot();
let src: TestDovecot;
let dst: TestDovecot;
let limited: TestDovecot;
let dir: string;

const QUOTA = `mail_plugins = $mail_plugins quota
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=10G
  quota_max_mail_size = 1M
}`;

beforeAll(async () => {
  if (!enabled) return;
  [src, dst, limited] = await Promise.all([startDovecot(), startDovecot(), startDovecot({}, QUOTA)]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-fwd-bad-'));
});
afterAll(() => {
  src?.destroy();
  dst?.destroy();
  limited?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A valid multipart message of about `mb` megabytes (a base64 attachment). */
function big(id: string, mb: number): Buffer {
  const line = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n';
  const body = line.repeat(Math.ceil((mb * 1024 * 1024) / line.length));
  return Buffer.from(
    `From: a@family.example\r\nTo: b@family.example\r\nSubject: big\r\nMessage-ID: <${id}>\r\nMIME-Version: 1.0\r\n` +
      'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n' +
      `--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${body}--b1--\r\n`,
  );
}

/** MIME that no parser likes: a boundary that never comes, bad base64, bare LF, 8-bit headers, a header without a colon, a 100 KB line. */
function broken(id: string): Buffer {
  return Buffer.concat([
    Buffer.from(`From: =?utf-8?B?broken?= <x@family.example>\r\nSubject: caf\xe9 \xff\xfe broken\r\nMessage-ID: <${id}>\r\nthis header has no colon\r\n`, 'latin1'),
    Buffer.from('MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="never-used"\nContent-Transfer-Encoding: base64\r\n\r\n'),
    Buffer.from('!!!! not base64 at all ????\n--wrong-boundary\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\n'),
    Buffer.from('y'.repeat(100_000)),
    Buffer.from('\r\n'),
  ]);
}

describe('imapkit forward with bad input', () => {
  it('forwards odd and huge mail intact, and goes on past a message the target refuses', async () => {
    if (!enabled) return;
    const toml =
      forwardBlock({ name: 'odd', src: src.port, srcUser: 'test1', dst: dst.port, dstUser: 'test1' }) +
      forwardBlock({ name: 'limited', src: src.port, srcUser: 'test2', dst: limited.port, dstUser: 'test2' });
    const fwd = await startForward(dir, toml);
    const a = await rawLogin(src.port, 'test1');
    const b = await rawLogin(src.port, 'test2');
    try {
      await appendRaw(a, 'INBOX', message({ id: null, subject: 'no message id here' }));
      await appendRaw(a, 'INBOX', broken('broken@family.example'));
      await appendRaw(a, 'INBOX', big('forty@family.example', 40));
      await appendRaw(b, 'INBOX', message({ id: 'small-1@family.example' }));
      await appendRaw(b, 'INBOX', big('two-mb@family.example', 2));
      await appendRaw(b, 'INBOX', message({ id: 'small-2@family.example' }));
      await waitFor('the odd mail', async () => (await listMailbox(dst.port, 'test1')).length >= 3, 60_000);
      await waitFor('the mail around the refused one', async () => (await listMailbox(limited.port, 'test2')).length >= 2, 30_000);
      // More mail later: the refused message is not tried again with every pass.
      await appendRaw(b, 'INBOX', message({ id: 'small-3@family.example' }));
      await waitFor('later mail', async () => (await listMailbox(limited.port, 'test2')).length >= 3, 15_000);
    } finally {
      await a.close();
      await b.close();
      await fwd.stop();
    }
    // Every odd message arrived once, byte for byte the same size.
    const s1 = await listMailbox(src.port, 'test1');
    const t1 = await listMailbox(dst.port, 'test1');
    expect(duplicates(t1)).toEqual([]);
    expect(t1.map((m) => `${m.messageId}:${m.size}`).sort()).toEqual(s1.map((m) => `${m.messageId}:${m.size}`).sort());
    expect(t1.find((m) => m.messageId === '<forty@family.example>')!.size).toBeGreaterThan(40 * 1024 * 1024);

    // The refused one: not on the target, said clearly once, and not recorded as forwarded.
    const t2 = await listMailbox(limited.port, 'test2');
    expect(t2.map((m) => m.messageId).sort()).toEqual(['<small-1@family.example>', '<small-2@family.example>', '<small-3@family.example>']);
    const refusals = fwd.logs().filter((l) => l.forward === 'limited' && l.level === 50 && /refused a message/.test(String(l.msg)));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]!.messageId).toBe('<two-mb@family.example>');
    expect(String(refusals[0]!.reason)).toMatch(/LIMIT|size/i);
    const state = SyncState.open(stateFile(fwd.stateDir, 'limited'), { lock: false });
    try {
      expect(state.seenHas(FORWARD_SCOPE, '<two-mb@family.example>')).toBe(false);
      expect(state.seenHas(FORWARD_SCOPE, '<small-2@family.example>')).toBe(true);
      expect(state.seenHas(REFUSED_SCOPE, '<two-mb@family.example>')).toBe(true);
    } finally {
      state.close();
    }
    // The refused message stays on the source.
    expect((await listMailbox(src.port, 'test2')).some((m) => m.messageId === '<two-mb@family.example>')).toBe(true);
  }, 120_000);
});
