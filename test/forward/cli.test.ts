import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { printStatus, register as registerForward, runForwardCommand } from '../../src/cli/forward.js';
import { register as registerAuth, runAuthLogin } from '../../src/cli/auth.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-fwdcli-'));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

describe('imapkit forward / auth command line', () => {
  it('registers forward and auth login with their options', () => {
    const program = new Command();
    registerForward(program);
    registerAuth(program);
    const fwd = program.commands.find((c) => c.name() === 'forward')!;
    expect(fwd.options.map((o) => o.long)).toEqual(expect.arrayContaining(['--config', '--status', '--no-idle', '--once', '--log', '--log-max-size', '--log-max-files', '--debug']));
    const login = program.commands.find((c) => c.name() === 'auth')!.commands.find((c) => c.name() === 'login')!;
    expect(login.options.map((o) => o.long)).toEqual(expect.arrayContaining(['--provider', '--client-secret', '--token', '--device']));
  });

  it('prints the status of each forward of a config, including those that never ran', async () => {
    const cfg = path.join(dir, 'f.toml');
    writeFileSync(cfg, `stateDir = "state"\n[[forward]]\nname = "alice"\n[forward.source]\nhost = "h"\nuser = "a"\npassword = "p"\n[forward.target]\nuser = "a@gmail.com"\npassword = "p"\n`);
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      out.push(String(s));
      return true;
    });
    expect(await printStatus({ config: cfg })).toBe(0);
    expect(out.join('')).toContain('alice: never started');
  });

  it('exits 78 on a bad config and 64 on an unusable log destination, naming the problem', async () => {
    const cfg = path.join(dir, 'bad.toml');
    writeFileSync(cfg, '[[forward]]\nname = "x"\n');
    const err: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      err.push(String(s));
      return true;
    });
    vi.spyOn(console, 'error').mockImplementation((s: unknown) => {
      err.push(String(s));
    });
    expect(await runForwardCommand({ config: cfg, once: true })).toBe(78);
    expect(err.join('')).toMatch(/bad\.toml: forward\.0\.source/);
    expect(await runForwardCommand({ config: cfg, log: 'syslog' })).toBe(64);
    expect(err.join('')).toMatch(/--log syslog/);
    expect(await runAuthLogin({ provider: 'yahoo', clientSecret: 'x', token: 'y' })).toBe(64);
    expect(err.join('')).toMatch(/unknown provider "yahoo"/);
  });
});
