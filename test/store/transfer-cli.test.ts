/**
 * `imapkit import` / `imapkit export` as commands: progress output, the summary line, the state file.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { ProgressReporter, runImport, summaryLine } from '../../src/cli/import.js';
import { runExport } from '../../src/cli/export.js';
import { MaildirStore } from '../../src/store/maildir/store.js';

let dir: string;
let out: string;
let err: string;
let io: { stdout: PassThrough; stderr: PassThrough & { isTTY?: boolean }; env: NodeJS.ProcessEnv };

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imapkit-transfer-cli-'));
  out = '';
  err = '';
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  io = { stdout, stderr, env: { ...process.env, XDG_DATA_HOME: path.join(dir, 'data') } };
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function mbox(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += `From x@y Mon Jan  1 10:00:00 2024\nSubject: ${i}\n${i % 2 ? 'Status: RO\n' : ''}\nbody ${i}\n\n`;
  return s;
}

describe('import and export commands', () => {
  it('import prints progress lines and a summary that adds up, keeps state, and resumes with nothing left to do', async () => {
    const file = path.join(dir, 'in.mbox');
    await fs.writeFile(file, mbox(30));
    const store = `maildir:${path.join(dir, 'mail', '%u')}`;
    expect(await runImport(file, { format: 'mbox', user: 'alice', store, mailbox: 'Old' }, io)).toBe(0);
    // Plain output: the first report at once, then every 5 s, and the final state.
    expect(err.trimEnd().split('\n').at(-1)).toMatch(/^imported 30 messages \(\d+(\.\d)? (B|KiB)\/\d+(\.\d)? (B|KiB), 100%\) Old$/);
    expect(out).toMatch(/^read 30 messages \(.*\) from 1 mailbox: 30 imported, 0 failed$/m);
    const state = /state kept in (\S+)/.exec(out)![1]!;
    expect((await fs.readFile(state, 'utf8')).split('\n')[0]).toContain('"kind":"import"');
    out = '';
    expect(await runImport(file, { format: 'mbox', user: 'alice', store, mailbox: 'Old' }, io)).toBe(0);
    expect(out).toMatch(/read 30 messages .*: 0 imported, 30 already imported by an earlier run, 0 failed/);
    const md = new MaildirStore({ path: path.join(dir, 'mail', '%u') });
    const u = await md.openUser('alice');
    const st = await u.status('Old');
    expect(st).toMatchObject({ messages: 30, unseen: 15 });
    await md.close();
  });

  it('export writes a Maildir and reports; a config error exits 78', async () => {
    const file = path.join(dir, 'in.mbox');
    await fs.writeFile(file, mbox(4));
    const store = `maildir:${path.join(dir, 'mail', '%u')}`;
    await runImport(file, { format: 'mbox', user: 'bob', store }, io);
    out = '';
    expect(await runExport(path.join(dir, 'exported'), { format: 'maildir', user: 'bob', store }, io)).toBe(0);
    expect(out).toMatch(/^read 4 messages .* from 1 mailbox: 4 exported, 0 failed$/m);
    expect((await fs.readdir(path.join(dir, 'exported', 'new'))).length + (await fs.readdir(path.join(dir, 'exported', 'cur'))).length).toBe(4);
    expect(await runExport(path.join(dir, 'x'), { format: 'mbox', user: 'bob', store: 'nosuchkind:x' }, io)).toBe(78);
  });

  it('draws a bar on a terminal, at most every 100 ms, and ends the line', () => {
    const tty = new PassThrough() as PassThrough & { isTTY: boolean; columns: number };
    tty.isTTY = true;
    tty.columns = 80;
    let text = '';
    tty.on('data', (d: Buffer) => (text += d.toString()));
    let t = 1000;
    const r = new ProgressReporter(tty, 'imported', () => t);
    r.update({ mailbox: 'INBOX', messages: 1, totalMessages: 4, bytes: 10 });
    t += 50;
    r.update({ mailbox: 'INBOX', messages: 2, totalMessages: 4, bytes: 20 });
    t += 100;
    r.update({ mailbox: 'INBOX', messages: 4, totalMessages: 4, bytes: 40 });
    r.finish();
    const frames = text.split('\r').filter(Boolean);
    expect(frames[0]).toContain('[######..................]  25% 1/4 messages');
    expect(frames.some((f) => f.includes('2/4'))).toBe(false);
    expect(frames.at(-1)).toMatch(/\[#{24}\] 100% 4\/4 messages {2}40 B {2}INBOX\s*\n$/);
  });

  it('the summary line names what was read and where it went', () => {
    expect(summaryLine('exported', { read: 3, stored: 1, alreadyDone: 1, failed: 1, bytes: 2048, mailboxes: ['a', 'b'], errors: [] })).toBe(
      'read 3 messages (2.0 KiB) from 2 mailboxes: 1 exported, 1 already exported by an earlier run, 1 failed',
    );
  });
});
