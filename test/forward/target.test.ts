import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ForwardTarget, isPerMessageRefusal } from '../../src/forward/target.js';
import { RepositoryError, type AppendItem, type AppendResult, type Repository } from '../../src/sync/repository.js';

/** An inner target that records APPENDs and refuses what `refuse` says. */
function fakeTarget(refuse: (it: AppendItem) => Error | null): { repo: Repository; appended: string[] } {
  const appended: string[] = [];
  let uid = 100;
  const repo = {
    label: 'fake',
    append: async (_folder: string, items: AppendItem[]): Promise<AppendResult> => {
      expect(items).toHaveLength(1);
      const err = refuse(items[0]!);
      if (err) throw err;
      appended.push(items[0]!.data.toString());
      return { uidValidity: 7, uids: [++uid] };
    },
  } as unknown as Repository;
  return { repo, appended };
}

const msg = (id: string | null, body = 'b'): AppendItem => ({ data: Buffer.from(`${id ? `Message-ID: <${id}>\r\n` : ''}Subject: s\r\n\r\n${body}\r\n`), flags: [] });
const limit = (): Error => new RepositoryError('full', 'fake: cannot append: server says LIMIT', Object.assign(new Error('NO'), { serverResponseCode: 'LIMIT', responseStatus: 'NO' }));

describe('ForwardTarget', () => {
  it('appends one by one, and a per-message refusal gives a null UID while the rest go on', async () => {
    const { repo, appended } = fakeTarget((it) => (it.data.includes('big') ? limit() : null));
    const t = new ForwardTarget(repo, pino({ level: 'silent' }));
    const r = await t.append('INBOX', [msg('a@x'), msg('big@x', 'big'), msg('c@x')]);
    expect(r.uids).toEqual([101, null, 102]);
    expect(r.uidValidity).toBe(7);
    expect(appended).toHaveLength(2);
    const refusals = t.takeRefusals();
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ messageId: '<big@x>', reason: expect.stringMatching(/LIMIT/) });
    expect(t.takeRefusals()).toEqual([]);
  });

  it('appends a Message-ID delivered twice in one batch once, both getting its UID', async () => {
    const { repo, appended } = fakeTarget(() => null);
    const t = new ForwardTarget(repo, pino({ level: 'silent' }));
    const r = await t.append('INBOX', [msg('dup@x'), msg('other@x'), msg('dup@x'), msg(null, 'same'), msg(null, 'same')]);
    expect(r.uids).toEqual([101, 102, 101, 103, 103]);
    expect(appended).toHaveLength(3);
  });

  it('lets account-wide failures through: quota full, lost connection, login', async () => {
    for (const err of [
      new RepositoryError('full', 'over quota', Object.assign(new Error('NO'), { serverResponseCode: 'OVERQUOTA', responseStatus: 'NO' })),
      new RepositoryError('connect', 'connection closed'),
      new RepositoryError('auth', 'login failed'),
    ]) {
      const t = new ForwardTarget(fakeTarget(() => err).repo, pino({ level: 'silent' }));
      await expect(t.append('INBOX', [msg('a@x')])).rejects.toBe(err);
    }
  });

  it('classifies refusals', () => {
    expect(isPerMessageRefusal(new RepositoryError('toobig', 'too big'))).toBe(true);
    expect(isPerMessageRefusal(limit())).toBe(true);
    expect(isPerMessageRefusal(new RepositoryError('protocol', 'x', Object.assign(new Error('NO'), { responseStatus: 'NO' })))).toBe(true);
    expect(isPerMessageRefusal(new RepositoryError('protocol', 'x', Object.assign(new Error('BAD'), { responseStatus: 'BAD', serverResponseCode: 'SERVERBUG' })))).toBe(false);
    expect(isPerMessageRefusal(new RepositoryError('nonexistent', 'no such folder'))).toBe(false);
    expect(isPerMessageRefusal(new Error('plain'))).toBe(false);
  });
});
