/**
 * Python's imaplib (stdlib) runs a scripted session against `imapkit serve`: login, list, select,
 * append, search, fetch, store, copy, expunge, status, sort, thread, logout. The script prints
 * what imaplib handed it as JSON; the test checks that against what a correct server returns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { havePeer, run, startImapkit, tempDir, which, type ImapkitServer } from './helpers/server-peers.js';

const havePython = havePeer('python3', 'the Python imaplib session against imapkit serve is');

const SCRIPT = String.raw`
import imaplib, json, sys, time
port = int(sys.argv[1])
out = {}
def s(v):
    if isinstance(v, bytes): return v.decode('utf-8', 'replace')
    if isinstance(v, tuple): return [s(x) for x in v]
    if isinstance(v, list): return [s(x) for x in v]
    return v
def msg(i, subject, body):
    return ('From: Py Thon <py%d@example.org>\r\nTo: you@example.org\r\nSubject: %s\r\n'
            'Date: Wed, 0%d Feb 2024 12:00:00 +0000\r\nMessage-ID: <py%d@example.org>\r\n\r\n%s\r\n' % (i, subject, i + 1, i, body)).encode()
M = imaplib.IMAP4('127.0.0.1', port)
out['caps'] = list(M.capabilities)
out['login'] = s(M.login('test3', 'pass'))
out['create'] = s(M.create('Py'))
out['create_utf7'] = s(M.create('Entw&APw-rfe'))
out['list'] = s(M.list())
out['namespace'] = s(M.namespace())
date = imaplib.Time2Internaldate(time.mktime((2024, 2, 3, 4, 5, 6, 0, 0, -1)))
out['append'] = [s(M.append('INBOX', r'(\Seen)', date, msg(0, 'one', 'alpha kiwi'))),
                 s(M.append('INBOX', None, None, msg(1, 'two', 'beta kiwi'))),
                 s(M.append('INBOX', r'(\Flagged $Label)', None, msg(2, 'three', 'gamma')))]
out['select'] = s(M.select('INBOX'))
out['search_all'] = s(M.search(None, 'ALL'))
out['search_text'] = s(M.search(None, 'TEXT', 'kiwi'))
out['search_unseen'] = s(M.search(None, 'UNSEEN'))
out['search_subject'] = s(M.search(None, '(SUBJECT "two")'))
out['search_charset'] = s(M.search('UTF-8', 'BODY', 'gamma'))
out['uid_search'] = s(M.uid('SEARCH', 'FLAGGED'))
typ, data = M.fetch('1:3', '(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
out['fetch'] = [typ, s(data)]
typ, data = M.fetch('2', '(RFC822)')
out['rfc822'] = [typ, s(data[0][0]), data[0][1] == msg(1, 'two', 'beta kiwi')]
out['seen_after_rfc822'] = s(M.fetch('2', '(FLAGS)'))
out['store'] = s(M.store('2', '+FLAGS', r'(\Deleted)'))
out['store_silent'] = s(M.store('3', '-FLAGS.SILENT', r'(\Flagged)'))
out['copy'] = s(M.copy('1:3', 'Py'))
out['uid_copy'] = s(M.uid('COPY', '1', 'Entw&APw-rfe'))
out['expunge'] = s(M.expunge())
out['after_expunge'] = s(M.fetch('1:*', '(UID FLAGS)'))
out['sort'] = s(M.sort('(REVERSE SUBJECT)', 'UTF-8', 'ALL'))
out['thread'] = s(M.thread('REFERENCES', 'UTF-8', 'ALL'))
out['status'] = s(M.status('Py', '(MESSAGES UNSEEN UIDNEXT)'))
out['status_utf7'] = s(M.status('Entw&APw-rfe', '(MESSAGES)'))
out['bad'] = None
try:
    M._simple_command('FETCH', '1', '(NOSUCHITEM)')
except imaplib.IMAP4.error as e:
    out['bad'] = str(e)
out['noop'] = s(M.noop())
out['close'] = s(M.close())
out['logout'] = s(M.logout())
print(json.dumps(out))
`;

describe.runIf(havePython)("Python's imaplib against imapkit serve", () => {
  let tmp: ReturnType<typeof tempDir>;
  let srv: ImapkitServer;
  beforeAll(async () => {
    tmp = tempDir('imaplib');
    srv = await startImapkit(tmp.dir);
  });
  afterAll(async () => {
    await srv?.stop();
    tmp?.remove();
  });

  it('runs a scripted session and gets what it expects', async () => {
    const script = path.join(tmp.dir, 'session.py');
    writeFileSync(script, SCRIPT);
    const r = await run(which('python3')!, [script, String(srv.port)], { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;

    expect(out.caps).toEqual(expect.arrayContaining(['IMAP4REV1', 'IDLE', 'UIDPLUS']));
    expect((out.login as [string])[0]).toBe('OK');
    expect(out.create).toEqual(['OK', [expect.any(String)]]);
    expect((out.create_utf7 as [string])[0]).toBe('OK');
    const list = out.list as [string, string[]];
    expect(list[0]).toBe('OK');
    // the mailbox name may come as an atom or a quoted string
    expect(list[1].map((l) => l.replace(/^\([^)]*\) "\/" /, '').replace(/^"(.*)"$/, '$1')).sort()).toEqual(['Entw&APw-rfe', 'INBOX', 'Py']);
    expect((out.namespace as [string, string[]])[1][0]).toMatch(/^\(\(""\s+"\/"\)\) NIL NIL$/);

    const appends = out.append as Array<[string, string[]]>;
    expect(appends.map((a) => a[0])).toEqual(['OK', 'OK', 'OK']);
    // UIDPLUS: [APPENDUID <uidvalidity> <uid>]
    expect(appends.map((a) => /APPENDUID \d+ (\d+)/.exec(a[1][0]!)?.[1])).toEqual(['1', '2', '3']);

    expect(out.select).toEqual(['OK', ['3']]);
    expect(out.search_all).toEqual(['OK', ['1 2 3']]);
    expect(out.search_text).toEqual(['OK', ['1 2']]);
    expect(out.search_unseen).toEqual(['OK', ['2 3']]);
    expect(out.search_subject).toEqual(['OK', ['2']]);
    expect(out.search_charset).toEqual(['OK', ['3']]);
    expect(out.uid_search).toEqual(['OK', ['3']]);

    const [ftyp, fdata] = out.fetch as [string, Array<string | string[]>];
    expect(ftyp).toBe('OK');
    const heads = fdata.filter((d): d is string[] => Array.isArray(d));
    expect(heads).toHaveLength(3);
    for (const [i, h] of heads.entries()) {
      expect(h[0]).toMatch(new RegExp(`^${i + 1} \\(`));
      expect(h[0]).toMatch(new RegExp(`UID ${i + 1}\\b`));
      expect(h[0]).toMatch(/RFC822\.SIZE \d+/);
      expect(h[1]).toBe(`Subject: ${['one', 'two', 'three'][i]}\r\n\r\n`);
    }
    expect(heads[0]![0]).toContain('INTERNALDATE "03-Feb-2024 04:05:06 ');
    // Appended before this session's SELECT: \Recent here (RFC 3501 2.3.2).
    expect(heads[0]![0]).toMatch(/FLAGS \(\\Seen \\Recent\)/);

    const rfc = out.rfc822 as [string, string, boolean];
    expect(rfc[0]).toBe('OK');
    expect(rfc[2]).toBe(true);
    // RFC822 (unlike BODY.PEEK) sets \Seen
    expect(JSON.stringify(out.seen_after_rfc822)).toContain('\\\\Seen');

    const store = out.store as [string, string[]];
    expect(store[0]).toBe('OK');
    expect(store[1].join(' ')).toMatch(/^2 \(FLAGS \(.*\\Deleted.*\)\)$/);
    expect(out.store_silent).toEqual(['OK', [null]]);
    expect((out.copy as [string, string[]])[0]).toBe('OK');
    expect((out.copy as [string, string[]])[1][0]).toMatch(/COPYUID \d+ 1:3 1:3/);
    expect((out.uid_copy as [string])[0]).toBe('OK');
    expect(out.expunge).toEqual(['OK', ['2']]);
    const after = (out.after_expunge as [string, string[]])[1];
    expect(after).toHaveLength(2);
    expect(after[0]).toMatch(/^1 \(UID 1 FLAGS \(\\Seen \\Recent\)\)$/);
    expect(after[1]).toMatch(/^2 \(UID 3 FLAGS \(\$Label \\Recent\)\)$/);
    // subjects "one", "three": reverse order puts "three" (seq 2) first
    expect(out.sort).toEqual(['OK', ['2 1']]);
    expect(out.thread).toEqual(['OK', ['(1)(2)']]);
    expect(out.status).toEqual(['OK', ['Py (MESSAGES 3 UNSEEN 1 UIDNEXT 4)']]);
    expect((out.status_utf7 as [string, string[]])[1][0]).toMatch(/^"?Entw&APw-rfe"? \(MESSAGES 1\)$/);
    expect(out.bad).toMatch(/BAD/);
    expect((out.noop as [string])[0]).toBe('OK');
    expect((out.close as [string])[0]).toBe('OK');
    expect((out.logout as [string])[0]).toBe('BYE');
  });
});
