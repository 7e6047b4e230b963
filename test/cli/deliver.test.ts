/**
 * `imapkit deliver`: stores stdin for a user and answers with the sysexits.h codes MTAs expect.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { deliver, EX, stripEnvelopeLine } from '../../src/cli/deliver.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let dir: string;
let stderr: PassThrough;
let errText: string;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imapkit-deliver-'));
  stderr = new PassThrough();
  errText = '';
  stderr.on('data', (d: Buffer) => (errText += d.toString()));
  // Keep the default data directory (and its sqlite store) inside the test directory.
  env = { ...process.env, XDG_DATA_HOME: path.join(dir, 'data') };
  await fs.writeFile(path.join(dir, 'passwd'), 'alice:{PLAIN}secret::::::\nbob:{PLAIN}x::::::\n');
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const maildirSpec = (): string => `maildir:${path.join(dir, 'mail', '%u', 'Maildir')}`;
const msg = Buffer.from('From: a@example.org\nTo: alice@example.org\nSubject: hello\n\nbody\n');

async function files(user: string, folder = ''): Promise<string[]> {
  const base = path.join(dir, 'mail', user, 'Maildir', folder);
  const out: string[] = [];
  for (const sub of ['new', 'cur']) for (const f of await fs.readdir(path.join(base, sub)).catch(() => [] as string[])) out.push(path.join(base, sub, f));
  return out;
}

describe('deliver', () => {
  it('stores the message in INBOX and exits 0', async () => {
    const code = await deliver('alice', msg, { store: maildirSpec() }, { stderr, env });
    expect(code).toBe(EX.OK);
    const [f, ...rest] = await files('alice');
    expect(rest).toEqual([]);
    expect(path.basename(path.dirname(f!))).toBe('new');
    // Bytes as the MTA handed them over (LF), like dovecot-lda stores them.
    expect(await fs.readFile(f!)).toEqual(msg);
  });

  it('drops an mbox envelope line and adds Return-Path from --from', async () => {
    const input = Buffer.concat([Buffer.from('From sender@example.org  Mon Jan  1 00:00:00 2024\n'), msg]);
    expect(await deliver('alice', input, { store: maildirSpec(), from: 'sender@example.org' }, { stderr, env })).toBe(EX.OK);
    const [f] = await files('alice');
    expect((await fs.readFile(f!, 'utf8')).split('\n').slice(0, 2)).toEqual(['Return-Path: <sender@example.org>', 'From: a@example.org']);
    expect(stripEnvelopeLine(Buffer.from('Subject: x\n\n'))).toEqual(Buffer.from('Subject: x\n\n'));
  });

  it('delivers to --mailbox, or to INBOX when that mailbox does not exist', async () => {
    expect(await deliver('alice', msg, { store: maildirSpec() }, { stderr, env })).toBe(EX.OK);
    await fs.mkdir(path.join(dir, 'mail', 'alice', 'Maildir', '.Lists', 'cur'), { recursive: true });
    await fs.mkdir(path.join(dir, 'mail', 'alice', 'Maildir', '.Lists', 'new'), { recursive: true });
    expect(await deliver('alice', msg, { store: maildirSpec(), mailbox: 'Lists' }, { stderr, env })).toBe(EX.OK);
    expect(await files('alice', '.Lists')).toHaveLength(1);
    expect(await deliver('alice', msg, { store: maildirSpec(), mailbox: 'Nowhere' }, { stderr, env })).toBe(EX.OK);
    expect(errText).toMatch(/Nowhere.*delivered to INBOX/);
    expect(await files('alice')).toHaveLength(2);
  });

  it('answers 67 for a user the user database does not know, 0 for one it knows', async () => {
    const users = `passwd:${path.join(dir, 'passwd')}`;
    expect(await deliver('mallory', msg, { store: maildirSpec(), users }, { stderr, env })).toBe(EX.NOUSER);
    expect(errText).toContain('unknown user "mallory"');
    expect(await fs.readdir(path.join(dir, 'mail')).catch(() => [])).toEqual([]);
    expect(await deliver('bob', msg, { store: maildirSpec(), users }, { stderr, env })).toBe(EX.OK);
    expect(await files('bob')).toHaveLength(1);
  });

  it('answers 67 for a user name that cannot name a Maildir', async () => {
    expect(await deliver('../etc', msg, { store: maildirSpec() }, { stderr, env })).toBe(EX.NOUSER);
  });

  it('answers 65 for empty input and for a message over the configured limit', async () => {
    expect(await deliver('alice', Buffer.alloc(0), { store: maildirSpec() }, { stderr, env })).toBe(EX.DATAERR);
    expect(await deliver('alice', Buffer.from('From x Mon Jan  1 00:00:00 2024\n'), { store: maildirSpec() }, { stderr, env })).toBe(EX.DATAERR);
    const config = path.join(dir, 'imapkit.toml');
    await fs.writeFile(config, `store = "${maildirSpec()}"\n[limits]\nappendLimit = 20\n`);
    expect(await deliver('alice', msg, { config }, { stderr, env })).toBe(EX.DATAERR);
    expect(await files('alice')).toEqual([]);
  });

  it('answers 78 for configuration errors', async () => {
    expect(await deliver('alice', msg, { store: 'bogus:thing' }, { stderr, env })).toBe(EX.CONFIG);
    expect(await deliver('alice', msg, { config: path.join(dir, 'missing.toml') }, { stderr, env })).toBe(EX.CONFIG);
    expect(await deliver('alice', msg, { store: maildirSpec(), users: `passwd:${path.join(dir, 'nope')}` }, { stderr, env })).toBe(EX.CONFIG);
    expect(await deliver('alice', msg, { store: 'maildir:/x:NOSUCHOPTION=1' }, { stderr, env })).toBe(EX.CONFIG);
  });

  it('answers 75 when storing fails for a reason that may pass', async () => {
    // A file where the Maildir should be: the write fails, the MTA must keep the mail and retry.
    await fs.mkdir(path.join(dir, 'mail', 'alice'), { recursive: true });
    await fs.writeFile(path.join(dir, 'mail', 'alice', 'Maildir'), 'not a directory');
    expect(await deliver('alice', msg, { store: maildirSpec() }, { stderr, env })).toBe(EX.TEMPFAIL);
  });

  it('takes the store from serve\'s config file, and works with any store (sqlite, with its own user table)', async () => {
    const db = path.join(dir, 'mail.sqlite');
    const config = path.join(dir, 'imapkit.toml');
    await fs.writeFile(config, `store = "sqlite:${db}"\n`);
    const { SqliteStore } = await import('../../src/store/sqlite/store.js');
    const s = new SqliteStore(db, { scryptLn: 4 });
    await s.users.addUser('carol', 'pw');
    await s.close();
    expect(await deliver('dave', msg, { config }, { stderr, env })).toBe(EX.NOUSER);
    expect(await deliver('carol', msg, { config }, { stderr, env })).toBe(EX.OK);
    const s2 = new SqliteStore(db);
    try {
      const u = await s2.openUser('carol');
      expect((await u.status('INBOX')).messages).toBe(1);
    } finally {
      await s2.close();
    }
  });

  it('works as a command: message on stdin, exit code out', async () => {
    const script = path.join(dir, 'cli.mts');
    await fs.writeFile(
      script,
      // The script lives outside the repository: resolve commander from the repository.
      `import { createRequire } from 'node:module';\nconst { Command } = createRequire(${JSON.stringify(path.join(ROOT, 'package.json'))})('commander');\n` +
        `import { register } from ${JSON.stringify(path.join(ROOT, 'src/cli/deliver.ts'))};\n` +
        `const p = new Command(); register(p); await p.parseAsync(process.argv);\n`,
    );
    const run = (args: string[], input: Buffer): Promise<number> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, 'deliver', ...args], { cwd: ROOT, env, stdio: ['pipe', 'ignore', 'ignore'] });
        child.on('exit', (code) => resolve(code ?? -1));
        child.stdin.end(input);
      });
    expect(await run(['alice', '--store', maildirSpec(), '-m', 'INBOX'], msg)).toBe(0);
    expect(await run(['nobody', '--store', maildirSpec(), '--users', `passwd:${path.join(dir, 'passwd')}`], msg)).toBe(67);
    expect(await files('alice')).toHaveLength(1);
  });
});
