/**
 * Untagged updates between sessions: IDLE wake-ups, EXISTS / FETCH FLAGS / EXPUNGE at the next
 * command that allows them (never after FETCH, STORE, SEARCH), VANISHED under QRESYNC, and
 * QRESYNC SELECT.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { append, loggedIn, sampleMessage, startTestServer, type TestClient, type TestServer } from './helpers.js';

let srv: TestServer;
let box = 0;
let name: string;
let a: TestClient;
let b: TestClient;

beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

/** Each test: a fresh mailbox with three messages, selected by A and B. */
beforeEach(async () => {
  name = `Upd${++box}`;
  a = await loggedIn(srv.port);
  b = await loggedIn(srv.port);
  await a.command(`CREATE ${name}`);
  for (const s of ['one', 'two', 'three']) await append(a, name, sampleMessage(s));
  // A first SELECT takes their \\Recent (test/server/recent.test.ts), so these tests see only new mail as recent.
  await b.command(`SELECT ${name}`);
  await b.command('UNSELECT');
});
afterEach(() => {
  a.close();
  b.close();
});

describe('IDLE', () => {
  it('wakes up with EXISTS when another session appends', async () => {
    await a.command(`SELECT ${name}`);
    a.send('I1 IDLE');
    expect(await a.readLine()).toBe('+ idling');
    await append(b, name, sampleMessage('four'));
    expect(await a.readLine()).toBe('* 4 EXISTS');
    // a is the first selected session to see it: the new message is recent there (RFC 3501 2.3.2).
    expect(await a.readLine()).toBe('* 1 RECENT');
    a.send('DONE');
    expect(await a.readLine()).toMatch(/^I1 OK/);
  });

  it('wakes up with FETCH FLAGS and EXPUNGE for changes by others', async () => {
    await a.command(`SELECT ${name}`);
    await b.command(`SELECT ${name}`);
    a.send('I2 IDLE');
    expect(await a.readLine()).toBe('+ idling');
    await b.command('STORE 2 +FLAGS.SILENT (\\Deleted)');
    expect(await a.readLine()).toBe('* 2 FETCH (FLAGS (\\Deleted))');
    await b.command('EXPUNGE');
    expect(await a.readLine()).toBe('* 2 EXPUNGE');
    a.send('DONE');
    expect(await a.readLine()).toMatch(/^I2 OK/);
    const r = await a.command('NOOP');
    expect(r.untagged).toEqual([]);
  });

  it('reports changes made before IDLE at once', async () => {
    await a.command(`SELECT ${name}`);
    await append(b, name, sampleMessage('early'));
    a.send('I3 IDLE');
    expect(await a.readLine()).toBe('+ idling');
    expect(await a.readLine()).toBe('* 4 EXISTS');
    expect(await a.readLine()).toBe('* 1 RECENT');
    a.send('DONE');
    expect(await a.readLine()).toMatch(/^I3 OK/);
  });

  it('ends with BAD on anything but DONE, and works without a selected mailbox', async () => {
    a.send('I4 IDLE');
    expect(await a.readLine()).toBe('+ idling');
    a.send('NOPE');
    expect(await a.readLine()).toMatch(/^I4 BAD/);
    expect((await a.command('NOOP')).tagged).toMatch(/^OK/);
  });
});

describe('updates at the next command', () => {
  it('holds back EXPUNGE during FETCH, STORE and SEARCH, and sends it at NOOP', async () => {
    await a.command(`SELECT ${name}`);
    await b.command(`SELECT ${name}`);
    await b.command('STORE 2 +FLAGS.SILENT (\\Deleted)');
    await b.command('EXPUNGE');
    const fetch = await a.command('FETCH 1:* (FLAGS)');
    expect(fetch.tagged).toMatch(/^OK/);
    expect(fetch.untagged.some((l) => /EXPUNGE|VANISHED/.test(l))).toBe(false);
    const store = await a.command('STORE 1 +FLAGS (\\Seen)');
    expect(store.untagged.some((l) => /EXPUNGE/.test(l))).toBe(false);
    const uidFetch = await a.command('UID FETCH 1:* (FLAGS)');
    expect(uidFetch.untagged.some((l) => /EXPUNGE/.test(l))).toBe(false);
    const search = await a.command('SEARCH ALL');
    expect(search.untagged.some((l) => /EXPUNGE/.test(l))).toBe(false);
    // The held-back EXPUNGE goes out at the first command that allows it, exactly once.
    const noop = await a.command('NOOP');
    expect(noop.untagged).toEqual(['* 2 EXPUNGE']);
    expect((await a.command('NOOP')).untagged).toEqual([]);
  });

  it('sends EXISTS and flag changes at the next command', async () => {
    await a.command(`SELECT ${name}`);
    await b.command(`SELECT ${name}`);
    await b.command('STORE 3 +FLAGS.SILENT (\\Flagged)');
    await append(b, name, sampleMessage('four'));
    const r = await a.command('NOOP');
    expect(r.untagged).toEqual(['* 3 FETCH (FLAGS (\\Flagged))', '* 4 EXISTS']);
  });

  it('sends EXISTS even after FETCH', async () => {
    await a.command(`SELECT ${name}`);
    await append(b, name, sampleMessage('four'));
    const r = await a.command('FETCH 1 (FLAGS)');
    expect(r.untagged).toContain('* 4 EXISTS');
  });

  it('adds MODSEQ to flag updates once CONDSTORE is on', async () => {
    await a.command('ENABLE CONDSTORE');
    await a.command(`SELECT ${name}`);
    await b.command(`SELECT ${name}`);
    await b.command('STORE 1 +FLAGS.SILENT (\\Answered)');
    const r = await a.command('NOOP');
    expect(r.untagged).toHaveLength(1);
    expect(r.untagged[0]).toMatch(/^\* 1 FETCH \(FLAGS \(\\Answered\) MODSEQ \(\d+\)\)$/);
  });

  it('does not echo a session its own flag changes', async () => {
    await a.command(`SELECT ${name}`);
    await a.command('STORE 1 +FLAGS.SILENT (\\Seen)');
    expect((await a.command('NOOP')).untagged).toEqual([]);
  });

  it('disconnects a session whose selected mailbox another session deleted', async () => {
    await a.command(`SELECT ${name}`);
    await b.command(`DELETE ${name}`);
    a.send('N1 NOOP');
    expect(await a.readLine()).toMatch(/^\* BYE /);
  });
});

describe('QRESYNC', () => {
  it('reports expunges by others as VANISHED, with UID in flag updates', async () => {
    await a.command('ENABLE QRESYNC');
    await a.command(`SELECT ${name}`);
    await b.command(`SELECT ${name}`);
    await b.command('STORE 1 +FLAGS.SILENT (\\Seen)');
    await b.command('STORE 2:3 +FLAGS.SILENT (\\Deleted)');
    await b.command('EXPUNGE');
    const r = await a.command('NOOP');
    expect(r.untagged[0]).toBe('* VANISHED 2:3');
    expect(r.untagged[1]).toMatch(/^\* 1 FETCH \(UID 1 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)$/);
  });

  it('SELECT (QRESYNC ...) sends VANISHED (EARLIER) and the changed flags', async () => {
    await a.command('ENABLE QRESYNC');
    const first = await a.command(`SELECT ${name}`);
    const validity = /UIDVALIDITY (\d+)/.exec(first.untagged.join('\n'))![1];
    const modseq = /HIGHESTMODSEQ (\d+)/.exec(first.untagged.join('\n'))![1];
    await a.command('UNSELECT');
    await b.command(`SELECT ${name}`);
    await b.command('STORE 3 +FLAGS.SILENT (\\Flagged)');
    await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
    await b.command('EXPUNGE');
    const r = await a.command(`SELECT ${name} (QRESYNC (${validity} ${modseq} 1:3))`);
    expect(r.tagged).toMatch(/^OK \[READ-WRITE\]/);
    expect(r.untagged).toContain('* VANISHED (EARLIER) 1');
    expect(r.untagged.some((l) => /^\* 2 FETCH \(UID 3 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$/.test(l))).toBe(true);
    expect(r.untagged).toContain('* 2 EXISTS');
  });

  it('refuses the QRESYNC parameter without ENABLE QRESYNC', async () => {
    expect((await a.command(`SELECT ${name} (QRESYNC (1 1))`)).tagged).toMatch(/^BAD/);
  });
});
