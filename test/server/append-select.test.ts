/** APPEND (MULTIAPPEND, UIDPLUS, TRYCREATE, TOOBIG, BINARY) and SELECT/EXAMINE/CLOSE/UNSELECT. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { append, loggedIn, sampleMessage, startTestServer, type TestClient, type TestServer } from './helpers.js';

let srv: TestServer;
let c: TestClient;
beforeAll(async () => {
  srv = await startTestServer({ limits: { appendLimit: 100_000 } });
  c = await loggedIn(srv.port);
});
afterAll(async () => {
  c.close();
  await srv.close();
});

describe('APPEND', () => {
  it('stores a message with flags and date and answers APPENDUID', async () => {
    await c.command('CREATE Ap');
    const msg = sampleMessage('Dated');
    const r = await c.command(`APPEND Ap (\\Seen $Work) "14-Jul-2023 02:44:25 +0200" {${Buffer.byteLength(msg)}+}\r\n${msg}`);
    expect(r.tagged).toMatch(/^OK \[APPENDUID \d+ 1\] /);
    const mail = await srv.store.openUser('test1');
    const box = await mail.open('Ap');
    const [meta] = await box.list();
    expect([...meta!.flags].sort()).toEqual(['$Work', '\\Seen']);
    expect(meta!.internalDate.toISOString()).toBe('2023-07-14T00:44:25.000Z');
    expect((await box.read(meta!.uid))!.toString()).toBe(msg);
    await box.close();
    await mail.close();
  });

  it('MULTIAPPEND stores all messages and reports a UID set', async () => {
    const a = sampleMessage('m1');
    const b = sampleMessage('m2');
    const r = await c.command(`APPEND Ap {${a.length}+}\r\n${a} (\\Flagged) {${b.length}+}\r\n${b}`);
    expect(r.tagged).toMatch(/^OK \[APPENDUID \d+ 2:3\] /);
  });

  it('answers TRYCREATE for a missing mailbox', async () => {
    const r = await append(c, 'Missing', sampleMessage());
    expect(r.tagged).toMatch(/^NO \[TRYCREATE\] /);
  });

  it('accepts a synchronizing literal after the continuation', async () => {
    const msg = sampleMessage('sync');
    c.send(`S1 APPEND Ap {${msg.length}}`);
    expect(await c.readLine()).toMatch(/^\+ /);
    c.sendRaw(`${msg}\r\n`);
    expect(await c.readLine()).toMatch(/^S1 OK \[APPENDUID \d+ 4\]/);
  });

  it('takes NUL bytes only in a binary literal', async () => {
    const msg = 'Subject: bin\r\n\r\nA\0B\r\n';
    const ok = await c.command(`APPEND Ap ~{${msg.length}+}\r\n${msg}`);
    expect(ok.tagged).toMatch(/^OK \[APPENDUID/);
    const bad = await c.command(`APPEND Ap {${msg.length}+}\r\n${msg}`);
    expect(bad.tagged).toMatch(/^BAD/);
  });

  it('refuses unknown system flags and empty messages', async () => {
    const msg = sampleMessage();
    expect((await c.command(`APPEND Ap (\\Bogus) {${msg.length}+}\r\n${msg}`)).tagged).toMatch(/^BAD/);
    expect((await c.command('APPEND Ap {0+}\r\n')).tagged).toMatch(/^NO/);
  });
});

describe('SELECT and EXAMINE', () => {
  it('reports the mailbox as IMAP4rev1 clients expect', async () => {
    await c.command('CREATE Sel');
    await append(c, 'Sel', sampleMessage('a'), '\\Seen');
    await append(c, 'Sel', sampleMessage('b'), '$Label');
    const r = await c.command('SELECT Sel');
    expect(r.tagged).toMatch(/^OK \[READ-WRITE\] SELECT completed/);
    const u = r.untagged;
    expect(u).toContain('* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label)');
    expect(u).toContain('* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label \\*)] Flags permitted.');
    expect(u).toContain('* 2 EXISTS');
    // The first SELECT after the APPENDs takes both as \\Recent (RFC 3501 2.3.2).
    expect(u).toContain('* 2 RECENT');
    expect(u).toContain('* OK [UNSEEN 2] First unseen.');
    expect(u.some((l) => /^\* OK \[UIDVALIDITY \d+\]/.test(l))).toBe(true);
    expect(u).toContain('* OK [UIDNEXT 3] Predicted next UID.');
    expect(u.some((l) => /^\* OK \[HIGHESTMODSEQ \d+\]/.test(l))).toBe(true);
    expect(u.some((l) => /^\* OK \[MAILBOXID \(\S+\)\]/.test(l))).toBe(true);
  });

  it('EXAMINE is read-only with empty PERMANENTFLAGS; switching sends [CLOSED]', async () => {
    const r = await c.command('EXAMINE Sel');
    expect(r.untagged[0]).toBe('* OK [CLOSED] Previous mailbox closed.');
    expect(r.untagged).toContain('* OK [PERMANENTFLAGS ()] Read-only mailbox.');
    expect(r.tagged).toMatch(/^OK \[READ-ONLY\]/);
  });

  it('a failed SELECT leaves no mailbox selected', async () => {
    expect((await c.command('SELECT Nowhere')).tagged).toMatch(/^NO \[NONEXISTENT\]/);
    expect((await c.command('CHECK')).tagged).toMatch(/^BAD/);
  });

  it('IMAP4rev2 clients get a LIST line and no RECENT', async () => {
    const c2 = await loggedIn(srv.port);
    await c2.command('ENABLE IMAP4rev2');
    const r = await c2.command('SELECT Sel');
    expect(r.untagged).toContain('* LIST () "/" Sel');
    expect(r.untagged.some((l) => /RECENT/.test(l))).toBe(false);
    c2.close();
  });

  it('CLOSE expunges \\Deleted silently; UNSELECT does not', async () => {
    await c.command('CREATE Cl');
    await append(c, 'Cl', sampleMessage('keep'));
    await append(c, 'Cl', sampleMessage('drop'), '\\Deleted');
    await c.command('SELECT Cl');
    const un = await c.command('UNSELECT');
    expect(un.tagged).toMatch(/^OK/);
    expect((await c.command('STATUS Cl (MESSAGES)')).untagged).toEqual(['* STATUS Cl (MESSAGES 2)']);
    await c.command('EXAMINE Cl');
    await c.command('CLOSE');
    // EXAMINE is read-only: CLOSE must not expunge.
    expect((await c.command('STATUS Cl (MESSAGES)')).untagged).toEqual(['* STATUS Cl (MESSAGES 2)']);
    await c.command('SELECT Cl');
    const close = await c.command('CLOSE');
    expect(close.untagged).toEqual([]);
    expect(close.tagged).toMatch(/^OK/);
    expect((await c.command('STATUS Cl (MESSAGES)')).untagged).toEqual(['* STATUS Cl (MESSAGES 1)']);
    expect((await c.command('CLOSE')).tagged).toMatch(/^BAD/);
  });

  it('APPEND to the selected mailbox announces EXISTS before the OK', async () => {
    await c.command('SELECT Sel');
    const r = await append(c, 'Sel', sampleMessage('c'));
    expect(r.untagged).toContain('* 3 EXISTS');
    expect(r.tagged).toMatch(/^OK \[APPENDUID \d+ 3\]/);
    await c.command('UNSELECT');
  });
});
