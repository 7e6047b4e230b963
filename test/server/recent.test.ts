/**
 * \Recent (RFC 3501 2.3.2) for IMAP4rev1 clients, as Dovecot keeps it: a new message is recent in
 * exactly one session, the first that selects its mailbox read-write (or has it selected) after it
 * arrived; EXAMINE and STATUS show it without taking it; IMAP4rev2 clients never see it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { append, loggedIn, sampleMessage, startTestServer, type TestClient, type TestServer } from './helpers.js';

let srv: TestServer;
let box = 0;
const clients: TestClient[] = [];

beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await srv.close();
});

async function client(): Promise<TestClient> {
  const c = await loggedIn(srv.port);
  clients.push(c);
  return c;
}

const recentOf = (untagged: string[]): string | undefined => untagged.find((l) => / RECENT$/.test(l));

describe('\\Recent', () => {
  it('goes to the first session that selects the mailbox after the mail arrived, once', async () => {
    const name = `Rec${++box}`;
    const a = await client();
    const b = await client();
    const c = await client();
    await a.command(`CREATE ${name}`);
    for (const s of ['one', 'two']) await append(a, name, sampleMessage(s));

    // Delivered here since the server started: recent to the first SELECT, and to no later one.
    expect(recentOf((await a.command(`SELECT ${name}`)).untagged)).toBe('* 2 RECENT');
    await a.command('CLOSE');
    expect(recentOf((await a.command(`EXAMINE ${name}`)).untagged)).toBe('* 0 RECENT');
    await a.command('CLOSE');
    for (const s of ['three', 'four']) await append(b, name, sampleMessage(s));
    expect((await c.command(`STATUS ${name} (RECENT MESSAGES)`)).untagged).toEqual([`* STATUS ${name} (RECENT 2 MESSAGES 4)`]);
    // EXAMINE shows them without taking them.
    expect(recentOf((await c.command(`EXAMINE ${name}`)).untagged)).toBe('* 2 RECENT');
    expect((await c.command('FETCH 3:4 FLAGS')).untagged).toEqual(['* 3 FETCH (FLAGS (\\Recent))', '* 4 FETCH (FLAGS (\\Recent))']);
    // SELECT takes them: recent here, and in no later session.
    expect(recentOf((await b.command(`SELECT ${name}`)).untagged)).toBe('* 2 RECENT');
    expect((await b.command('FETCH 1:* FLAGS')).untagged).toEqual([
      '* 1 FETCH (FLAGS ())',
      '* 2 FETCH (FLAGS ())',
      '* 3 FETCH (FLAGS (\\Recent))',
      '* 4 FETCH (FLAGS (\\Recent))',
    ]);
    expect((await b.command('STORE 3 +FLAGS (\\Seen)')).untagged).toEqual(['* 3 FETCH (FLAGS (\\Seen \\Recent))']);
    expect((await b.command('SEARCH RECENT')).untagged).toEqual(['* SEARCH 3 4']);
    expect((await b.command('SEARCH NEW')).untagged).toEqual(['* SEARCH 4']);
    expect((await b.command('SEARCH OLD')).untagged).toEqual(['* SEARCH 1 2']);
    // (c still has the mailbox open read-only: it hears of b's STORE too, with \Recent as c saw it.)
    expect((await c.command(`STATUS ${name} (RECENT)`)).untagged).toEqual([`* STATUS ${name} (RECENT 0)`, '* 3 FETCH (FLAGS (\\Seen \\Recent))']);
    expect(recentOf((await a.command(`SELECT ${name}`)).untagged)).toBe('* 0 RECENT');
    expect((await a.command('SEARCH RECENT')).untagged).toEqual(['* SEARCH']);
  });

  it('new mail is recent in the selected session that hears of it first, with a RECENT update', async () => {
    const name = `Rec${++box}`;
    const a = await client();
    const b = await client();
    await a.command(`CREATE ${name}`);
    await append(a, name, sampleMessage('one'));
    expect(recentOf((await a.command(`SELECT ${name}`)).untagged)).toBe('* 1 RECENT');
    await append(b, name, sampleMessage('two'));
    expect((await a.command('NOOP')).untagged).toEqual(['* 2 EXISTS', '* 2 RECENT']);
    expect((await a.command('FETCH 2 FLAGS')).untagged).toEqual(['* 2 FETCH (FLAGS (\\Recent))']);
    await a.command('STORE 2 +FLAGS.SILENT (\\Deleted)');
    // Expunged, it is no longer counted, and the count is said again (RFC 3501 7.3.2).
    expect((await a.command('EXPUNGE')).untagged).toEqual(['* 2 EXPUNGE', '* 1 RECENT']);
    expect((await a.command('SEARCH RECENT')).untagged).toEqual(['* SEARCH 1']);
  });

  it('a mailbox this process has not delivered to starts with nothing recent', async () => {
    const name = `Rec${++box}`;
    const a = await client();
    await a.command(`CREATE ${name}`);
    // Put there behind the server's back (another process, say): not known to be new.
    const u = await srv.store.openUser('test1');
    await u.append(name, [{ data: Buffer.from(sampleMessage('elsewhere').replace(/\r?\n/g, '\r\n')) }]);
    await u.close();
    expect(recentOf((await a.command(`SELECT ${name}`)).untagged)).toBe('* 0 RECENT');
  });

  it('is never shown to an IMAP4rev2 client, and takes nothing from IMAP4rev1 sessions', async () => {
    const name = `Rec${++box}`;
    const a = await client();
    const v2 = await client();
    await a.command(`CREATE ${name}`);
    await append(a, name, sampleMessage('one'));
    await a.command(`SELECT ${name}`);
    await a.command('UNSELECT');
    await append(a, name, sampleMessage('two'));
    expect((await v2.command('ENABLE IMAP4rev2')).tagged).toMatch(/^OK/);
    const sel = await v2.command(`SELECT ${name}`);
    expect(recentOf(sel.untagged)).toBeUndefined();
    expect((await v2.command('FETCH 2 FLAGS')).untagged).toEqual(['* 2 FETCH (FLAGS ())']);
    expect(recentOf((await a.command(`SELECT ${name}`)).untagged)).toBe('* 1 RECENT');
  });
});
