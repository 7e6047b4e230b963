/** Mailbox commands over sockets: CREATE, DELETE, RENAME, SUBSCRIBE, LIST (all flavours), LSUB, STATUS, QUOTA. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/store/memory/store.js';
import { compilePattern, listEntries } from '../../src/server/commands/list.js';
import type { MailboxInfo } from '../../src/store/contract.js';
import { append, loggedIn, sampleMessage, startTestServer, type TestClient, type TestServer } from './helpers.js';

describe('LIST pattern matcher', () => {
  it('matches * across levels and % within one level', () => {
    const star = compilePattern('a/*');
    expect(star('a/b')).toBe(true);
    expect(star('a/b/c')).toBe(true);
    expect(star('b/c')).toBe(false);
    const pct = compilePattern('a/%');
    expect(pct('a/b')).toBe(true);
    expect(pct('a/b/c')).toBe(false);
    expect(compilePattern('%')('INBOX')).toBe(true);
    expect(compilePattern('x%z')('xyz')).toBe(true);
    expect(compilePattern('x%z')('x/z')).toBe(false);
    expect(compilePattern('')('')).toBe(true);
  });

  it('matches INBOX case-insensitively but other names case-sensitively', () => {
    expect(compilePattern('inbox')('INBOX')).toBe(true);
    expect(compilePattern('Inbox/%')('INBOX/Sub')).toBe(true);
    expect(compilePattern('inbox/sub')('INBOX/Sub')).toBe(false);
    expect(compilePattern('sent')('Sent')).toBe(false);
  });

  it('stays linear on patterns that make backtracking matchers explode', () => {
    const pattern = '*a'.repeat(40) + '*b';
    const name = 'a'.repeat(5000);
    // A backtracking matcher would not finish; the automaton answers at once.
    expect(compilePattern(pattern)(name)).toBe(false);
    expect(compilePattern(pattern)(name + 'b')).toBe(true);
    expect(compilePattern('%a'.repeat(40) + '%b')(name)).toBe(false);
  });
});

describe('listEntries', () => {
  const box = (name: string, extra: Partial<MailboxInfo> = {}): MailboxInfo => ({ name, subscribed: false, mailboxId: name, ...extra });
  const all = [
    box('INBOX', { subscribed: true }),
    box('a/b', { subscribed: true }),
    box('a/b/c'),
    box('Sent', { specialUse: '\\Sent', subscribed: true }),
    box('x'),
  ];
  const req = { patterns: ['%'], subscribedOnly: false, specialUseOnly: false, recursiveMatch: false, returnSubscribed: false, extended: false };

  it('shows a missing parent as \\Noselect under %, not under *', () => {
    const pct = listEntries(all, req);
    expect(pct.map((e) => e.name)).toEqual(['INBOX', 'Sent', 'a', 'x']);
    expect(pct.find((e) => e.name === 'a')?.attributes).toEqual(['\\Noselect', '\\HasChildren']);
    const star = listEntries(all, { ...req, patterns: ['*'] });
    expect(star.map((e) => e.name)).toEqual(['INBOX', 'Sent', 'a/b', 'a/b/c', 'x']);
    expect(star.find((e) => e.name === 'a/b')?.attributes).toEqual(['\\HasChildren']);
    expect(star.find((e) => e.name === 'Sent')?.attributes).toEqual(['\\HasNoChildren', '\\Sent']);
  });

  it('uses \\NonExistent for LIST-EXTENDED', () => {
    const pct = listEntries(all, { ...req, extended: true });
    expect(pct.find((e) => e.name === 'a')?.attributes).toEqual(['\\NonExistent', '\\HasChildren']);
  });

  it('SUBSCRIBED with RECURSIVEMATCH reports CHILDINFO for parents of subscribed mailboxes', () => {
    const sub = listEntries(all, { ...req, subscribedOnly: true, recursiveMatch: true, extended: true });
    expect(sub.map((e) => [e.name, e.childInfo])).toEqual([
      ['INBOX', false],
      ['Sent', false],
      ['a', true],
    ]);
    const plain = listEntries(all, { ...req, subscribedOnly: true, extended: true });
    expect(plain.map((e) => e.name)).toEqual(['INBOX', 'Sent']);
  });

  it('SPECIAL-USE selection lists only special-use mailboxes', () => {
    const su = listEntries(all, { ...req, patterns: ['*'], specialUseOnly: true, extended: true });
    expect(su.map((e) => e.name)).toEqual(['Sent']);
  });
});

describe('mailbox commands', () => {
  let srv: TestServer;
  let c: TestClient;
  beforeAll(async () => {
    srv = await startTestServer({ store: new MemoryStore({ scryptLn: 4, quota: { storageLimitKiB: 1000, messagesLimit: 50 } }) });
    await srv.store.users!.addUser('test1', 'pass');
    await srv.store.users!.addUser('test2', 'pass');
    c = await loggedIn(srv.port);
  });
  afterAll(async () => {
    c.close();
    await srv.close();
    await srv.store.close();
  });

  it('CREATE, LIST with attributes, DELETE', async () => {
    expect((await c.command('CREATE Work/Projects/')).tagged).toMatch(/^OK/);
    expect((await c.command('CREATE Work/Projects')).tagged).toMatch(/^NO \[ALREADYEXISTS\]/);
    expect((await c.command('CREATE inbox')).tagged).toMatch(/^NO \[ALREADYEXISTS\]/);
    const list = await c.command('LIST "" "*"');
    expect(list.untagged).toContain('* LIST (\\HasNoChildren) "/" INBOX');
    expect(list.untagged).toContain('* LIST (\\HasChildren) "/" Work');
    expect(list.untagged).toContain('* LIST (\\HasNoChildren) "/" Work/Projects');
    const pct = await c.command('LIST "" %');
    expect(pct.untagged).not.toContain('* LIST (\\HasNoChildren) "/" Work/Projects');
    const ref = await c.command('LIST Work/ %');
    expect(ref.untagged).toEqual(['* LIST (\\HasNoChildren) "/" Work/Projects']);
    expect((await c.command('DELETE Work')).tagged).toMatch(/^OK/);
    const after = await c.command('LIST "" %');
    expect(after.untagged).toContain('* LIST (\\Noselect \\HasChildren) "/" Work');
    expect((await c.command('DELETE Nope')).tagged).toMatch(/^NO \[NONEXISTENT\]/);
    expect((await c.command('DELETE INBOX')).tagged).toMatch(/^NO/);
  });

  it('LIST "" "" gives the separator', async () => {
    const r = await c.command('LIST "" ""');
    expect(r.untagged).toEqual(['* LIST (\\Noselect) "/" ""']);
  });

  it('CREATE with USE and SPECIAL-USE selection', async () => {
    expect((await c.command('CREATE Bin (USE (\\Trash))')).tagged).toMatch(/^OK/);
    expect((await c.command('CREATE Odd (USE (\\Bogus))')).tagged).toMatch(/^NO \[USEATTR\]/);
    const r = await c.command('LIST (SPECIAL-USE) "" "*"');
    expect(r.untagged).toEqual(['* LIST (\\HasNoChildren \\Trash) "/" Bin']);
  });

  it('RENAME moves children; RENAME INBOX moves its messages', async () => {
    await c.command('CREATE Old/Child');
    expect((await c.command('RENAME Old New')).tagged).toMatch(/^OK/);
    const r = await c.command('LIST "" "New*"');
    expect(r.untagged).toContain('* LIST (\\HasNoChildren) "/" New/Child');
    expect((await c.command('RENAME Missing Other')).tagged).toMatch(/^NO \[NONEXISTENT\]/);
    expect((await c.command('RENAME New New/Below')).tagged).toMatch(/^NO/);
    await append(c, 'INBOX', sampleMessage('to be moved'));
    expect((await c.command('RENAME INBOX Saved')).tagged).toMatch(/^OK/);
    const st = await c.command('STATUS Saved (MESSAGES)');
    expect(st.untagged).toEqual(['* STATUS Saved (MESSAGES 1)']);
    const inbox = await c.command('STATUS INBOX (MESSAGES)');
    expect(inbox.untagged).toEqual(['* STATUS INBOX (MESSAGES 0)']);
  });

  it('SUBSCRIBE, LSUB and LIST (SUBSCRIBED) / RETURN (SUBSCRIBED)', async () => {
    await c.command('CREATE Sub/Leaf');
    expect((await c.command('SUBSCRIBE Sub/Leaf')).tagged).toMatch(/^OK/);
    const lsub = await c.command('LSUB "" "*"');
    expect(lsub.untagged).toContain('* LSUB (\\HasNoChildren) "/" Sub/Leaf');
    const lsubPct = await c.command('LSUB "" "Sub"');
    expect(lsubPct.untagged).toEqual([]);
    const lsubTop = await c.command('LSUB "" "%"');
    expect(lsubTop.untagged).toContain('* LSUB (\\Noselect \\HasChildren) "/" Sub');
    const ext = await c.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"');
    expect(ext.untagged).toContain('* LIST (\\HasChildren) "/" Sub ("CHILDINFO" ("SUBSCRIBED"))');
    const ret = await c.command('LIST "" "Sub/*" RETURN (SUBSCRIBED)');
    expect(ret.untagged).toEqual(['* LIST (\\Subscribed \\HasNoChildren) "/" Sub/Leaf']);
    expect((await c.command('UNSUBSCRIBE Sub/Leaf')).tagged).toMatch(/^OK/);
    expect((await c.command('LSUB "" "Sub/*"')).untagged).toEqual([]);
    expect((await c.command('LIST (RECURSIVEMATCH) "" "*"')).tagged).toMatch(/^BAD/);
  });

  it('STATUS reports every item and LIST-STATUS adds STATUS lines', async () => {
    await c.command('CREATE Stat');
    await append(c, 'Stat', sampleMessage('one'), '\\Seen');
    await append(c, 'Stat', sampleMessage('two'), '\\Deleted');
    const r = await c.command('STATUS Stat (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ APPENDLIMIT MAILBOXID)');
    expect(r.tagged).toMatch(/^OK/);
    expect(r.untagged[0]).toMatch(
      /^\* STATUS Stat \(MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 1 DELETED 1 SIZE \d+ HIGHESTMODSEQ \d+ APPENDLIMIT \d+ MAILBOXID \(\S+\)\)$/,
    );
    const ls = await c.command('LIST "" "Stat" RETURN (STATUS (MESSAGES UNSEEN))');
    expect(ls.untagged).toEqual(['* LIST (\\HasNoChildren) "/" Stat', '* STATUS Stat (MESSAGES 2 UNSEEN 1)']);
    expect((await c.command('STATUS Nope (MESSAGES)')).tagged).toMatch(/^NO \[NONEXISTENT\]/);
  });

  it('encodes non-ASCII names in modified UTF-7, and in UTF-8 after ENABLE UTF8=ACCEPT', async () => {
    expect((await c.command('CREATE "Entw&APw-rfe"')).tagged).toMatch(/^OK/);
    const r = await c.command('LIST "" "Entw*"');
    expect(r.untagged).toEqual(['* LIST (\\HasNoChildren) "/" Entw&APw-rfe']);
    expect((await c.command('CREATE "Bad&-name&Jjo"')).tagged).toMatch(/^BAD/);
    const u = await loggedIn(srv.port);
    await u.command('ENABLE UTF8=ACCEPT');
    const r8 = await u.command('LIST "" "Entw*"');
    expect(r8.untagged).toEqual(['* LIST (\\HasNoChildren) "/" "Entwürfe"']);
    u.close();
  });

  it('QUOTA reports the user root', async () => {
    const r = await c.command('GETQUOTAROOT INBOX');
    expect(r.untagged[0]).toBe('* QUOTAROOT INBOX ""');
    expect(r.untagged[1]).toMatch(/^\* QUOTA "" \(STORAGE \d+ 1000 MESSAGE \d+ 50\)$/);
    expect((await c.command('GETQUOTA ""')).untagged[0]).toMatch(/^\* QUOTA "" \(STORAGE/);
    expect((await c.command('SETQUOTA "" (STORAGE 10)')).tagged).toMatch(/^NO/);
  });

  it("keeps users' mailboxes apart", async () => {
    const other = await loggedIn(srv.port, 'test2');
    const r = await other.command('LIST "" "*"');
    expect(r.untagged).toEqual(['* LIST (\\HasNoChildren) "/" INBOX']);
    other.close();
  });
});
