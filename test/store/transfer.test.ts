/**
 * Import and export: mboxrd in and out, Maildir in and out, progress and summaries, and resuming
 * after a crash at any point without losing or duplicating a message.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { UserMailStore } from '../../src/store/contract.js';
import { MemoryStore } from '../../src/store/memory/store.js';
import { MaildirStore } from '../../src/store/maildir/store.js';
import { exportMessages, importMessages, type TransferProgress } from '../../src/store/transfer/transfer.js';
import { formatMboxMessage, parseFromLineDate, readMbox } from '../../src/store/transfer/mbox.js';
import { Journal, JournalError } from '../../src/store/transfer/journal.js';

let dir: string;
let store: MemoryStore;
let u: UserMailStore;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imapkit-transfer-'));
  store = new MemoryStore({ scryptLn: 4 });
  u = await store.openUser('alice');
});
afterEach(async () => {
  await store.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const crlf = (s: string): Buffer => Buffer.from(s.replace(/\r?\n/g, '\r\n'));

/** An mbox of n simple messages; every third is read, every fifth flagged. */
function mbox(n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    out += `From sender${i}@example.org Mon Jan  ${(i % 9) + 1} 10:00:0${i % 10} 2024\n`;
    out += `From: s${i}@example.org\nSubject: number ${i}\nMessage-ID: <${i}@x>\n`;
    if (i % 3 === 0) out += 'Status: RO\n';
    if (i % 5 === 0) out += 'X-Status: F\nX-Keywords: $Label1 work\n';
    out += `\nbody ${i}\n>From quoted\nFrom unquoted mid-paragraph\n\n`;
  }
  return out;
}

async function allMessages(user: UserMailStore, mailbox: string): Promise<Array<{ data: string; flags: string[]; date: number }>> {
  const h = await user.open(mailbox);
  const out = [];
  for (const m of await h.list()) out.push({ data: (await h.read(m.uid))!.toString('latin1'), flags: [...m.flags].sort(), date: m.internalDate.getTime() });
  await h.close();
  return out;
}

describe('mboxrd', () => {
  it('reads messages, undoes quoting, turns Status headers into flags and the From line into INTERNALDATE', async () => {
    const file = path.join(dir, 'in.mbox');
    await fs.writeFile(
      file,
      'From a@b Mon Jan  1 10:00:00 2024\nSubject: one\nStatus: RO\nX-Status: AF\nX-Keywords: $Junk\n\nhello\n>From the past\n>>From deeper\n\n' +
        'From b@c Tue Feb 20 11:12:13 +0100 2024\nSubject: two\n\nline\nFrom in a paragraph stays\n',
    );
    const msgs = [];
    for await (const m of readMbox(file)) msgs.push(m);
    expect(msgs).toHaveLength(2);
    expect(msgs[0]!.data.toString()).toBe('Subject: one\n\nhello\nFrom the past\n>From deeper\n');
    expect(msgs[0]!.flags.sort()).toEqual(['$Junk', '\\Answered', '\\Flagged', '\\Seen']);
    expect(msgs[0]!.internalDate?.toISOString()).toBe('2024-01-01T10:00:00.000Z');
    expect(msgs[1]!.data.toString()).toBe('Subject: two\n\nline\nFrom in a paragraph stays\n');
    expect(msgs[1]!.internalDate?.toISOString()).toBe('2024-02-20T10:12:13.000Z');
    expect(msgs[1]!.offset).toBe(msgs[0]!.end);
  });

  it('refuses a file that is not an mbox', async () => {
    const file = path.join(dir, 'x');
    await fs.writeFile(file, 'Subject: hi\n\nnot an mbox\n');
    await expect(importMessages({ format: 'mbox', source: file, user: u })).rejects.toThrow();
  });

  it('formatting then reading gives back bytes, flags and date (property)', async () => {
    const line = fc.oneof(fc.constantFrom('From x', '>From y', '>>From z', '', 'From', ' From', 'plain text'), fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n]/g, '')));
    const flagSet = fc.subarray(['\\Seen', '\\Answered', '\\Flagged', '\\Draft', '\\Deleted', 'kw1', '$Label2']);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 8 }), flagSet, fc.integer({ min: 0, max: 4_000_000_000 }), async (lines, flags, secs) => {
        const data = crlf(`Subject: p\n\n${lines.join('\n')}\n`);
        const date = new Date(secs * 1000);
        const file = path.join(dir, `p${n++}.mbox`);
        await fs.writeFile(file, Buffer.concat([formatMboxMessage(data, flags, date), formatMboxMessage(crlf('Subject: second\n\nx\n'), [], date)]));
        const got = [];
        for await (const m of readMbox(file)) got.push(m);
        expect(got).toHaveLength(2);
        expect(crlf(got[0]!.data.toString('latin1')).equals(data)).toBe(true);
        expect(got[0]!.flags.sort()).toEqual([...flags].sort());
        expect(got[0]!.internalDate?.getTime()).toBe(date.getTime());
      }),
      { numRuns: 60 },
    );
  });

  it('parses From-line dates with and without zones', () => {
    expect(parseFromLineDate('From x Sat Mar  2 03:04:05 2019')?.toISOString()).toBe('2019-03-02T03:04:05.000Z');
    expect(parseFromLineDate('From x Sat Mar 2 03:04 2019 -0500')?.toISOString()).toBe('2019-03-02T08:04:00.000Z');
    expect(parseFromLineDate('From x nonsense')).toBeUndefined();
  });
});

describe('import', () => {
  it('imports an mbox with flags and dates, reporting progress, and a summary matching what was read', async () => {
    const file = path.join(dir, 'mail.mbox');
    await fs.writeFile(file, mbox(25));
    const progress: TransferProgress[] = [];
    const s = await importMessages({ format: 'mbox', source: file, user: u, mailbox: 'Imported/Old', batchSize: 7, onProgress: (p) => progress.push(p) });
    expect(s).toMatchObject({ read: 25, stored: 25, alreadyDone: 0, failed: 0, mailboxes: ['Imported/Old'] });
    const msgs = await allMessages(u, 'Imported/Old');
    expect(msgs).toHaveLength(25);
    expect(msgs[3]!.data).toBe('From: s3@example.org\r\nSubject: number 3\r\nMessage-ID: <3@x>\r\n\r\nbody 3\r\nFrom quoted\r\nFrom unquoted mid-paragraph\r\n');
    expect(msgs[0]!.flags).toEqual(['$Label1', '\\Flagged', '\\Seen', 'work']);
    expect(msgs[1]!.flags).toEqual([]);
    expect(new Date(msgs[2]!.date).toISOString()).toBe('2024-01-03T10:00:02.000Z');
    expect(progress).toHaveLength(25);
    expect(progress.at(-1)).toMatchObject({ messages: 25, bytes: (await fs.stat(file)).size, totalBytes: (await fs.stat(file)).size });
  });

  it('resumes after a crash mid-way without duplicates (state file)', async () => {
    const file = path.join(dir, 'mail.mbox');
    const state = path.join(dir, 'state.jsonl');
    await fs.writeFile(file, mbox(60));
    await expect(
      importMessages({
        format: 'mbox',
        source: file,
        user: u,
        stateFile: state,
        batchSize: 10,
        onProgress: (p) => {
          if (p.messages === 37) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    expect((await u.status('INBOX')).messages).toBe(30);
    const s = await importMessages({ format: 'mbox', source: file, user: u, stateFile: state, batchSize: 10 });
    expect(s).toMatchObject({ read: 60, stored: 30, alreadyDone: 30, failed: 0 });
    const subjects = (await allMessages(u, 'INBOX')).map((m) => /Subject: (.*)\r/.exec(m.data)![1]);
    expect(subjects).toEqual(Array.from({ length: 60 }, (_, i) => `number ${i}`));
    // A third run has nothing to do.
    expect(await importMessages({ format: 'mbox', source: file, user: u, stateFile: state })).toMatchObject({ read: 60, stored: 0, alreadyDone: 60 });
  });

  it('a crash after the store took a batch but before the state file said so duplicates nothing', async () => {
    const file = path.join(dir, 'mail.mbox');
    const state = path.join(dir, 'state.jsonl');
    await fs.writeFile(file, mbox(12));
    // A store whose append succeeds and then "crashes" on the third batch.
    let calls = 0;
    const crashing: UserMailStore = Object.create(u) as UserMailStore;
    crashing.append = async (mb, msgs, origin) => {
      const r = await u.append(mb, msgs, origin);
      if (++calls === 3) throw new Error('crash after append');
      return r;
    };
    await expect(importMessages({ format: 'mbox', source: file, user: crashing, stateFile: state, batchSize: 4 })).rejects.toThrow('crash after append');
    expect((await u.status('INBOX')).messages).toBe(12);
    const s = await importMessages({ format: 'mbox', source: file, user: u, stateFile: state, batchSize: 4 });
    expect(s).toMatchObject({ read: 12, stored: 0, alreadyDone: 12 });
    expect((await u.status('INBOX')).messages).toBe(12);
  });

  it('imports a Maildir++ tree (flags, keywords, dates, folders) under a parent mailbox', async () => {
    const src = path.join(dir, 'Maildir');
    for (const d of ['', '.Lists.dev', '.Entw&APw-rfe']) for (const sub of ['cur', 'new', 'tmp']) await fs.mkdir(path.join(src, d, sub), { recursive: true });
    await fs.writeFile(path.join(src, 'dovecot-keywords'), '0 Work\n');
    await fs.writeFile(path.join(src, 'cur', '1500000002.a.h,S=20:2,RSa'), 'Subject: second\n\nb\n');
    await fs.writeFile(path.join(src, 'cur', '1500000001.a.h:2,'), 'Subject: first\n\na\n');
    await fs.writeFile(path.join(src, 'new', '1500000003.a.h'), 'Subject: third\n\nc\n');
    await fs.writeFile(path.join(src, '.Lists.dev', 'cur', '1500000004.b.h:2,F'), 'Subject: list\r\n\r\nd\r\n');
    await fs.writeFile(path.join(src, '.Entw&APw-rfe', 'cur', '1500000005.c.h:2,D'), 'Subject: draft\n\ne\n');
    const when = new Date('2017-07-14T02:40:00Z');
    await fs.utimes(path.join(src, 'cur', '1500000001.a.h:2,'), when, when);
    const s = await importMessages({ format: 'maildir', source: src, user: u, mailbox: 'Old' });
    expect(s).toMatchObject({ read: 5, stored: 5, failed: 0 });
    expect(s.mailboxes.sort()).toEqual(['Old', 'Old/Entwürfe', 'Old/Lists/dev']);
    const inbox = await allMessages(u, 'Old');
    expect(inbox.map((m) => /Subject: (\w+)/.exec(m.data)![1])).toEqual(['first', 'second', 'third']);
    expect(inbox.map((m) => m.flags)).toEqual([[], ['Work', '\\Answered', '\\Seen'], []]);
    expect(inbox[0]!.date).toBe(when.getTime());
    expect(inbox[0]!.data).toBe('Subject: first\r\n\r\na\r\n');
    expect((await allMessages(u, 'Old/Lists/dev'))[0]!.flags).toEqual(['\\Flagged']);
    expect((await allMessages(u, 'Old/Entwürfe'))[0]!.flags).toEqual(['\\Draft']);
  });

  it('imports a directory of mbox files as mailboxes named by their paths', async () => {
    await fs.mkdir(path.join(dir, 'mboxes', 'Archive'), { recursive: true });
    await fs.writeFile(path.join(dir, 'mboxes', 'Sent.mbox'), mbox(2));
    await fs.writeFile(path.join(dir, 'mboxes', 'Archive', '2020.mbox'), mbox(3));
    await fs.writeFile(path.join(dir, 'mboxes', 'Archive', 'index.msf'), 'junk');
    const s = await importMessages({ format: 'mbox', source: path.join(dir, 'mboxes'), user: u });
    expect(s).toMatchObject({ read: 5, stored: 5 });
    expect(s.mailboxes.sort()).toEqual(['Archive/2020', 'Sent']);
    expect((await u.status('Archive/2020')).messages).toBe(3);
  });
});

describe('export', () => {
  it('exports to mbox and imports back to the same bytes, flags and dates', async () => {
    await u.createMailbox('Work');
    const date = new Date('2022-02-02T02:02:02Z');
    await u.append('Work', [
      { data: crlf('Subject: a\n\nFrom here\n>From there\n'), flags: ['\\Seen', 'todo'], internalDate: date },
      { data: crlf('Subject: b\n\nplain\n'), flags: ['\\Answered', '\\Flagged'], internalDate: date },
    ]);
    const out = path.join(dir, 'work.mbox');
    const s = await exportMessages({ format: 'mbox', dest: out, user: u, mailbox: 'Work' });
    expect(s).toMatchObject({ read: 2, stored: 2, alreadyDone: 0, failed: 0 });
    const text = await fs.readFile(out, 'utf8');
    expect(text).toContain('\n>From here\n>>From there\n');
    expect(text.startsWith('From MAILER-DAEMON Wed Feb  2 02:02:02 2022\nSubject: a\nStatus: RO\nX-Keywords: todo\n\n')).toBe(true);
    const other = await store.openUser('bob');
    await importMessages({ format: 'mbox', source: out, user: other, mailbox: 'Work' });
    expect(await allMessages(other, 'Work')).toEqual(await allMessages(u, 'Work'));
  });

  it('exports every mailbox to a Maildir Dovecot can read, resumably', async () => {
    await u.createMailbox('A/B');
    await u.append('INBOX', [{ data: crlf('Subject: i\n\n1\n'), flags: ['\\Seen'] }]);
    await u.append('A/B', [{ data: crlf('Subject: ab\n\n2\n'), flags: ['kw'] }, { data: crlf('Subject: ab2\n\n3\n') }]);
    const out = path.join(dir, 'out', 'Maildir');
    const state = path.join(dir, 'export.state');
    const s = await exportMessages({ format: 'maildir', dest: out, user: u, stateFile: state });
    expect(s).toMatchObject({ read: 3, stored: 3 });
    expect(await fs.readFile(path.join(out, '.A.B', 'dovecot-keywords'), 'utf8')).toBe('0 kw\n');
    const md = new MaildirStore({ path: out, cacheDir: 'MEMORY' });
    const back = await md.openUser('x');
    expect(await allMessages(back, 'A/B')).toEqual(await allMessages(u, 'A/B'));
    expect(await allMessages(back, 'INBOX')).toEqual(await allMessages(u, 'INBOX'));
    await md.close();
    expect(await exportMessages({ format: 'maildir', dest: out, user: u, stateFile: state })).toMatchObject({ read: 3, stored: 0, alreadyDone: 3 });
  });

  it('a half-written mbox batch is cut off when the export resumes', async () => {
    await u.append('INBOX', Array.from({ length: 5 }, (_, i) => ({ data: crlf(`Subject: ${i}\n\nx\n`) })));
    const out = path.join(dir, 'in.mbox');
    const state = path.join(dir, 'state');
    await exportMessages({ format: 'mbox', dest: out, user: u, mailbox: 'INBOX', stateFile: state, batchSize: 2, onProgress: (p) => {
      if (p.messages === 4) throw new Error('stop');
    } }).catch(() => undefined);
    // Simulate a crash mid-write of the next batch: begun, garbage in the file, no end record.
    const size = (await fs.stat(out)).size;
    await fs.appendFile(state, JSON.stringify({ begin: { target: out, keys: ['x'], size } }) + '\n');
    await fs.appendFile(out, 'From half-written');
    const s = await exportMessages({ format: 'mbox', dest: out, user: u, mailbox: 'INBOX', stateFile: state, batchSize: 2 });
    // Batches of two: the stop came after the second batch, so four were done.
    expect(s).toMatchObject({ read: 5, stored: 1, alreadyDone: 4 });
    const subjects = [];
    for await (const m of readMbox(out)) subjects.push(/Subject: (\d)/.exec(m.data.toString())![1]);
    expect(subjects).toEqual(['0', '1', '2', '3', '4']);
  });

  it('a state file of another transfer is refused', async () => {
    const state = path.join(dir, 's');
    await Journal.open(state, { kind: 'import', format: 'mbox', source: '/a', dest: 'u:' });
    await expect(Journal.open(state, { kind: 'import', format: 'mbox', source: '/b', dest: 'u:' })).rejects.toBeInstanceOf(JournalError);
  });
});
