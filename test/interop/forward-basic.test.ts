/**
 * imapkit forward between two private Dovecots: the first-run window, duplicates by Message-ID,
 * mail without one, INTERNALDATE, live forwarding with IDLE and with polling, two forwards in one
 * process, afterForward, resuming after a stop, and the status display.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendRaw, duplicates, forwardBlock, haveDovecot, listMailbox, message, rawLogin, startDovecot, startForward, waitFor, type TestDovecot } from '../forward/helpers.js';
import { formatStatuses, readStatuses } from '../../src/forward/status.js';
import { SyncState } from '../../src/sync/state.js';
import { ImapRepository } from '../../src/sync/imap-repository.js';
import { FORWARD_SCOPE, stateFile } from '../../src/forward/session.js';

const enabled = haveDovecot();
let src: TestDovecot;
let dst: TestDovecot;
let dir: string;
const DAY = 86_400_000;

beforeAll(async () => {
  if (!enabled) return;
  [src, dst] = await Promise.all([startDovecot(), startDovecot()]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-fwd-basic-'));
});
afterAll(() => {
  src?.destroy();
  dst?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('imapkit forward (Dovecot to Dovecot)', () => {
  it('forwards the window, each Message-ID once, keeps dates, follows live mail, resumes after a stop', async () => {
    if (!enabled) return;
    const now = Date.now();
    const a = await rawLogin(src.port, 'test1');
    await appendRaw(a, 'INBOX', message({ id: 'old@family.example' }), new Date(now - 10 * DAY));
    await appendRaw(a, 'INBOX', message({ id: 'recent@family.example' }), new Date(now - 3 * DAY));
    await appendRaw(a, 'INBOX', message({ id: null, subject: 'no id at all' }), new Date(now - 2 * DAY));
    await appendRaw(a, 'INBOX', message({ id: 'dup@family.example' }), new Date(now - DAY));
    await appendRaw(a, 'INBOX', message({ id: 'dup@family.example' }), new Date(now - DAY));
    const b = await rawLogin(src.port, 'test2');
    await appendRaw(b, 'INBOX', message({ id: 'b1@family.example' }));

    const toml =
      forwardBlock({ name: 'alice', src: src.port, srcUser: 'test1', dst: dst.port, dstUser: 'test1', targetExtra: 'label = "family"' }) +
      forwardBlock({ name: 'bob', src: src.port, srcUser: 'test2', dst: dst.port, dstUser: 'test2', extra: 'idle = false\npollInterval = "1s"\nafterForward = "move:Forwarded"' });
    let fwd = await startForward(dir, toml);
    try {
      await waitFor('the window on the target', async () => (await listMailbox(dst.port, 'test1')).length >= 3);
      await waitFor('bob moved', async () => (await listMailbox(src.port, 'test2', 'Forwarded')).length === 1);
      const t1 = await listMailbox(dst.port, 'test1');
      expect(t1.map((m) => m.messageId).sort()).toEqual([null, '<dup@family.example>', '<recent@family.example>'].sort());
      const s1 = await listMailbox(src.port, 'test1');
      const srcRecent = s1.find((m) => m.messageId === '<recent@family.example>')!;
      expect(t1.find((m) => m.messageId === '<recent@family.example>')!.internalDate.getTime()).toBe(srcRecent.internalDate.getTime());
      expect(await listMailbox(src.port, 'test2')).toHaveLength(0);
      expect((await listMailbox(dst.port, 'test2')).map((m) => m.messageId)).toEqual(['<b1@family.example>']);
      // Dovecot has no Gmail labels: said once, and the forward goes on.
      expect(fwd.logs().some((l) => l.forward === 'alice' && /label ignored/.test(String(l.msg)))).toBe(true);

      // Live: IDLE for alice, polling every second for bob.
      await appendRaw(a, 'INBOX', message({ id: 'live1@family.example' }));
      await appendRaw(b, 'INBOX', message({ id: 'b2@family.example' }));
      await waitFor('live mail', async () => (await listMailbox(dst.port, 'test1')).some((m) => m.messageId === '<live1@family.example>'), 10_000);
      await waitFor('polled mail', async () => (await listMailbox(dst.port, 'test2')).some((m) => m.messageId === '<b2@family.example>'), 10_000);
    } finally {
      const outcomes = await fwd.stop();
      expect(outcomes.every((o) => o.ok)).toBe(true);
    }

    // Mail that arrives while imapkit is stopped is forwarded when it starts again.
    await appendRaw(a, 'INBOX', message({ id: 'while-down@family.example' }));
    fwd = await startForward(dir, toml);
    try {
      await waitFor('mail from the downtime', async () => (await listMailbox(dst.port, 'test1')).some((m) => m.messageId === '<while-down@family.example>'), 15_000);
    } finally {
      await fwd.stop();
    }
    await a.close();
    await b.close();
    const t1 = await listMailbox(dst.port, 'test1');
    expect(duplicates(t1)).toEqual([]);
    expect(t1).toHaveLength(5);
    expect(t1.some((m) => m.messageId === '<old@family.example>')).toBe(false);

    const text = formatStatuses(await readStatuses(fwd.stateDir, ['alice', 'bob']));
    expect(text).toMatch(/alice: not running/);
    expect(text).toMatch(/last forwarded: .*<while-down@family\.example>.*lag \d/);
    expect(text).toMatch(/bob:[\s\S]*<b2@family\.example>/);
  });

  it('confirms a copy left unconfirmed by a crash with SEARCH HEADER Message-ID instead of appending it again', async () => {
    if (!enabled) return;
    const toml = forwardBlock({ name: 'crashed', src: src.port, srcUser: 'test4', dst: dst.port, dstUser: 'test4' });
    const a = await rawLogin(src.port, 'test4');
    await appendRaw(a, 'INBOX', message({ id: 'first@family.example' }));
    let fwd = await startForward(dir, toml, { once: true });
    expect((await fwd.done()).every((o) => o.ok)).toBe(true);
    // As if a run had recorded its intent, appended the copy and died before recording it.
    await appendRaw(a, 'INBOX', message({ id: 'in-flight@family.example' }));
    await a.close();
    const srcUid = (await listMailbox(src.port, 'test4')).find((m) => m.messageId === '<in-flight@family.example>')!.uid;
    const state = SyncState.open(stateFile(fwd.stateDir, 'crashed'));
    const folder = state.folder('INBOX', 'INBOX');
    const t = await rawLogin(dst.port, 'test4');
    const targetNext = (await listMailbox(dst.port, 'test4')).length + 1;
    state.addIntents(folder.id, [{ from: 'a', srcUid, messageId: '<in-flight@family.example>', size: 1, hash: 'x', flags: [], targetMinUid: targetNext }]);
    state.close();
    await appendRaw(t, 'INBOX', message({ id: 'in-flight@family.example' }));
    await t.close();
    fwd = await startForward(dir, toml, { once: true });
    expect((await fwd.done()).every((o) => o.ok)).toBe(true);
    expect(fwd.logs().some((l) => l.msg === 'an unconfirmed copy was found on the target: recorded, not appended again' && l.messageId === '<in-flight@family.example>')).toBe(true);
    const got = await listMailbox(dst.port, 'test4');
    expect(got.map((m) => m.messageId).sort()).toEqual(['<first@family.example>', '<in-flight@family.example>']);
    const after = SyncState.open(stateFile(fwd.stateDir, 'crashed'), { lock: false });
    try {
      expect(after.intents(folder.id)).toEqual([]);
      expect(after.seenHas(FORWARD_SCOPE, '<in-flight@family.example>')).toBe(true);
    } finally {
      after.close();
    }
  });

  it('forgets forwarded Message-IDs after the retention window (31 days by default)', async () => {
    if (!enabled) return;
    const toml = forwardBlock({ name: 'retention', src: src.port, srcUser: 'test5', dst: dst.port, dstUser: 'test5' });
    const a = await rawLogin(src.port, 'test5');
    await appendRaw(a, 'INBOX', message({ id: 'fresh@family.example' }));
    await a.close();
    let fwd = await startForward(dir, toml, { once: true });
    expect((await fwd.done()).every((o) => o.ok)).toBe(true);
    const file = stateFile(fwd.stateDir, 'retention');
    let st = SyncState.open(file, { lock: false });
    // Entries as a run 32 and 30 days ago would have left them.
    st.seenAdd(FORWARD_SCOPE, [
      { key: '<ancient@family.example>', at: new Date(Date.now() - 32 * DAY) },
      { key: '<month-old@family.example>', at: new Date(Date.now() - 30 * DAY) },
    ]);
    st.close();
    fwd = await startForward(dir, toml, { once: true });
    expect((await fwd.done()).every((o) => o.ok)).toBe(true);
    st = SyncState.open(file, { lock: false });
    try {
      expect(st.seenHas(FORWARD_SCOPE, '<fresh@family.example>')).toBe(true);
      expect(st.seenHas(FORWARD_SCOPE, '<month-old@family.example>')).toBe(true);
      expect(st.seenHas(FORWARD_SCOPE, '<ancient@family.example>')).toBe(false);
    } finally {
      st.close();
    }
  });

  it('re-issues IDLE on schedule (RFC 2177: before 29 minutes; here every 400 ms) and still hears new mail', async () => {
    if (!enabled) return;
    const traces: string[] = [];
    const logger = { debug: (o: { src?: string; msg?: string }) => o.src === 'c' && o.msg && traces.push(o.msg), info: () => undefined, warn: () => undefined, error: () => undefined, trace: () => undefined };
    const repo = new ImapRepository({ host: '127.0.0.1', port: src.port, tls: false, user: 'test6', password: 'pass', idleRenewMs: 400, logger });
    try {
      await repo.open();
      await repo.startWatching(['INBOX']);
      await new Promise((r) => setTimeout(r, 2500));
      expect(traces.filter((t) => / IDLE$/.test(t)).length).toBeGreaterThanOrEqual(3);
      // A change that arrives while nobody waits is kept for the next wait.
      const a = await rawLogin(src.port, 'test6');
      await appendRaw(a, 'INBOX', message({ id: 'wake@family.example' }));
      await a.close();
      await new Promise((r) => setTimeout(r, 1200));
      // It must wake for the change, not for the abort that would end it otherwise.
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 20_000);
      await repo.waitForChange(['INBOX'], controller.signal, 60_000);
      clearTimeout(timer);
      expect(controller.signal.aborted).toBe(false);
    } finally {
      await repo.close();
    }
  });
});
