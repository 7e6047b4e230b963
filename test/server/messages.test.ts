/** The message commands end to end: a real server on the memory store, a raw client on a socket. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { append, loggedIn, sampleMessage, startTestServer, type TestClient, type TestServer } from './helpers.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

/** A fresh mailbox for one test, filled with `n` sample messages, selected. */
async function mailboxWith(client: TestClient, name: string, n: number): Promise<void> {
  expect((await client.command(`CREATE ${name}`)).tagged).toMatch(/^OK/);
  for (let i = 1; i <= n; i++) expect((await append(client, name, sampleMessage(`Message ${i}`, `Body number ${i}`))).tagged).toMatch(/^OK/);
  // The first SELECT takes the new messages' \\Recent (test/server/recent.test.ts); these tests look at the rest.
  expect((await client.command(`SELECT ${name}`)).tagged).toMatch(/^OK/);
  expect((await client.command(`SELECT ${name}`)).untagged).toContain('* 0 RECENT');
}

describe('FETCH and STORE over the wire', () => {
  it('fetches metadata, envelope and body, and sets \\Seen on BODY[]', async () => {
    const c = await loggedIn(srv.port);
    await mailboxWith(c, 'fetch1', 2);
    const meta = await c.command('FETCH 1:2 (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)');
    expect(meta.tagged).toMatch(/^OK/);
    expect(meta.untagged).toHaveLength(2);
    expect(meta.untagged[0]).toMatch(/^\* 1 FETCH \(UID 1 FLAGS \(\) RFC822\.SIZE \d+ INTERNALDATE "\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}" ENVELOPE \("Mon, 01 Jan 2024 10:00:00 \+0000" "Message 1" /);
    const body = await c.command('UID FETCH 2 (BODY[TEXT])');
    expect(body.untagged).toEqual(['* 2 FETCH (UID 2 BODY[TEXT] {15}\r\nBody number 2\r\n FLAGS (\\Seen))']);
    const again = await c.command('FETCH 2 FLAGS');
    expect(again.untagged).toEqual(['* 2 FETCH (FLAGS (\\Seen))']);
    expect((await c.command('FETCH 3 FLAGS')).tagged).toMatch(/^BAD .*Invalid messageset/);
    c.close();
  });

  it('stores flags, with .SILENT and UNCHANGEDSINCE, without echoing its own change later', async () => {
    const c = await loggedIn(srv.port);
    await mailboxWith(c, 'store1', 3);
    const r = await c.command('STORE 1:2 +FLAGS (\\Flagged)');
    expect(r.untagged).toEqual(['* 1 FETCH (FLAGS (\\Flagged))', '* 2 FETCH (FLAGS (\\Flagged))']);
    const silent = await c.command('UID STORE 3 +FLAGS.SILENT (\\Deleted)');
    expect(silent.untagged).toEqual([]);
    // The session must not report the session's own change as an unsolicited FETCH.
    expect((await c.command('NOOP')).untagged).toEqual([]);
    const cond = await c.command('STORE 1:3 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)');
    expect(cond.tagged).toMatch(/^OK \[MODIFIED 1:3\]/);
    c.close();
  });

  it('answers CHANGEDSINCE and VANISHED (EARLIER) under QRESYNC', async () => {
    const c = await loggedIn(srv.port);
    expect((await c.command('ENABLE QRESYNC')).tagged).toMatch(/^OK/);
    await mailboxWith(c, 'qresync1', 3);
    const hms = /HIGHESTMODSEQ (\d+)/.exec((await c.command('STATUS qresync1 (HIGHESTMODSEQ)')).untagged.join(' '));
    expect(hms).not.toBeNull();
    await c.command('STORE 3 +FLAGS.SILENT (\\Deleted)');
    const exp = await c.command('EXPUNGE');
    expect(exp.untagged).toContain('* VANISHED 3');
    await c.command('STORE 1 +FLAGS.SILENT (\\Flagged)');
    const r = await c.command(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${hms![1]} VANISHED)`);
    expect(r.untagged[0]).toBe('* VANISHED (EARLIER) 3');
    expect(r.untagged.slice(1).map((l) => l.replace(/MODSEQ \(\d+\)/, 'MODSEQ (n)'))).toEqual(['* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ (n))']);
    c.close();
  });
});

describe('SEARCH, SORT and THREAD over the wire', () => {
  it('searches with classic and ESEARCH answers, and SAVE feeds $', async () => {
    const c = await loggedIn(srv.port);
    await mailboxWith(c, 'search1', 4);
    await c.command('STORE 2,4 +FLAGS.SILENT (\\Flagged)');
    expect((await c.command('SEARCH FLAGGED')).untagged).toEqual(['* SEARCH 2 4']);
    expect((await c.command('SEARCH BODY "number 3"')).untagged).toEqual(['* SEARCH 3']);
    const tag = c.nextTag();
    c.send(`${tag} UID SEARCH RETURN (MIN COUNT SAVE) UNFLAGGED`);
    const es = await c.readUntilTagged(tag);
    expect(es.untagged).toEqual([`* ESEARCH (TAG "${tag}") UID MIN 1 COUNT 2`]);
    // RFC 5182: MIN with COUNT saves every match, so $ is 1 and 3.
    expect((await c.command('FETCH $ UID')).untagged).toEqual(['* 1 FETCH (UID 1)', '* 3 FETCH (UID 3)']);
    c.close();
  });

  it('sorts and threads', async () => {
    const c = await loggedIn(srv.port);
    await mailboxWith(c, 'sort1', 3);
    expect((await c.command('SORT (REVERSE SUBJECT) UTF-8 ALL')).untagged).toEqual(['* SORT 3 2 1']);
    expect((await c.command('UID SORT (ARRIVAL) UTF-8 NOT UID 2')).untagged).toEqual(['* SORT 1 3']);
    expect((await c.command('THREAD ORDEREDSUBJECT UTF-8 ALL')).untagged).toEqual(['* THREAD (1)(2)(3)']);
    expect((await c.command('THREAD REFERENCES UTF-8 ALL')).untagged).toEqual(['* THREAD (1)(2)(3)']);
    c.close();
  });
});

describe('COPY, MOVE and EXPUNGE over the wire', () => {
  it('copies with COPYUID, moves with EXPUNGE, expunges', async () => {
    const c = await loggedIn(srv.port);
    await mailboxWith(c, 'move1', 4);
    expect((await c.command('CREATE move1dst')).tagged).toMatch(/^OK/);
    const copy = await c.command('COPY 1 move1dst');
    expect(copy.tagged).toMatch(/^OK \[COPYUID \d+ 1 1\]/);
    expect((await c.command('COPY 1 nosuchbox')).tagged).toMatch(/^NO \[TRYCREATE\]/);
    const move = await c.command('MOVE 2:3 move1dst');
    expect(move.tagged).toMatch(/^OK/);
    expect(move.untagged[0]).toMatch(/^\* OK \[COPYUID \d+ 2:3 2:3\]/);
    expect(move.untagged.slice(1)).toEqual(['* 2 EXPUNGE', '* 2 EXPUNGE']);
    // UID 4 is now sequence 2.
    expect((await c.command('FETCH 2 UID')).untagged).toEqual(['* 2 FETCH (UID 4)']);
    await c.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
    const exp = await c.command('EXPUNGE');
    expect(exp.untagged).toEqual(['* 1 EXPUNGE']);
    expect((await c.command('FETCH 1 UID')).untagged).toEqual(['* 1 FETCH (UID 4)']);
    expect((await c.command('STATUS move1dst (MESSAGES)')).untagged[0]).toMatch(/MESSAGES 3/);
    c.close();
  });

  it('tells a second session about the first one\'s MOVE', async () => {
    const a = await loggedIn(srv.port);
    await mailboxWith(a, 'move2', 2);
    expect((await a.command('CREATE move2dst')).tagged).toMatch(/^OK/);
    const b = await loggedIn(srv.port);
    expect((await b.command('SELECT move2')).tagged).toMatch(/^OK/);
    await a.command('MOVE 1 move2dst');
    const noop = await b.command('NOOP');
    expect(noop.untagged).toContain('* 1 EXPUNGE');
    a.close();
    b.close();
  });
});
