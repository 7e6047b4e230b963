/**
 * Sync configuration: schema errors name file and key, folder patterns, Gmail defaults, name
 * translation and its inverse check, the URL form of the command line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load.js';
import { checkInverse, compileFolderPattern, folderSelector, loadSyncConfig, nameTranslator, selectAccounts } from '../../src/sync/config.js';
import { parseRepoUrl, urlAccount } from '../../src/cli/sync.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-sync-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function toml(name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('sync config', () => {
  it('resolves an account with defaults (TLS on, Gmail exclusions, state path)', async () => {
    const f = toml(
      'a.toml',
      `stateDir = "st"
[accounts.gmail]
remote = { type = "imap", host = "imap.gmail.com", user = "me@gmail.com", passwordCommand = ["pass", "show", "gmail"] }
local = { type = "maildir", path = "~/Mail/gmail" }
`,
    );
    const [a] = selectAccounts(await loadSyncConfig(f), f, []);
    expect(a!.remote).toMatchObject({ type: 'imap', port: 993, tls: 'implicit', gmail: true, password: { kind: 'command', command: ['pass', 'show', 'gmail'] } });
    expect(a!.statePath).toBe(path.join(dir, 'st', 'gmail.sqlite'));
    expect(a!.local).toEqual({ type: 'maildir', path: path.join(os.homedir(), 'Mail/gmail') });
    expect(a!.deletions).toEqual({ remote: 'trash', local: 'expunge' });
    expect(a!.selector('INBOX')).toBe(true);
    expect(a!.selector('[Gmail]/All Mail')).toBe(false);
    expect(a!.selector('[Gmail]/Important')).toBe(false);
    expect(a!.selector('Archiv', '\\All')).toBe(false);
    expect(a!.selector('[Gmail]/Sent Mail')).toBe(true);
  });

  it('includes Gmail All Mail when a pattern names it', () => {
    const sel = folderSelector({ include: ['INBOX', '[Gmail]/All Mail'], gmail: true });
    expect(sel('[Gmail]/All Mail')).toBe(true);
    expect(sel('Other')).toBe(false);
  });

  it('errors name the file and the key', async () => {
    const f = toml('bad.toml', `[accounts.x]\nremote = { type = "imap", host = "h", user = "u", tls = "yes" }\nlocal = { type = "mh", path = "p" }\n`);
    const err = await loadSyncConfig(f).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(`${f}: accounts.x.remote.tls`);
    expect((err as Error).message).toContain(`${f}: accounts.x.local`);
  });

  it('folder patterns: * crosses levels, % does not, INBOX is case-insensitive', () => {
    expect(compileFolderPattern('Projects/*').test('Projects/a/b')).toBe(true);
    expect(compileFolderPattern('Projects/%').test('Projects/a/b')).toBe(false);
    expect(compileFolderPattern('Projects/%').test('Projects/a')).toBe(true);
    expect(compileFolderPattern('inbox').test('INBOX')).toBe(true);
    expect(compileFolderPattern('a.b').test('axb')).toBe(false);
    const sel = folderSelector({ include: ['*'], exclude: ['Junk', 'Lists/*'], filter: (n) => !n.startsWith('tmp') });
    expect(['INBOX', 'Junk', 'Lists/x', 'tmp1', 'Work'].filter((n) => sel(n))).toEqual(['INBOX', 'Work']);
  });

  it('name maps translate both ways and collisions are caught by the inverse check', () => {
    const t = nameTranslator({ nameMap: { 'Sent Items': 'Sent', 'Deleted Items': 'Trash' } });
    expect(t.toLocal('Sent Items')).toBe('Sent');
    expect(t.toRemote('Trash')).toBe('Deleted Items');
    expect(t.toLocal('Other')).toBe('Other');
    expect(checkInverse(t, ['INBOX', 'Sent Items'], ['Sent'])).toEqual([]);
    // A remote folder really called "Sent" would land on the same local folder.
    expect(checkInverse(t, ['Sent Items', 'Sent'], [])).toEqual([expect.stringContaining('remote folder "Sent" → local "Sent" → remote "Sent Items"')]);
  });

  it('functions that are not inverse are reported with the folder', () => {
    const bad = { toLocal: (n: string) => n.toLowerCase(), toRemote: (n: string) => n };
    expect(checkInverse(bad, ['Work'], [])).toEqual([expect.stringContaining('"Work" → local "work" → remote "work"')]);
    const throwing = { toLocal: () => { throw new Error('boom'); }, toRemote: (n: string) => n };
    expect(checkInverse(throwing, ['X'], [])[0]).toMatch(/toLocal\("X"\) threw: boom/);
  });

  it('accounts named on the command line must exist', async () => {
    const f = toml('c.toml', `[accounts.one]\nremote = { type = "imap", host = "h", user = "u", password = "p" }\nlocal = { type = "maildir", path = "/tmp/m" }\n`);
    const cfg = await loadSyncConfig(f);
    expect(() => selectAccounts(cfg, f, ['two'])).toThrow(/no account "two" \(accounts: one\)/);
  });
});

describe('sync URL form', () => {
  it('parses imap://, imaps:// and maildir: arguments', () => {
    expect(parseRepoUrl('imaps://alice@mail.example.org')).toMatchObject({ type: 'imap', host: 'mail.example.org', port: 993, tls: 'implicit', user: 'alice' });
    expect(parseRepoUrl('imap://bob%40corp@127.0.0.1:1143?tls=false&maxConnections=2')).toMatchObject({ port: 1143, tls: false, user: 'bob@corp', maxConnections: 2 });
    expect(parseRepoUrl('imap://c@h')).toMatchObject({ tls: 'starttls', port: 143 });
    expect(parseRepoUrl('maildir:/var/mail/x')).toEqual({ type: 'maildir', path: '/var/mail/x' });
    expect(() => parseRepoUrl('imap://u:secret@h')).toThrow(/do not put the password in the URL/);
    expect(() => parseRepoUrl('imap://h')).toThrow(/needs a user/);
    expect(() => parseRepoUrl('imap://u@h?tls=maybe')).toThrow(/tls= takes/);
  });

  it('takes the password from --password-command or IMAPKIT_PASSWORD and names the state after both URLs', () => {
    const a = urlAccount('imaps://alice@mail.example.org', 'maildir:/tmp/m', { passwordCommand: 'pass show mail' });
    expect(a.remote.type === 'imap' && a.remote.password).toEqual({ kind: 'command', command: 'pass show mail' });
    expect(a.name).toBe('alice@mail.example.org');
    const b = urlAccount('imaps://alice@mail.example.org', 'maildir:/tmp/other', {});
    expect(b.statePath).not.toBe(a.statePath);
    process.env.IMAPKIT_PASSWORD = 'x';
    try {
      const c = urlAccount('imaps://alice@mail.example.org', 'imaps://alice@other.example.net', {});
      expect(c.remote.type === 'imap' && c.remote.password).toEqual({ kind: 'env', name: 'IMAPKIT_PASSWORD' });
      expect(c.local.type === 'imap' && c.local.password).toEqual({ kind: 'env', name: 'IMAPKIT_PASSWORD' });
    } finally {
      delete process.env.IMAPKIT_PASSWORD;
    }
  });
});
