import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'smol-toml';
import { forwardConfigSchema, loadForwardConfig, parseDuration, resolveForwardConfig, defaultStateDir } from '../../src/forward/config.js';
import { ConfigError, validateConfig } from '../../src/config/load.js';

const TOML = `
stateDir = "state"
[defaults]
pollInterval = "30s"

[[forward]]
name = "alice"
afterForward = "move:Forwarded"
[forward.source]
host = "mail.family.example"
user = "alice"
passwordCommand = "pass show mail/alice"
[forward.target]
user = "alice@gmail.com"
label = "family"
[forward.target.oauth2]
clientSecretFile = "client_secret.json"
tokenFile = "~/tokens/alice.json"

[[forward]]
name = "bob"
since = "2d"
idle = false
[forward.source]
host = "127.0.0.1"
port = 1143
tls = false
user = "bob"
password = "secret"
folders = ["INBOX", "Lists/dev"]
[forward.target]
host = "imap.example.net"
tls = "starttls"
user = "bob"
passwordFile = "bob.pass"
mailbox = "From family"
`;

describe('forward config', () => {
  it('applies defaults and resolves paths', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-fwdcfg-'));
    const file = path.join(dir, 'forward.toml');
    writeFileSync(file, TOML);
    const c = await loadForwardConfig(file);
    expect(c.stateDir).toBe(path.join(dir, 'state'));
    const [a, b] = c.forwards;
    expect(a!.source).toMatchObject({ host: 'mail.family.example', port: 993, tls: 'implicit', folders: ['INBOX'], credentials: { kind: 'passwordCommand' } });
    expect(a!.target).toMatchObject({ host: 'imap.gmail.com', port: 993, tls: 'implicit', mailbox: 'INBOX', label: 'family' });
    expect(a!.target.credentials).toEqual({
      kind: 'oauth2', provider: 'google', tokenUrl: undefined,
      clientSecretFile: path.join(dir, 'client_secret.json'), tokenFile: path.join(os.homedir(), 'tokens/alice.json'),
    });
    expect(a!.sinceMs).toBe(7 * 86_400_000);
    expect(a!.retentionMs).toBe(31 * 86_400_000);
    expect(a!.pollIntervalMs).toBe(30_000);
    expect(a!.idle).toBe(true);
    expect(a!.afterForward).toEqual({ kind: 'move', folder: 'Forwarded' });
    expect(b!.source).toMatchObject({ port: 1143, tls: 'none', folders: ['INBOX', 'Lists/dev'], credentials: { kind: 'password', password: 'secret' } });
    expect(b!.target).toMatchObject({ host: 'imap.example.net', port: 143, tls: 'starttls', mailbox: 'From family', credentials: { kind: 'passwordFile', file: path.join(dir, 'bob.pass') } });
    expect(b!.sinceMs).toBe(2 * 86_400_000);
    expect(b!.idle).toBe(false);
    expect(b!.afterForward).toEqual({ kind: 'keep' });
  });

  it('names the file and key of each mistake', () => {
    const bad = parse(TOML.replace('afterForward = "move:Forwarded"', 'afterForward = "archive"').replace('passwordCommand = "pass show mail/alice"', ''));
    let msg = '';
    try {
      validateConfig(forwardConfigSchema, bad, 'f.toml');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      msg = (err as Error).message;
    }
    expect(msg).toContain('f.toml: forward.0.afterForward: expected keep, seen, move:FOLDER or delete');
    expect(msg).toContain('f.toml: forward.0.source: no credentials');
  });

  it('refuses two credentials, duplicate names and a retention shorter than the window', () => {
    const two = parse(TOML.replace('password = "secret"', 'password = "secret"\npasswordCommand = "x"'));
    expect(() => validateConfig(forwardConfigSchema, two, 'f.toml')).toThrow(/forward\.1\.source: give only one of password, passwordCommand/);
    const dup = parse(TOML.replace('name = "bob"', 'name = "alice"'));
    expect(() => validateConfig(forwardConfigSchema, dup, 'f.toml')).toThrow(/duplicate forward name "alice"/);
    const short = validateConfig(forwardConfigSchema, parse(TOML.replace('since = "2d"', 'since = "40d"')), 'f.toml');
    expect(() => resolveForwardConfig(short, 'f.toml')).toThrow(/retention \(31 days\) must be at least since \(40 days\)/);
    const loop = validateConfig(forwardConfigSchema, parse(TOML.replace('move:Forwarded', 'move:INBOX')), 'f.toml');
    expect(() => resolveForwardConfig(loop, 'f.toml')).toThrow(/also a source folder/);
  });

  it('parses durations', () => {
    expect(parseDuration('45s')).toBe(45_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration(2)).toBe(2000);
    expect(parseDuration('250ms')).toBe(250);
    expect(() => parseDuration('soon')).toThrow(/not a duration/);
    expect(() => parseDuration('5 parsecs')).toThrow(/not a duration/);
  });

  it('puts state under XDG_STATE_HOME when set', () => {
    expect(defaultStateDir({ XDG_STATE_HOME: '/x/state' })).toBe('/x/state/imapkit');
    expect(defaultStateDir({})).toBe(path.join(os.homedir(), '.local/state/imapkit'));
  });
});
