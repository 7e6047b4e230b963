/**
 * `imapkit sync --watch` against Dovecot: IDLE on INBOX brings a new server message down without
 * waiting for the interval, SIGUSR1 syncs at once (a change in another folder), SIGTERM lets the
 * sync under way finish and exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledCli, havePeer, identity, imapClient, maildirIdentities, simpleMessage, startDovecot, tempDir, type Dovecot } from './sync-helpers.js';

const enabled = havePeer('dovecot', 'sync watch test');

describe.runIf(enabled)('sync --watch', () => {
  let dc: Dovecot;
  let work: string;
  let child: ChildProcess;
  let out = '';

  beforeAll(async () => {
    dc = await startDovecot();
    work = tempDir();
    const c = await imapClient(dc.port, 'test8');
    await c.mailboxCreate('Other');
    await c.append('INBOX', simpleMessage('w0'));
    await c.logout();
    const cli = await bundledCli();
    child = spawn(cli.command, [...cli.args, 'sync', `imap://test8@127.0.0.1:${dc.port}?tls=false`, `maildir:${path.join(work, 'Mail')}`, '--watch', '--interval', '600', '--ui', 'json'], {
      env: { ...process.env, IMAPKIT_PASSWORD: 'pass', XDG_DATA_HOME: path.join(work, 'xdg') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.resume();
  }, 60_000);

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await dc?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const doneCount = () => out.split('\n').filter((l) => l.includes('"type":"account-done"')).length;
  async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; output:\n${out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('syncs at start, then on IDLE news in INBOX, on SIGUSR1, and exits on SIGTERM', async () => {
    await until('the first sync', () => doneCount() >= 1);
    expect(maildirIdentities(path.join(work, 'Mail'))).toEqual([identity(simpleMessage('w0'))]);
    // IDLE: a new INBOX message arrives locally long before the 600 s interval.
    const before = doneCount();
    const c = await imapClient(dc.port, 'test8');
    await c.append('INBOX', simpleMessage('w1'));
    await until('the IDLE-triggered sync', () => doneCount() > before && maildirIdentities(path.join(work, 'Mail')).includes(identity(simpleMessage('w1'))));
    expect(maildirIdentities(path.join(work, 'Mail'))).toContain(identity(simpleMessage('w1')));
    // SIGUSR1: a change in a folder nobody IDLEs on is synced now.
    await c.append('Other', simpleMessage('w2'));
    await c.logout();
    child.kill('SIGUSR1');
    await until('the SIGUSR1 sync', () => maildirIdentities(path.join(work, 'Mail'), 'Other').includes(identity(simpleMessage('w2'))));
    // SIGTERM: finish and exit 0.
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 90_000);
});
