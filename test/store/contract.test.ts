/**
 * The MailStore contract suite: every backend in backends.ts must pass all of it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, type ChangeEvent, type MailboxHandle, type MailStore, type MessageMeta, type UserMailStore } from '../../src/store/contract.js';
import { backends } from './backends.js';

const msg = (n: number | string, extra = ''): Buffer =>
  Buffer.from(`From: a@example.org\r\nTo: b@example.org\r\nSubject: message ${n}\r\n\r\nBody ${n}${extra}\r\n`);

const sorted = (flags: string[]): string[] => [...flags].sort();

async function expectStoreError(p: Promise<unknown>, code: string): Promise<StoreError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe(code);
  expect((err as StoreError).message.length).toBeGreaterThan(0);
  return err as StoreError;
}

describe.each(backends)('MailStore contract: $name', (backend) => {
  let store: MailStore;
  let cleanup: () => Promise<void>;
  let u: UserMailStore;

  beforeEach(async () => {
    ({ store, cleanup } = await backend.create());
    u = await store.openUser('alice');
  });
  afterEach(async () => {
    await cleanup();
  });

  /** Append n messages to a mailbox and return their UIDs. */
  async function fill(mailbox: string, n: number, flags: string[] = []): Promise<number[]> {
    const r = await u.append(
      mailbox,
      Array.from({ length: n }, (_, i) => ({ data: msg(i), flags })),
    );
    return r.destUids;
  }

  describe('mailboxes', () => {
    it('a new user has an empty INBOX with a nonzero 32-bit UIDVALIDITY', async () => {
      expect(store.kind).toBe(backend.name);
      const boxes = await u.listMailboxes();
      expect(boxes.map((b) => b.name)).toEqual(['INBOX']);
      const st = await u.status('INBOX');
      expect(st).toMatchObject({ name: 'INBOX', messages: 0, unseen: 0, deleted: 0, size: 0, recent: 0, uidNext: 1 });
      expect(Number.isInteger(st.uidValidity)).toBe(true);
      expect(st.uidValidity).toBeGreaterThan(0);
      expect(st.uidValidity).toBeLessThanOrEqual(0xffffffff);
      expect(st.highestModSeq).toBeGreaterThan(0n);
      expect(st.mailboxId).toMatch(/^[A-Za-z0-9_-]{1,255}$/);
    });

    it('INBOX is case-insensitive and spelled INBOX', async () => {
      const st = await u.status('inbox');
      expect(st.name).toBe('INBOX');
      const h = await u.open('InBoX');
      expect(h.name).toBe('INBOX');
      await expectStoreError(u.createMailbox('Inbox'), 'ALREADYEXISTS');
      await u.createMailbox('inbox/Child');
      expect((await u.listMailboxes()).map((b) => b.name)).toContain('INBOX/Child');
    });

    it('other names are case-sensitive', async () => {
      await u.createMailbox('Work');
      await u.createMailbox('work');
      expect(sorted((await u.listMailboxes()).map((b) => b.name))).toEqual(['INBOX', 'Work', 'work']);
    });

    it('createMailbox creates missing parents and refuses duplicates', async () => {
      await u.createMailbox('a/b/c');
      expect(sorted((await u.listMailboxes()).map((b) => b.name))).toEqual(['INBOX', 'a', 'a/b', 'a/b/c']);
      await expectStoreError(u.createMailbox('a/b'), 'ALREADYEXISTS');
      await u.createMailbox('a/b/d');
      expect((await u.listMailboxes()).length).toBe(5);
    });

    it('createMailbox keeps a special-use attribute and Unicode names', async () => {
      await u.createMailbox('Sent Items', '\\Sent');
      await u.createMailbox('Entwürfe/日本語');
      const boxes = await u.listMailboxes();
      expect(boxes.find((b) => b.name === 'Sent Items')?.specialUse).toBe('\\Sent');
      expect(boxes.find((b) => b.name === 'INBOX')?.specialUse).toBeUndefined();
      expect(boxes.map((b) => b.name)).toContain('Entwürfe/日本語');
      expect((await u.status('Entwürfe/日本語')).messages).toBe(0);
    });

    it('mailbox ids are distinct and survive a rename', async () => {
      await u.createMailbox('x');
      await u.createMailbox('y');
      const before = await u.listMailboxes();
      const ids = before.map((b) => b.mailboxId);
      expect(new Set(ids).size).toBe(ids.length);
      const xId = before.find((b) => b.name === 'x')!.mailboxId;
      await u.renameMailbox('x', 'z');
      const after = await u.listMailboxes();
      expect(after.find((b) => b.name === 'z')!.mailboxId).toBe(xId);
      expect((await u.status('z')).mailboxId).toBe(xId);
    });

    it.each([
      ['empty', ''],
      ['NUL', 'a\u0000b'],
      ['tab', 'a\tb'],
      ['newline', 'a\nb'],
      ['DEL', 'a\u007fb'],
      ['leading /', '/a'],
      ['trailing /', 'a/'],
      ['only /', '/'],
      ['//', 'a//b'],
      ['. segment', 'a/./b'],
      ['.. segment', 'a/../b'],
      ['name .', '.'],
      ['name ..', '..'],
      ['leading .. segment', '../etc'],
    ])('rejects a mailbox name with %s', async (_what, name) => {
      const err = await expectStoreError(u.createMailbox(name), 'CANNOT');
      expect(err.message).toMatch(/mailbox name/);
      await expectStoreError(u.append(name, [{ data: msg(1) }]), 'CANNOT');
      await expectStoreError(u.renameMailbox('INBOX', name), 'CANNOT');
      expect((await u.listMailboxes()).map((b) => b.name)).toEqual(['INBOX']);
    });

    it('status and open of a missing mailbox raise NONEXISTENT', async () => {
      await expectStoreError(u.status('nope'), 'NONEXISTENT');
      await expectStoreError(u.open('nope'), 'NONEXISTENT');
      await expectStoreError(u.append('nope', [{ data: msg(1) }]), 'NONEXISTENT');
      await expectStoreError(u.deleteMailbox('nope'), 'NONEXISTENT');
      await expectStoreError(u.renameMailbox('nope', 'other'), 'NONEXISTENT');
    });

    it('deleteMailbox refuses INBOX and keeps children', async () => {
      await expectStoreError(u.deleteMailbox('INBOX'), 'CANNOT');
      await expectStoreError(u.deleteMailbox('inbox'), 'CANNOT');
      await u.createMailbox('p/c');
      await fill('p', 2);
      await fill('p/c', 3);
      await u.deleteMailbox('p');
      expect(sorted((await u.listMailboxes()).map((b) => b.name))).toEqual(['INBOX', 'p/c']);
      expect((await u.status('p/c')).messages).toBe(3);
      const q = await u.quota();
      expect(q.messagesUsed).toBe(3);
    });

    it('a re-created mailbox gets a new UIDVALIDITY', async () => {
      await u.createMailbox('box');
      const first = await u.status('box');
      await fill('box', 3);
      await u.deleteMailbox('box');
      await u.createMailbox('box');
      const second = await u.status('box');
      expect(second.uidValidity).not.toBe(first.uidValidity);
      expect(second.uidValidity).toBeGreaterThan(0);
      expect(second.messages).toBe(0);
      expect(second.mailboxId).not.toBe(first.mailboxId);
    });

    it('renaming moves children, keeps messages, UIDs and UIDVALIDITY', async () => {
      await u.createMailbox('a/x/deep');
      await u.createMailbox('ab');
      const uids = await fill('a/x', 2);
      const before = await u.status('a/x');
      await u.renameMailbox('a', 'b');
      expect(sorted((await u.listMailboxes()).map((b) => b.name))).toEqual(['INBOX', 'ab', 'b', 'b/x', 'b/x/deep']);
      const after = await u.status('b/x');
      expect(after.uidValidity).toBe(before.uidValidity);
      expect(after.uidNext).toBe(before.uidNext);
      const h = await u.open('b/x');
      expect((await h.list()).map((m) => m.uid)).toEqual(uids);
      expect((await h.read(uids[0]!))!.equals(msg(0))).toBe(true);
    });

    it('renaming creates missing parents of the new name', async () => {
      await u.createMailbox('old');
      await u.renameMailbox('old', 'new/parent/leaf');
      expect(sorted((await u.listMailboxes()).map((b) => b.name))).toEqual(['INBOX', 'new', 'new/parent', 'new/parent/leaf']);
    });

    it('renaming refuses an existing target and a target inside the source', async () => {
      await u.createMailbox('a/c');
      await u.createMailbox('b/c');
      await expectStoreError(u.renameMailbox('a', 'b'), 'ALREADYEXISTS');
      await expectStoreError(u.renameMailbox('a', 'INBOX'), 'ALREADYEXISTS');
      await expectStoreError(u.renameMailbox('a', 'a/sub'), 'CANNOT');
      await u.deleteMailbox('b');
      // "b" is free now but "b/c" is not: the child's new name collides.
      await expectStoreError(u.renameMailbox('a', 'b'), 'ALREADYEXISTS');
      expect(sorted((await u.listMailboxes()).map((b) => b.name))).toEqual(['INBOX', 'a', 'a/c', 'b/c']);
    });

    it('a name freed by a rename gets a new UIDVALIDITY when re-created', async () => {
      await u.createMailbox('a');
      const a = await u.status('a');
      await u.renameMailbox('a', 'b');
      await u.createMailbox('a');
      const a2 = await u.status('a');
      expect(a2.uidValidity).not.toBe(a.uidValidity);
      expect((await u.status('b')).uidValidity).toBe(a.uidValidity);
    });

    it('renaming INBOX moves its messages and leaves INBOX empty', async () => {
      await u.createMailbox('INBOX/kid');
      const uids = await fill('INBOX', 3, ['\\Flagged']);
      const inboxBefore = await u.status('INBOX');
      const h = await u.open('INBOX');
      await u.renameMailbox('INBOX', 'Old Mail');
      const names = sorted((await u.listMailboxes()).map((b) => b.name));
      expect(names).toEqual(['INBOX', 'INBOX/kid', 'Old Mail']);
      const inbox = await u.status('INBOX');
      expect(inbox.messages).toBe(0);
      expect(inbox.uidValidity).toBe(inboxBefore.uidValidity);
      expect(inbox.uidNext).toBe(inboxBefore.uidNext);
      expect(inbox.highestModSeq).toBeGreaterThan(inboxBefore.highestModSeq);
      const old = await u.status('Old Mail');
      expect(old.messages).toBe(3);
      const moved = await (await u.open('Old Mail')).list();
      expect(moved.every((m) => m.flags.includes('\\Flagged'))).toBe(true);
      // A session that had INBOX open learns the messages are gone.
      const ch = await h.changesSince(inboxBefore.highestModSeq);
      expect(ch.expunged).toEqual(uids);
      // New mail in INBOX does not reuse UIDs.
      const [next] = await fill('INBOX', 1);
      expect(next).toBeGreaterThan(uids[2]!);
    });

    it('subscriptions need not name existing mailboxes and follow renames', async () => {
      await u.createMailbox('news');
      await u.setSubscribed('news', true);
      await u.setSubscribed('ghost', true);
      let boxes = await u.listMailboxes();
      expect(boxes.find((b) => b.name === 'news')!.subscribed).toBe(true);
      expect(boxes.find((b) => b.name === 'INBOX')!.subscribed).toBe(false);
      expect(boxes.some((b) => b.name === 'ghost')).toBe(false);
      await u.renameMailbox('news', 'olds');
      boxes = await u.listMailboxes();
      expect(boxes.find((b) => b.name === 'olds')!.subscribed).toBe(true);
      await u.setSubscribed('olds', false);
      boxes = await u.listMailboxes();
      expect(boxes.find((b) => b.name === 'olds')!.subscribed).toBe(false);
      // Deleting a mailbox does not drop its subscription (RFC 3501 6.3.6).
      await u.createMailbox('ghost');
      expect((await u.listMailboxes()).find((b) => b.name === 'ghost')!.subscribed).toBe(true);
      await expectStoreError(u.setSubscribed('bad//name', true), 'CANNOT');
    });

    it('users are separate', async () => {
      const bob = await store.openUser('bob');
      await u.createMailbox('alice-only');
      await fill('INBOX', 2);
      expect((await bob.listMailboxes()).map((b) => b.name)).toEqual(['INBOX']);
      expect((await bob.status('INBOX')).messages).toBe(0);
      expect((await bob.quota()).messagesUsed).toBe(0);
    });
  });

  describe('append and read', () => {
    it('append returns APPENDUID data and stores bytes, flags and dates', async () => {
      const date = new Date('2020-02-03T04:05:06Z');
      const r = await u.append('INBOX', [
        { data: msg(1), flags: ['\\Seen', 'custom'], internalDate: date },
        { data: msg(2, 'longer') },
      ]);
      const st = await u.status('INBOX');
      expect(r.uidValidity).toBe(st.uidValidity);
      expect(r.sourceUids).toEqual([]);
      expect(r.destUids).toEqual([1, 2]);
      expect(st.uidNext).toBe(3);
      const h = await u.open('INBOX');
      const list = await h.list();
      expect(list.map((m) => m.uid)).toEqual([1, 2]);
      expect(sorted(list[0]!.flags)).toEqual(['\\Seen', 'custom']);
      expect(list[0]!.internalDate.getTime()).toBe(date.getTime());
      expect(list[0]!.size).toBe(msg(1).length);
      expect(list[1]!.flags).toEqual([]);
      expect(list[1]!.size).toBe(msg(2, 'longer').length);
      expect((await h.read(1))!.equals(msg(1))).toBe(true);
      expect((await h.read(2))!.equals(msg(2, 'longer'))).toBe(true);
      expect(await h.read(99)).toBeNull();
    });

    it('default internal date and save date are set', async () => {
      const before = Date.now();
      await fill('INBOX', 1);
      const after = Date.now();
      const [m] = await (await u.open('INBOX')).list();
      expect(m!.internalDate.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(m!.internalDate.getTime()).toBeLessThanOrEqual(after + 1000);
      expect(m!.saveDate.getTime()).toBeGreaterThanOrEqual(before - 1000);
    });

    it('an empty message can be appended', async () => {
      const r = await u.append('INBOX', [{ data: Buffer.alloc(0) }]);
      const h = await u.open('INBOX');
      const [m] = await h.get(r.destUids);
      expect(m!.size).toBe(0);
      const data = await h.read(r.destUids[0]!);
      expect(data).not.toBeNull();
      expect(data!.length).toBe(0);
    });

    it('binary and 8-bit content round-trips exactly', async () => {
      const data = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
      const r = await u.append('INBOX', [{ data }]);
      expect((await (await u.open('INBOX')).read(r.destUids[0]!))!.equals(data)).toBe(true);
    });

    it('append of several messages is all or none', async () => {
      await fill('INBOX', 1);
      const st = await u.status('INBOX');
      await expect(u.append('INBOX', [{ data: msg(2) }, { data: msg(3), flags: ['bad flag'] }])).rejects.toBeInstanceOf(StoreError);
      await expectStoreError(u.append('missing', [{ data: msg(2) }, { data: msg(3) }]), 'NONEXISTENT');
      const after = await u.status('INBOX');
      expect(after.messages).toBe(1);
      expect(after.uidNext).toBe(st.uidNext);
      expect(after.highestModSeq).toBe(st.highestModSeq);
    });

    it('append of nothing changes nothing', async () => {
      const st = await u.status('INBOX');
      const r = await u.append('INBOX', []);
      expect(r.destUids).toEqual([]);
      expect(await u.status('INBOX')).toEqual(st);
    });

    it('system flags are stored canonically and \\Recent is ignored', async () => {
      await u.append('INBOX', [{ data: msg(1), flags: ['\\SEEN', '\\answered', '\\Recent', '\\seen', '\\DrAfT'] }]);
      const [m] = await (await u.open('INBOX')).list();
      expect(sorted(m!.flags)).toEqual(['\\Answered', '\\Draft', '\\Seen']);
    });

    it('keywords keep their case and are deduplicated case-insensitively', async () => {
      await u.append('INBOX', [{ data: msg(1), flags: ['$Forwarded', '$FORWARDED', 'MyTag'] }]);
      const [m] = await (await u.open('INBOX')).list();
      expect(sorted(m!.flags)).toEqual(['$Forwarded', 'MyTag']);
    });

    it('get returns only existing UIDs, ascending, without duplicates', async () => {
      await fill('INBOX', 5);
      const h = await u.open('INBOX');
      const got = await h.get([4, 2, 99, 2, 0]);
      expect(got.map((m) => m.uid)).toEqual([2, 4]);
      expect(await h.get([])).toEqual([]);
    });

    it('email ids are distinct per append and thread ids are present', async () => {
      await u.append('INBOX', [{ data: msg(1) }, { data: msg(1) }]);
      const list = await (await u.open('INBOX')).list();
      expect(list[0]!.emailId).not.toBe(list[1]!.emailId);
      for (const m of list) {
        expect(m.emailId).toMatch(/^[A-Za-z0-9_-]{1,255}$/);
        expect(m.threadId).toMatch(/^[A-Za-z0-9_-]{1,255}$/);
      }
    });

    it('UIDs are never reused after expunge', async () => {
      await fill('INBOX', 3, ['\\Deleted']);
      const h = await u.open('INBOX');
      expect(await h.expunge(undefined)).toEqual([1, 2, 3]);
      const [uid] = await fill('INBOX', 1);
      expect(uid).toBe(4);
      expect((await u.status('INBOX')).uidNext).toBe(5);
    });

    it('concurrent appends from several sessions get distinct ascending UIDs', async () => {
      const sessions = await Promise.all(Array.from({ length: 8 }, () => store.openUser('alice')));
      const results = await Promise.all(
        sessions.flatMap((s, i) => Array.from({ length: 5 }, (_, j) => s.append('INBOX', [{ data: msg(`${i}-${j}`) }, { data: msg(`${i}-${j}b`) }]))),
      );
      const all = results.flatMap((r) => r.destUids);
      expect(all.length).toBe(80);
      expect(new Set(all).size).toBe(80);
      for (const r of results) expect(r.destUids[1]).toBeGreaterThan(r.destUids[0]!);
      const list = await (await u.open('INBOX')).list();
      expect(list.map((m) => m.uid)).toEqual([...all].sort((a, b) => a - b));
      expect((await u.status('INBOX')).uidNext).toBeGreaterThan(Math.max(...all));
    });
  });

  describe('flags', () => {
    let uids: number[];
    beforeEach(async () => {
      uids = await fill('INBOX', 4);
    });

    it('add, remove and set', async () => {
      const h = await u.open('INBOX');
      let r = await h.updateFlags(uids, { action: 'add', flags: ['\\Seen', 'Work'] });
      expect(r.updated.map((m) => m.uid)).toEqual(uids);
      expect(r.modified).toEqual([]);
      r = await h.updateFlags([uids[0]!], { action: 'remove', flags: ['Work'] });
      expect(r.updated.map((m) => m.flags)).toEqual([['\\Seen']]);
      r = await h.updateFlags([uids[1]!], { action: 'set', flags: ['\\Flagged', 'Other'] });
      expect(sorted(r.updated[0]!.flags)).toEqual(['Other', '\\Flagged']);
      const list = await h.list();
      expect(list.map((m) => sorted(m.flags))).toEqual([['\\Seen'], ['Other', '\\Flagged'], ['Work', '\\Seen'], ['Work', '\\Seen']]);
    });

    it('system flags match case-insensitively', async () => {
      const h = await u.open('INBOX');
      await h.updateFlags([uids[0]!], { action: 'add', flags: ['\\SEEN', '\\flagged'] });
      let [m] = await h.get([uids[0]!]);
      expect(sorted(m!.flags)).toEqual(['\\Flagged', '\\Seen']);
      await h.updateFlags([uids[0]!], { action: 'remove', flags: ['\\seen'] });
      [m] = await h.get([uids[0]!]);
      expect(m!.flags).toEqual(['\\Flagged']);
    });

    it('keywords keep their first spelling and match case-insensitively', async () => {
      const h = await u.open('INBOX');
      await h.updateFlags([uids[0]!], { action: 'add', flags: ['$Junk'] });
      const again = await h.updateFlags([uids[0]!], { action: 'add', flags: ['$JUNK'] });
      expect(again.updated).toEqual([]);
      let [m] = await h.get([uids[0]!]);
      expect(m!.flags).toEqual(['$Junk']);
      const set = await h.updateFlags([uids[0]!], { action: 'set', flags: ['$junk'] });
      expect(set.updated).toEqual([]);
      await h.updateFlags([uids[0]!], { action: 'remove', flags: ['$jUnK'] });
      [m] = await h.get([uids[0]!]);
      expect(m!.flags).toEqual([]);
    });

    it('\\Recent cannot be stored', async () => {
      const h = await u.open('INBOX');
      const r = await h.updateFlags([uids[0]!], { action: 'add', flags: ['\\Recent'] });
      expect(r.updated).toEqual([]);
      const [m] = await h.get([uids[0]!]);
      expect(m!.flags).toEqual([]);
    });

    it('an invalid keyword is refused with CANNOT', async () => {
      const h = await u.open('INBOX');
      await expectStoreError(h.updateFlags([uids[0]!], { action: 'add', flags: ['two words'] }), 'CANNOT');
      await expectStoreError(h.updateFlags([uids[0]!], { action: 'add', flags: [''] }), 'CANNOT');
      const [m] = await h.get([uids[0]!]);
      expect(m!.flags).toEqual([]);
    });

    it('a change gets a new MODSEQ; no change keeps it', async () => {
      const h = await u.open('INBOX');
      const st0 = await h.status();
      const r = await h.updateFlags([uids[0]!, uids[1]!], { action: 'add', flags: ['\\Seen'] });
      const st1 = await h.status();
      expect(st1.highestModSeq).toBeGreaterThan(st0.highestModSeq);
      for (const m of r.updated) expect(m.modSeq).toBe(st1.highestModSeq);
      const none = await h.updateFlags([uids[0]!, uids[1]!], { action: 'add', flags: ['\\Seen'] });
      expect(none.updated).toEqual([]);
      expect((await h.status()).highestModSeq).toBe(st1.highestModSeq);
      const none2 = await h.updateFlags([uids[2]!], { action: 'remove', flags: ['\\Seen'] });
      expect(none2.updated).toEqual([]);
      expect((await h.status()).highestModSeq).toBe(st1.highestModSeq);
    });

    it('UNCHANGEDSINCE refuses messages changed after the given MODSEQ', async () => {
      const h = await u.open('INBOX');
      const base = (await h.status()).highestModSeq;
      await h.updateFlags([uids[1]!], { action: 'add', flags: ['\\Answered'] });
      const r = await h.updateFlags(uids, { action: 'add', flags: ['\\Flagged'], unchangedSince: base });
      expect(r.modified).toEqual([uids[1]]);
      expect(r.updated.map((m) => m.uid)).toEqual([uids[0], uids[2], uids[3]]);
      const [m1] = await h.get([uids[1]!]);
      expect(m1!.flags).toEqual(['\\Answered']);
      const zero = await h.updateFlags([uids[0]!], { action: 'add', flags: ['x'], unchangedSince: 0n });
      expect(zero.modified).toEqual([uids[0]]);
      expect(zero.updated).toEqual([]);
    });

    it('updateFlags skips expunged and unknown UIDs', async () => {
      const h = await u.open('INBOX');
      await h.updateFlags([uids[0]!], { action: 'add', flags: ['\\Deleted'] });
      await h.expunge(undefined);
      const r = await h.updateFlags([uids[0]!, 999, uids[1]!], { action: 'add', flags: ['\\Seen'] });
      expect(r.updated.map((m) => m.uid)).toEqual([uids[1]]);
      expect(r.modified).toEqual([]);
    });

    it('MODSEQ strictly increases over appends, flag changes and expunges', async () => {
      const h = await u.open('INBOX');
      const seen: bigint[] = [(await h.status()).highestModSeq];
      const step = async (): Promise<void> => {
        const now = (await h.status()).highestModSeq;
        expect(now).toBeGreaterThan(seen[seen.length - 1]!);
        seen.push(now);
        for (const m of await h.list()) expect(m.modSeq).toBeLessThanOrEqual(now);
      };
      await fill('INBOX', 1);
      await step();
      await h.updateFlags([uids[0]!], { action: 'add', flags: ['\\Deleted'] });
      await step();
      await h.expunge(undefined);
      await step();
      await u.append('INBOX', [{ data: msg('x') }]);
      await step();
      await h.copy([uids[1]!], 'INBOX');
      await step();
    });

    it('each message MODSEQ is at most HIGHESTMODSEQ and appended messages carry the new one', async () => {
      const h = await u.open('INBOX');
      const before = (await h.status()).highestModSeq;
      const r = await u.append('INBOX', [{ data: msg(9) }]);
      const [m] = await h.get(r.destUids);
      const st = await h.status();
      expect(m!.modSeq).toBeGreaterThan(before);
      expect(m!.modSeq).toBe(st.highestModSeq);
    });
  });

  describe('expunge', () => {
    it('expunge(undefined) removes every \\Deleted message', async () => {
      await fill('INBOX', 5);
      const h = await u.open('INBOX');
      await h.updateFlags([2, 4, 5], { action: 'add', flags: ['\\Deleted'] });
      expect(await h.expunge(undefined)).toEqual([2, 4, 5]);
      expect((await h.list()).map((m) => m.uid)).toEqual([1, 3]);
      expect(await h.read(2)).toBeNull();
      expect(await h.get([2, 3])).toHaveLength(1);
    });

    it('expunge(uids) removes only the given \\Deleted ones', async () => {
      await fill('INBOX', 5);
      const h = await u.open('INBOX');
      await h.updateFlags([1, 2, 3], { action: 'add', flags: ['\\Deleted'] });
      expect(await h.expunge([2, 3, 4, 77])).toEqual([2, 3]);
      expect((await h.list()).map((m) => m.uid)).toEqual([1, 4, 5]);
    });

    it('an expunge that removes nothing does not bump MODSEQ', async () => {
      await fill('INBOX', 2);
      const h = await u.open('INBOX');
      const st = await h.status();
      expect(await h.expunge(undefined)).toEqual([]);
      expect(await h.expunge([1])).toEqual([]);
      expect((await h.status()).highestModSeq).toBe(st.highestModSeq);
    });
  });

  describe('copy and move', () => {
    beforeEach(async () => {
      await u.createMailbox('Archive');
    });

    it('copy keeps flags, internal date and email id; gives new UIDs and a COPYUID mapping', async () => {
      const date = new Date('2019-01-01T00:00:00Z');
      await u.append('INBOX', [
        { data: msg(1), flags: ['\\Seen', 'Tag'], internalDate: date },
        { data: msg(2) },
        { data: msg(3), flags: ['\\Answered'] },
      ]);
      await fill('Archive', 2);
      const h = await u.open('INBOX');
      const src = await h.list();
      const r = await h.copy([3, 1, 42], 'Archive');
      const archive = await u.status('Archive');
      expect(r.uidValidity).toBe(archive.uidValidity);
      expect(r.sourceUids).toEqual([1, 3]);
      expect(r.destUids).toEqual([3, 4]);
      const a = await u.open('Archive');
      const copies = await a.get(r.destUids);
      expect(sorted(copies[0]!.flags)).toEqual(['Tag', '\\Seen']);
      expect(copies[0]!.internalDate.getTime()).toBe(date.getTime());
      expect(copies[0]!.emailId).toBe(src[0]!.emailId);
      expect(copies[1]!.emailId).toBe(src[2]!.emailId);
      expect(copies[0]!.saveDate.getTime()).toBeGreaterThanOrEqual(src[0]!.saveDate.getTime());
      expect((await a.read(3))!.equals(msg(1))).toBe(true);
      expect((await h.list()).length).toBe(3);
      expect((await u.quota()).messagesUsed).toBe(7);
    });

    it('copy to a missing mailbox raises NONEXISTENT and changes nothing', async () => {
      await fill('INBOX', 2);
      const h = await u.open('INBOX');
      const st = await h.status();
      await expectStoreError(h.copy([1], 'Nowhere'), 'NONEXISTENT');
      await expectStoreError(h.move([1], 'Nowhere'), 'NONEXISTENT');
      expect(await h.status()).toEqual(st);
    });

    it('copy of no existing messages returns an empty mapping', async () => {
      const h = await u.open('INBOX');
      const st = await u.status('Archive');
      const r = await h.copy([5, 6], 'Archive');
      expect(r).toEqual({ uidValidity: st.uidValidity, sourceUids: [], destUids: [] });
      expect((await u.status('Archive')).highestModSeq).toBe(st.highestModSeq);
    });

    it('copy into the same mailbox adds new messages', async () => {
      await fill('INBOX', 2);
      const h = await u.open('INBOX');
      const r = await h.copy([1, 2], 'inbox');
      expect(r.destUids).toEqual([3, 4]);
      expect((await h.list()).length).toBe(4);
    });

    it('a copy survives the expunge of its original', async () => {
      await fill('INBOX', 1, ['\\Deleted']);
      const h = await u.open('INBOX');
      const r = await h.copy([1], 'Archive');
      await h.expunge(undefined);
      const a = await u.open('Archive');
      expect((await a.read(r.destUids[0]!))!.equals(msg(0))).toBe(true);
    });

    it('move removes from the source with tombstones', async () => {
      await fill('INBOX', 3, ['\\Seen']);
      const h = await u.open('INBOX');
      const before = (await h.status()).highestModSeq;
      const list = await h.list();
      const r = await h.move([1, 3], 'Archive');
      expect(r.sourceUids).toEqual([1, 3]);
      expect(r.destUids).toEqual([1, 2]);
      expect((await h.list()).map((m) => m.uid)).toEqual([2]);
      const ch = await h.changesSince(before);
      expect(ch.expunged).toEqual([1, 3]);
      expect(ch.highestModSeq).toBeGreaterThan(before);
      const moved = await (await u.open('Archive')).list();
      expect(moved.map((m) => m.emailId)).toEqual([list[0]!.emailId, list[2]!.emailId]);
      expect(moved.every((m) => m.flags.includes('\\Seen'))).toBe(true);
      expect((await u.quota()).messagesUsed).toBe(3);
    });
  });

  describe('changesSince', () => {
    it('reports changed and expunged messages since a MODSEQ', async () => {
      await fill('INBOX', 4);
      const h = await u.open('INBOX');
      const mark = (await h.status()).highestModSeq;
      expect(await h.changesSince(mark)).toEqual({ changed: [], expunged: [], highestModSeq: mark });
      await h.updateFlags([2], { action: 'add', flags: ['\\Seen'] });
      await h.updateFlags([3], { action: 'add', flags: ['\\Deleted'] });
      await h.expunge(undefined);
      await fill('INBOX', 1);
      const ch = await h.changesSince(mark);
      expect(ch.changed.map((m) => m.uid)).toEqual([2, 5]);
      expect(ch.expunged).toEqual([3]);
      expect(ch.highestModSeq).toBe((await h.status()).highestModSeq);
      const all = await h.changesSince(0n);
      expect(all.changed.map((m) => m.uid)).toEqual([1, 2, 4, 5]);
      expect(all.expunged).toEqual([3]);
      const later = await h.changesSince(ch.highestModSeq);
      expect(later.changed).toEqual([]);
      expect(later.expunged).toEqual([]);
    });

    it('changed entries carry the current flags and MODSEQ', async () => {
      await fill('INBOX', 2);
      const h = await u.open('INBOX');
      const mark = (await h.status()).highestModSeq;
      const r = await h.updateFlags([1], { action: 'add', flags: ['\\Flagged'] });
      const ch = await h.changesSince(mark);
      expect(ch.changed).toHaveLength(1);
      expect(ch.changed[0]).toEqual(r.updated[0]);
    });
  });

  describe('status and quota', () => {
    it('counts messages, unseen, deleted and size', async () => {
      await u.append('INBOX', [
        { data: msg(1), flags: ['\\Seen'] },
        { data: msg(2), flags: ['\\Deleted'] },
        { data: msg(3), flags: ['\\Seen', '\\Deleted'] },
        { data: msg(4) },
      ]);
      const st = await u.status('INBOX');
      expect(st).toMatchObject({ messages: 4, unseen: 2, deleted: 2, recent: 0, uidNext: 5 });
      expect(st.size).toBe([1, 2, 3, 4].reduce((n, i) => n + msg(i).length, 0));
      const h = await u.open('INBOX');
      expect(await h.status()).toEqual(st);
    });

    it('quota counts KiB rounded up and messages over all mailboxes', async () => {
      let q = await u.quota();
      expect(q).toMatchObject({ root: '', storageUsedKiB: 0, messagesUsed: 0 });
      await u.createMailbox('Other');
      await u.append('INBOX', [{ data: Buffer.alloc(1) }]);
      q = await u.quota();
      expect(q.storageUsedKiB).toBe(1);
      await u.append('Other', [{ data: Buffer.alloc(1024) }, { data: Buffer.alloc(1023) }]);
      q = await u.quota();
      expect(q.storageUsedKiB).toBe(2);
      await u.append('Other', [{ data: Buffer.alloc(1) }]);
      q = await u.quota();
      expect(q.storageUsedKiB).toBe(3);
      expect(q.messagesUsed).toBe(4);
    });
  });

  describe('handles and sharing', () => {
    it('a second session sees changes made by the first', async () => {
      const other = await store.openUser('alice');
      const h1 = await u.open('INBOX');
      const h2 = await other.open('INBOX');
      await other.append('INBOX', [{ data: msg(1) }]);
      expect((await h1.list()).map((m) => m.uid)).toEqual([1]);
      await h1.updateFlags([1], { action: 'add', flags: ['\\Seen'] });
      const [m] = await h2.get([1]);
      expect(m!.flags).toEqual(['\\Seen']);
      await other.createMailbox('Shared');
      expect((await u.listMailboxes()).map((b) => b.name)).toContain('Shared');
    });

    it('a handle on a deleted mailbox raises NONEXISTENT', async () => {
      await u.createMailbox('gone');
      const h = await u.open('gone');
      await u.deleteMailbox('gone');
      await expectStoreError(h.list(), 'NONEXISTENT');
      await expectStoreError(h.status(), 'NONEXISTENT');
      await expectStoreError(h.updateFlags([1], { action: 'add', flags: ['\\Seen'] }), 'NONEXISTENT');
      await u.createMailbox('gone');
      // A re-created mailbox is a different one: the old handle still refuses.
      await expectStoreError(h.list(), 'NONEXISTENT');
    });

    it('a handle follows a rename', async () => {
      await u.createMailbox('before');
      const h = await u.open('before');
      await u.renameMailbox('before', 'after');
      await u.append('after', [{ data: msg(1) }]);
      expect((await h.list()).length).toBe(1);
      expect(h.name).toBe('after');
      await h.close();
    });

    it('list returns every message ascending by UID', async () => {
      await fill('INBOX', 30);
      const h = await u.open('INBOX');
      await h.updateFlags([5, 6, 7], { action: 'add', flags: ['\\Deleted'] });
      await h.expunge(undefined);
      const list: MessageMeta[] = await h.list();
      expect(list).toHaveLength(27);
      for (let i = 1; i < list.length; i++) expect(list[i]!.uid).toBeGreaterThan(list[i - 1]!.uid);
    });
  });

  describe('watch', () => {
    it('reports append, flags, expunge and mailbox changes with origin', async () => {
      const other = await store.openUser('alice');
      const events: ChangeEvent[] = [];
      const stop = other.watch((e) => events.push(e));
      await u.append('INBOX', [{ data: msg(1) }], 'session-1');
      const h = await u.open('INBOX');
      await h.updateFlags([1], { action: 'add', flags: ['\\Deleted'] }, 'session-2');
      await h.expunge(undefined, 'session-3');
      await u.createMailbox('New');
      const modSeq = (await u.status('INBOX')).highestModSeq;
      expect(events.map((e) => [e.mailbox, e.kind, e.origin])).toEqual([
        ['INBOX', 'append', 'session-1'],
        ['INBOX', 'flags', 'session-2'],
        ['INBOX', 'expunge', 'session-3'],
        ['New', 'mailboxes', undefined],
      ]);
      expect(events[2]!.modSeq).toBe(modSeq);
      expect(events[0]!.modSeq).toBeLessThan(events[1]!.modSeq);
      stop();
      await u.append('INBOX', [{ data: msg(2) }]);
      expect(events).toHaveLength(4);
    });

    it('reports copy and move to both mailboxes', async () => {
      await u.createMailbox('Dest');
      await fill('INBOX', 2);
      const events: ChangeEvent[] = [];
      u.watch((e) => events.push(e));
      const h = await u.open('INBOX');
      await h.copy([1], 'Dest', 's');
      await h.move([2], 'Dest', 's');
      expect(events.map((e) => [e.mailbox, e.kind, e.origin])).toEqual([
        ['Dest', 'append', 's'],
        ['Dest', 'append', 's'],
        ['INBOX', 'expunge', 's'],
      ]);
    });

    it('reports mailbox creation, rename, deletion and subscription as mailboxes events', async () => {
      const events: ChangeEvent[] = [];
      u.watch((e) => events.push(e));
      await u.createMailbox('one');
      await u.renameMailbox('one', 'two');
      await u.setSubscribed('two', true);
      await u.deleteMailbox('two');
      expect(events.map((e) => [e.kind, e.mailbox])).toEqual([
        ['mailboxes', 'one'],
        ['mailboxes', 'two'],
        ['mailboxes', 'two'],
        ['mailboxes', 'two'],
      ]);
    });

    it('a listener sees a move only once it is complete', async () => {
      await u.createMailbox('Dest');
      await fill('INBOX', 2);
      const h = await u.open('INBOX');
      const seen: Array<Promise<MessageMeta[]>> = [];
      // A listener that looks right away (the work of the call starts synchronously).
      u.watch((e) => {
        if (e.kind === 'append') seen.push(h.list());
      });
      await h.move([1], 'Dest');
      expect(seen).toHaveLength(1);
      expect((await seen[0]!).map((m) => m.uid)).toEqual([2]);
    });

    it('does not report no-op changes or other users', async () => {
      await fill('INBOX', 1);
      const events: ChangeEvent[] = [];
      u.watch((e) => events.push(e));
      const bob = await store.openUser('bob');
      await bob.append('INBOX', [{ data: msg(1) }]);
      const h = await u.open('INBOX');
      await h.updateFlags([1], { action: 'remove', flags: ['\\Seen'] });
      await h.expunge(undefined);
      expect(events).toEqual([]);
    });

    it('a throwing listener does not break the store or other listeners', async () => {
      const events: ChangeEvent[] = [];
      u.watch(() => {
        throw new Error('listener bug');
      });
      u.watch((e) => events.push(e));
      const r = await u.append('INBOX', [{ data: msg(1) }]);
      expect(r.destUids).toEqual([1]);
      expect(events).toHaveLength(1);
    });

    it('closing a user store drops its listeners', async () => {
      const other = await store.openUser('alice');
      const events: ChangeEvent[] = [];
      other.watch((e) => events.push(e));
      await other.close();
      await u.append('INBOX', [{ data: msg(1) }]);
      expect(events).toEqual([]);
    });
  });

  // Optional capability: a backend without MailboxHandle.structures passes by declaring nothing.
  describe('readPrefix (optional)', () => {
    it('gives a prefix of read(), whole only when it is all of it, null once expunged', async () => {
      const h = await u.open('INBOX');
      if (typeof h.readPrefix !== 'function') return;
      const data = [msg(1), msg(2, 'x'.repeat(20_000)), Buffer.from('Subject: lf only\n\nbody\n'), Buffer.alloc(0)];
      const { destUids } = await u.append('INBOX', data.map((d) => ({ data: d })));
      for (const uid of destUids) {
        const full = (await h.read(uid))!;
        for (const want of [1, 10, 100, 8192, full.length - 1, full.length, full.length + 1]) {
          if (want < 1) continue;
          const got = (await h.readPrefix(uid, want))!;
          expect(got.data.length).toBeGreaterThanOrEqual(Math.min(want, full.length));
          expect(got.data.equals(full.subarray(0, got.data.length))).toBe(true);
          expect(got.whole).toBe(got.data.length === full.length);
        }
      }
      await h.updateFlags([destUids[0]!], { action: 'add', flags: ['\\Deleted'] });
      await h.expunge([destUids[0]!]);
      expect(await h.readPrefix(destUids[0]!, 10)).toBeNull();
      await h.close();
    });
  });

  describe('structures (optional server cache entries)', () => {
    /** Opaque bytes, deliberately not UTF-8 and holding NUL: the store must not interpret them. */
    const entry = (n: number): Buffer => Buffer.concat([Buffer.from([0, 0xff, 0xfe, n]), Buffer.from(`entry ${n}`)]);

    /** INBOX opened, or undefined when the backend lacks the capability (after checking it declares none of it). */
    async function capable(): Promise<MailboxHandle | undefined> {
      const h = await u.open('INBOX');
      if (typeof h.structures !== 'function') {
        expect(u.keepsStructures ?? false).toBe(false);
        expect(h.saveStructures).toBeUndefined();
        return undefined;
      }
      expect(u.keepsStructures).toBe(true);
      expect(typeof h.saveStructures).toBe('function');
      return h;
    }

    it('APPEND keeps NewMessage.structure; structures() returns the same bytes by UID', async () => {
      const h = await capable();
      if (!h) return;
      const r = await u.append('INBOX', [
        { data: msg(1), structure: entry(1) },
        { data: msg(2) },
        { data: msg(3), structure: entry(3) },
      ]);
      const [a, b, c] = r.destUids;
      const got = await h.structures!([c, a, b, 999]);
      expect([...got.keys()].sort((x, y) => x - y)).toEqual([a, c]);
      expect(got.get(a)).toEqual(entry(1));
      expect(got.get(c)).toEqual(entry(3));
      expect((await h.structures!([])).size).toBe(0);
    });

    it('COPY and MOVE carry the entry along; EXPUNGE drops it', async () => {
      const h = await capable();
      if (!h) return;
      await u.createMailbox('Archive');
      await u.createMailbox('Other');
      const r = await u.append('INBOX', [
        { data: msg(1), structure: entry(1) },
        { data: msg(2), structure: entry(2) },
      ]);
      const copied = await h.copy(r.destUids, 'Archive');
      const moved = await h.move([r.destUids[1]], 'Other');
      const archive = await u.open('Archive');
      const other = await u.open('Other');
      const inArchive = await archive.structures!(copied.destUids);
      expect(inArchive.get(copied.destUids[0])).toEqual(entry(1));
      expect(inArchive.get(copied.destUids[1])).toEqual(entry(2));
      expect((await other.structures!(moved.destUids)).get(moved.destUids[0])).toEqual(entry(2));
      expect([...(await h.structures!(r.destUids)).keys()]).toEqual([r.destUids[0]]);
      await archive.updateFlags([copied.destUids[0]], { action: 'add', flags: ['\\Deleted'] });
      await archive.expunge(undefined);
      expect([...(await archive.structures!(copied.destUids)).keys()]).toEqual([copied.destUids[1]]);
      // The copy in INBOX is untouched by the expunge of the other one.
      expect((await h.structures!([r.destUids[0]])).get(r.destUids[0])).toEqual(entry(1));
    });

    it('saveStructures fills in and replaces entries, skips UIDs that are gone, and changes no MODSEQ', async () => {
      const h = await capable();
      if (!h) return;
      const r = await u.append('INBOX', [{ data: msg(1) }, { data: msg(2), structure: entry(2) }]);
      const [a, b] = r.destUids;
      const before = await h.status();
      await h.saveStructures!(
        new Map([
          [a, entry(10)],
          [b, entry(20)],
          [777, entry(7)],
        ]),
      );
      const got = await h.structures!([a, b, 777]);
      expect(got.get(a)).toEqual(entry(10));
      expect(got.get(b)).toEqual(entry(20));
      expect(got.has(777)).toBe(false);
      const after = await h.status();
      expect(after.highestModSeq).toBe(before.highestModSeq);
      expect((await h.changesSince(before.highestModSeq)).changed).toEqual([]);
      await h.saveStructures!(new Map());
    });

    it('entries are seen by other handles and survive for the life of the message', async () => {
      const h = await capable();
      if (!h) return;
      const big = Buffer.alloc(64 * 1024, 0xab);
      const r = await u.append('INBOX', [{ data: msg(1), structure: big }]);
      const again = await (await store.openUser('alice')).open('INBOX');
      expect((await again.structures!(r.destUids)).get(r.destUids[0])).toEqual(big);
      // Flag changes leave the entry alone.
      await h.updateFlags(r.destUids, { action: 'add', flags: ['\\Seen'] });
      expect((await h.structures!(r.destUids)).get(r.destUids[0])).toEqual(big);
    });
  });
});
