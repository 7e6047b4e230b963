/**
 * The maildir store's LF -> CRLF conversion and MailboxHandle.readPrefix: a prefix must always be
 * a prefix of what read() serves (files without a CR are converted, any other file is served as
 * stored), whatever the cut: between CR and LF, on a LF, past the end, past a CR far in the file.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MailboxHandle, UserMailStore } from '../../src/store/contract.js';
import { MaildirStore } from '../../src/store/maildir/store.js';
import { crlfSize, parseName, servedBytes, toCrlf, vsizeOf } from '../../src/store/maildir/filename.js';

/** The obvious conversion, to check the fast one against. */
function reference(data: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 10 && (i === 0 || data[i - 1] !== 13)) out.push(13);
    out.push(data[i] as number);
  }
  return Buffer.from(out);
}

/** Bytes rich in CR and LF. */
const bytes = (maxLength: number) => fc.array(fc.constantFrom(10, 13, 97, 32, 0, 255), { maxLength }).map((a) => Buffer.from(a));

describe('toCrlf', () => {
  it('matches the reference and returns the same Buffer when nothing changes', () => {
    fc.assert(
      fc.property(bytes(200), (data) => {
        const out = toCrlf(data);
        expect(out.equals(reference(data))).toBe(true);
        expect(crlfSize(data)).toBe(out.length);
        if (out.length === data.length) expect(out).toBe(data);
      }),
    );
  });

  it('converts a prefix to a prefix of the converted whole unless the cut falls between CR and LF', () => {
    fc.assert(
      fc.property(bytes(200), fc.nat(), (data, at) => {
        const cut = data.length === 0 ? 0 : at % (data.length + 1);
        const whole = toCrlf(data);
        const part = toCrlf(data.subarray(0, cut));
        const betweenCrLf = cut > 0 && cut < data.length && data[cut - 1] === 13 && data[cut] === 10;
        if (!betweenCrLf) expect(whole.subarray(0, part.length).equals(part)).toBe(true);
        // Files served converted have no CR at all: there any cut is safe.
        if (!data.includes(13)) expect(whole.subarray(0, part.length).equals(part)).toBe(true);
      }),
    );
  });
});

describe('vsizeOf', () => {
  it('agrees with parseName', () => {
    const part = fc.constantFrom(',W=', ',S=', ',', ':', ':2,', '1', '09', '123456789012345678', 'x', 'W=', '.M1P2');
    fc.assert(
      fc.property(fc.array(part, { maxLength: 10 }), fc.nat({ max: 4 }), (parts, cut) => {
        const name = parts.join('');
        const from = Math.min(cut, name.length);
        expect(vsizeOf(name, from)).toBe(parseName(name.slice(from)).vsize);
      }),
    );
    expect(vsizeOf('cur/1.M1P1.h,S=10,W=12:2,S', 4)).toBe(12);
  });
});

describe('readPrefix (maildir)', () => {
  let dir: string;
  let store: MaildirStore;
  let user: UserMailStore;
  let box: MailboxHandle;
  let root: string;
  let n = 0;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imapkit-mdp-'));
    store = new MaildirStore({ path: path.join(dir, '%u', 'Maildir'), warn: () => undefined });
    user = await store.openUser('u');
    box = await user.open('INBOX');
    root = path.join(dir, 'u', 'Maildir');
  });
  afterEach(async () => {
    await box.close();
    await user.close();
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Drop a file into cur/ as another MDA would, and return its UID. */
  async function deliverFile(data: Buffer): Promise<number> {
    // Half of them carry S= (the file size, which lets a short read stop), as Dovecot names files.
    const size = n % 2 ? `,S=${data.length}` : '';
    await fs.writeFile(path.join(root, 'cur', `${1_700_000_000 + n}.M${n++}P1.test${size}:2,S`), data);
    const list = await box.list();
    return list[list.length - 1]!.uid;
  }

  async function check(uid: number, want: number): Promise<void> {
    const full = (await box.read(uid))!;
    const got = (await box.readPrefix!(uid, want))!;
    expect(got).not.toBeNull();
    expect(got.data.length).toBeGreaterThanOrEqual(Math.min(want, full.length));
    expect(got.data.equals(full.subarray(0, got.data.length))).toBe(true);
    expect(got.whole).toBe(got.data.length === full.length);
  }

  it('is a prefix of read() for any bytes and any length', async () => {
    await fc.assert(
      fc.asyncProperty(bytes(300), fc.array(fc.nat({ max: 320 }), { minLength: 1, maxLength: 6 }), async (data, wants) => {
        const uid = await deliverFile(data);
        expect((await box.read(uid))!.equals(servedBytes(data))).toBe(true);
        for (const want of [1, data.length - 1, data.length, data.length + 1, ...wants]) if (want >= 1) await check(uid, want);
      }),
      { numRuns: 60 },
    );
  });

  it('sees a CR far past the prefix, in small and large (thread pool) files', async () => {
    for (const size of [20_000, 100_000, 400_000]) {
      const lfOnly = Buffer.from('Subject: x\n\n' + 'line of text\n'.repeat(size / 13));
      const crLate = Buffer.concat([lfOnly, Buffer.from('last\r\n')]);
      for (const data of [lfOnly, crLate]) {
        const uid = await deliverFile(data);
        for (const want of [1, 8192, 8193, 65_536, data.length - 1, data.length, data.length * 3]) {
          await check(uid, want);
          await check(uid, want); // the second time from what the first learnt
        }
      }
    }
  });

  it('cuts between CR and LF of a CRLF file', async () => {
    const data = Buffer.from('Subject: a\r\nFrom: b\r\n\r\nbody\r\n');
    const uid = await deliverFile(data);
    for (let want = 1; want <= data.length + 1; want++) await check(uid, want);
  });

  it('follows a file renamed under it, and gives null once it is gone', async () => {
    const uid = await deliverFile(Buffer.from('Subject: r\n\nbody\n'));
    const [name] = (await fs.readdir(path.join(root, 'cur'))).filter((f) => f.includes(`.M${n - 1}P1.`));
    await fs.rename(path.join(root, 'cur', name!), path.join(root, 'cur', name!.replace(/:2,S$/, ':2,FS')));
    expect((await box.readPrefix!(uid, 5))!.data.toString()).toBe('Subje');
    await fs.unlink(path.join(root, 'cur', name!.replace(/:2,S$/, ':2,FS')));
    expect(await box.readPrefix!(uid, 5)).toBeNull();
  });
});
