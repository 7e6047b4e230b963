/** `imapkit user` and `imapkit serve` (in process and as a real process with --debug). */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runUserCommand, type UserIo } from '../../src/cli/user.js';
import { startServe } from '../../src/cli/serve.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { PasswdFileUserDb } from '../../src/auth/passwd-file.js';
import { silentLogger } from '../../src/log/logger.js';
import { TestClient } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imapkit-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function io(input = ''): UserIo & { out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { stdin: Readable.from([input]), stdout, stderr, env: { XDG_DATA_HOME: dir }, out: () => out, err: () => err };
}

describe('imapkit user', () => {
  it('adds, lists, changes and deletes users in the SQLite store, password from stdin', async () => {
    const store = `sqlite:${join(dir, 'users.db')}`;
    const add = io('s3cret\n');
    expect(await runUserCommand('add', 'alice', { store }, add)).toBe(0);
    expect(add.out()).toBe('user alice added\n');
    const dup = io('x\n');
    expect(await runUserCommand('add', 'alice', { store }, dup)).toBe(1);
    expect(dup.err()).toMatch(/^imapkit user add: .*alice/);
    const list = io();
    expect(await runUserCommand('list', undefined, { store }, list)).toBe(0);
    expect(list.out()).toBe('alice\n');
    expect(await runUserCommand('passwd', 'alice', { store }, io('n3w\n'))).toBe(0);
    const db = new SqliteStore(join(dir, 'users.db'));
    expect(await db.users.verify('alice', 'n3w')).toBe(true);
    expect(await db.users.verify('alice', 's3cret')).toBe(false);
    await db.close();
    expect(await runUserCommand('del', 'alice', { store }, io())).toBe(0);
    const empty = io();
    await runUserCommand('list', undefined, { store }, empty);
    expect(empty.out()).toBe('');
  });

  it('refuses an empty password', async () => {
    const e = io('\n');
    expect(await runUserCommand('add', 'bob', { store: `sqlite:${join(dir, 'users.db')}` }, e)).toBe(1);
    expect(e.err()).toMatch(/empty/);
  });

  it('writes a passwd-file with --users passwd:PATH', async () => {
    const file = join(dir, 'passwd');
    expect(await runUserCommand('add', 'carol', { users: `passwd:${file}` }, io('pw\n'))).toBe(0);
    expect(await readFile(file, 'utf8')).toMatch(/^carol:\{/m);
    expect(await new PasswdFileUserDb(file).verify('carol', 'pw')).toBe(true);
  });
});

describe('imapkit serve --demo', () => {
  it('serves the demo account over a memory store and says how to connect', async () => {
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    const running = await startServe({ demo: true, port: 0 }, { stdout, env: { XDG_DATA_HOME: dir } }, silentLogger());
    try {
      expect(running.store.kind).toBe('memory');
      expect(out).toContain(`listening on 127.0.0.1:${running.port}`);
      expect(out).toContain('demouser');
      expect(out).toContain('demopass');
      const { client, greeting } = await TestClient.connect(running.port);
      expect(greeting).toContain('STARTTLS');
      await client.login('demouser', 'demopass');
      const sel = await client.command('SELECT INBOX');
      expect(sel.untagged).toContain('* 10 EXISTS');
      const list = await client.command('LIST "" "*"');
      expect(list.untagged).toContain('* LIST (\\HasNoChildren \\Sent) "/" Sent');
      client.close();
    } finally {
      await running.stop();
    }
  });
});

/** Run the CLI entry as a child process. */
function cli(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'test/server/cli-entry.ts', ...args], {
    cwd: join(import.meta.dirname, '..', '..'),
    env: { ...process.env, ...env, IMAPKIT_LOG_LEVEL: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function collect(child: ChildProcess): { out: () => string; err: () => string; exit: Promise<number | null> } {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { out: () => out, err: () => err, exit };
}

describe('imapkit as a process', () => {
  it('creates a user from piped stdin, serves it, and never logs the password with --debug', async () => {
    const store = `sqlite:${join(dir, 'proc.db')}`;
    const add = cli(['user', 'add', 'dave', '--store', store], { XDG_DATA_HOME: dir });
    const addOut = collect(add);
    add.stdin!.end('pw-Zq81x\n');
    expect(await addOut.exit).toBe(0);
    expect(addOut.out()).toBe('user dave added\n');

    const serve = cli(['serve', '--store', store, '--host', '127.0.0.1', '--port', '0', '--debug'], { XDG_DATA_HOME: dir });
    const s = collect(serve);
    try {
      while (!/on 127\.0\.0\.1:(\d+)/.test(s.out())) {
        if (serve.exitCode !== null) throw new Error(`serve exited: ${s.err()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const port = Number(/on 127\.0\.0\.1:(\d+)/.exec(s.out())![1]);
      const { client } = await TestClient.connect(port);
      await client.login('dave', 'pw-Zq81x');
      await client.command('LOGOUT');
      client.close();
      // The SASL response travels as a continuation line: the trace must hide it too.
      const sasl = (await TestClient.connect(port)).client;
      sasl.send('A1 AUTHENTICATE PLAIN');
      expect(await sasl.readLine()).toBe('+ ');
      sasl.send(Buffer.from('\0dave\0pw-Zq81x').toString('base64'));
      expect(await sasl.readLine()).toMatch(/^A1 OK/);
      sasl.close();
      serve.kill('SIGTERM');
      expect(await s.exit).toBe(0);
      // The trace shows the session but neither the password nor its base64 form.
      expect(s.err()).toContain('LOGIN');
      expect(s.err()).not.toContain('pw-Zq81x');
      expect(s.err()).not.toContain(Buffer.from('\0dave\0pw-Zq81x').toString('base64'));
    } finally {
      if (serve.exitCode === null) serve.kill('SIGKILL');
    }
  });

  it('exits 1 with a message naming the bad key', async () => {
    const bad = cli(['serve', '--users', 'ldap:x', '--port', '0'], { XDG_DATA_HOME: dir });
    const b = collect(bad);
    expect(await b.exit).toBe(1);
    expect(b.err()).toMatch(/imapkit serve: command line: users: /);
  });
});
