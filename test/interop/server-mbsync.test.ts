/**
 * mbsync (isync) syncs an imapkit account to a local Maildir and back: new mail both ways, flag
 * changes both ways, deletions both ways, a new folder; every run exits 0 without errors or
 * warnings, and a final run finds nothing left to do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { ImapFlow } from 'imapflow';
import { havePeer, run, startImapkit, tempDir, which, type ImapkitServer } from './helpers/server-peers.js';

const haveMbsync = havePeer('mbsync', 'the mbsync round trip against imapkit serve is');

/** One message in the local Maildir. */
interface LocalMsg {
  file: string;
  subject: string;
  flags: string;
}

const msg = (subject: string, body = 'body'): string =>
  `From: Sync Test <sync@example.org>\r\nTo: you@example.org\r\nSubject: ${subject}\r\nDate: Fri, 05 Apr 2024 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n\r\n${body}\r\n`;

describe.runIf(haveMbsync)('mbsync against imapkit serve', () => {
  let tmp: ReturnType<typeof tempDir>;
  let srv: ImapkitServer;
  let maildir: string;
  let config: string;

  beforeAll(async () => {
    tmp = tempDir('mbsync');
    srv = await startImapkit(tmp.dir, `sqlite:${path.join(tmp.dir, 'mail.sqlite')}`);
    maildir = path.join(tmp.dir, 'Mail');
    // mbsync creates folders but not the store's root
    mkdirSync(maildir);
    config = path.join(tmp.dir, 'mbsyncrc');
    writeFileSync(
      config,
      [
        'IMAPAccount imapkit',
        'Host 127.0.0.1',
        `Port ${srv.port}`,
        'User test5',
        'Pass pass',
        'SSLType None',
        'AuthMechs LOGIN',
        '',
        'IMAPStore imapkit-far',
        'Account imapkit',
        '',
        'MaildirStore local-near',
        `Path ${maildir}/`,
        `Inbox ${maildir}/INBOX`,
        'SubFolders Verbatim',
        '',
        'Channel imapkit',
        'Far :imapkit-far:',
        'Near :local-near:',
        'Patterns *',
        'Create Both',
        'Remove None',
        'Expunge Both',
        'Sync All',
        'SyncState *',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await srv?.stop();
    tmp?.remove();
  });

  const imap = async <T>(fn: (c: ImapFlow) => Promise<T>): Promise<T> => {
    const c = new ImapFlow({ host: '127.0.0.1', port: srv.port, secure: false, auth: { user: 'test5', pass: 'pass' }, logger: false, disableAutoIdle: true });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.logout().catch(() => undefined);
    }
  };

  /** Subject -> sorted flags on the server. */
  const serverState = (mailbox: string): Promise<Map<string, string[]>> =>
    imap(async (c) => {
      const out = new Map<string, string[]>();
      const box = await c.mailboxOpen(mailbox, { readOnly: true });
      if (box.exists === 0) return out;
      for await (const m of c.fetch('1:*', { envelope: true, flags: true })) out.set(m.envelope!.subject!, [...m.flags!].filter((f) => f !== '\\Recent').sort());
      return out;
    });

  const local = (folder: string): LocalMsg[] => {
    const out: LocalMsg[] = [];
    for (const sub of ['cur', 'new']) {
      const dir = path.join(maildir, folder, sub);
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir)) {
        const file = path.join(dir, name);
        const subject = /^Subject: (.*)$/m.exec(readFileSync(file, 'latin1'))?.[1]?.replace(/\r$/, '') ?? '';
        const info = name.lastIndexOf(':2,');
        out.push({ file, subject, flags: info >= 0 ? name.slice(info + 3) : '' });
      }
    }
    return out.sort((a, b) => a.subject.localeCompare(b.subject));
  };
  const localState = (folder: string): Map<string, string> => new Map(local(folder).map((m) => [m.subject, m.flags]));

  const mbsync = async (): Promise<void> => {
    const r = await run(which('mbsync')!, ['-c', config, '-a'], { timeoutMs: 60_000 });
    // mbsync's notice about LOGIN without TLS is about our SSLType None on loopback, not the server
    const problems = (r.stdout + r.stderr)
      .split('\n')
      .filter((l) => /error|warning|fail/i.test(l) && !/Password is being sent in the clear/.test(l));
    expect({ code: r.code, problems }).toEqual({ code: 0, problems: [] });
  };

  it('syncs mail, flags and deletions both ways without errors', async () => {
    // The far side starts with mail in INBOX and in a folder.
    await imap(async (c) => {
      await c.append('INBOX', msg('far one'), ['\\Seen']);
      await c.append('INBOX', msg('far two'), ['\\Flagged']);
      await c.append('INBOX', msg('far three'));
      await c.mailboxCreate('Work');
      await c.append('Work', msg('work item'), ['\\Answered', '\\Seen']);
    });

    await mbsync();
    expect(localState('INBOX')).toEqual(
      new Map([
        ['far one', 'S'],
        ['far three', ''],
        ['far two', 'F'],
      ]),
    );
    expect(localState('Work')).toEqual(new Map([['work item', 'RS']]));

    // Near-side changes: new mail, flags set and cleared, a deletion.
    writeFileSync(path.join(maildir, 'INBOX', 'new', '1712300000.near1.localhost'), msg('near new'));
    const inbox = local('INBOX');
    const three = inbox.find((m) => m.subject === 'far three')!;
    renameSync(three.file, three.file.replace(/(:2,[A-Z]*)?$/, ':2,FS').replace('/new/', '/cur/'));
    const two = inbox.find((m) => m.subject === 'far two')!;
    renameSync(two.file, two.file.replace(/:2,[A-Z]*$/, ':2,'));
    unlinkSync(local('Work').find((m) => m.subject === 'work item')!.file);
    // Far-side changes: new mail, a flag, an expunge, a new folder.
    await imap(async (c) => {
      await c.append('INBOX', msg('far four'));
      await c.mailboxOpen('INBOX');
      const uids = await c.search({ subject: 'far one' }, { uid: true });
      await c.messageFlagsAdd(uids as number[], ['\\Answered'], { uid: true });
      await c.mailboxCreate('Lists');
      await c.append('Lists', msg('list mail'));
    });
    await imap(async (c) => {
      await c.mailboxOpen('INBOX');
      // "far two" is unflagged near and deleted far: the far deletion must win, not resurrect it.
      const uids = await c.search({ subject: 'far two' }, { uid: true });
      await c.messageDelete(uids as number[], { uid: true });
    });

    await mbsync();
    const far = await serverState('INBOX');
    expect(far).toEqual(
      new Map([
        ['far four', []],
        ['far one', ['\\Answered', '\\Seen']],
        ['far three', ['\\Flagged', '\\Seen']],
        ['near new', []],
      ]),
    );
    expect(await serverState('Work')).toEqual(new Map());
    expect(localState('INBOX')).toEqual(
      new Map([
        ['far four', ''],
        ['far one', 'RS'],
        ['far three', 'FS'],
        ['near new', ''],
      ]),
    );
    expect(localState('Lists')).toEqual(new Map([['list mail', '']]));

    // A further run finds everything in step: nothing changes on either side.
    await mbsync();
    expect(await serverState('INBOX')).toEqual(far);
    expect(localState('INBOX').size).toBe(4);
    expect(localState('Lists').size).toBe(1);
    expect(local('Work')).toEqual([]);
  });
});
