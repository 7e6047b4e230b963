/**
 * The command line as a user runs it: `imapkit proxy --backend ...` in its own process, then
 * `imapkit proxy stats` against its admin port, and `imapkit proxy user add`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { FakeBackend } from './fake-backend.js';
import { freePort, run, TestClient } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'imapkit-proxy-cli-'));
// A stand-in for src/cli/main.ts with only this command registered (the lead wires it into commands.ts).
const main = path.join(tmp, 'main.mts');
writeFileSync(
  main,
  `import { Command } from ${JSON.stringify(createRequire(import.meta.url).resolve('commander'))};\nimport { register } from ${JSON.stringify(path.join(root, 'src/cli/proxy.ts'))};\nconst p = new Command('imapkit');\nregister(p);\nawait p.parseAsync(process.argv);\n`,
);
const tsx = path.join(root, 'node_modules/tsx/dist/loader.mjs');
const cli = (args: string[], input?: string): Promise<string> => run(process.execPath, ['--import', tsx, main, ...args], { input, timeout: 30_000 });

let fake: FakeBackend;
let child: ChildProcess | undefined;

beforeAll(async () => {
  fake = new FakeBackend({ users: { alice: 'apw' } });
  await fake.start();
});

afterAll(async () => {
  if (child?.pid) child.kill('SIGTERM');
  await fake.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('imapkit proxy command line', () => {
  it('runs a proxy from flags alone and reports its statistics', async () => {
    const [port, admin] = [await freePort(), await freePort()];
    child = spawn(process.execPath, ['--import', tsx, main, 'proxy', '--backend', `imap://127.0.0.1:${fake.port}`, '--port', String(port), '--admin-port', String(admin), '--debug'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr!.on('data', (d) => (log += d));
    for (let i = 0; i < 300 && !log.includes('admin endpoint listening'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(log).toContain('proxy listening');
    for (let i = 0; i < 2; i++) {
      const c = await TestClient.connect(port);
      expect((await c.cmd('LOGIN alice apw')).status).toBe('OK');
      await c.cmd('LOGOUT');
      await c.closed;
      await new Promise((r) => setTimeout(r, 50));
    }
    const table = await cli(['proxy', 'stats', '--admin', `http://127.0.0.1:${admin}`]);
    expect(table).toContain('cache hits 1   misses 1   hit ratio 50.0%');
    expect(table).toContain(`imap://127.0.0.1:${fake.port}`);
    const json = JSON.parse(await cli(['proxy', 'stats', '--admin', `http://127.0.0.1:${admin}`, '--json']));
    expect(json).toMatchObject({ hits: 1, misses: 1, loginsOk: 2 });
    expect(log).not.toContain('apw');
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    child = undefined;
  });

  it('reports config and flag errors naming the file or flag', async () => {
    const err = await cli(['proxy', '--backend', 'imap://mail.example.com', '--config', path.join(tmp, 'missing.toml')]).catch((e: Error) => e.message);
    expect(err).toMatch(/missing\.toml: cannot read: ENOENT/);
    const bad = await cli(['proxy', '--backend', 'http://x']).catch((e: Error) => e.message);
    expect(bad).toMatch(/scheme must be imap:\/\/ or imaps:\/\//);
  });

  it('sets local passwords with scrypt', async () => {
    const users = path.join(tmp, 'users');
    await cli(['proxy', 'user', 'add', 'alice', '--users-file', users], 'local-secret\n');
    const line = readFileSync(users, 'utf8');
    expect(line).toMatch(/^alice:\{SCRYPT\}\$scrypt\$ln=\d+,r=8,p=1\$/);
    expect(line).not.toContain('local-secret');
    await cli(['proxy', 'user', 'add', 'alice', '--users-file', users], 'another\n');
    expect(readFileSync(users, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
    expect(readFileSync(users, 'utf8')).not.toBe(line);
  });
});
