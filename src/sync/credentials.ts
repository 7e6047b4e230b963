/**
 * Where a password comes from: the config itself, a file, an environment variable, a command
 * (like mbsync's PassCmd: its first output line), or ~/.netrc (machine/login/password entries).
 * Errors name the source and never the secret.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';

/** One password source. */
export type PasswordSource =
  | { kind: 'password'; value: string }
  | { kind: 'file'; path: string }
  | { kind: 'env'; name: string }
  | { kind: 'command'; command: string | string[] }
  | { kind: 'netrc'; file?: string; host: string; user?: string };

/** A password that could not be obtained; the message says from where and why. */
export class CredentialError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialError';
  }
}

function expandHome(p: string): string {
  return p === '~' ? homedir() : p.startsWith('~/') ? path.join(homedir(), p.slice(2)) : p;
}

/** Run a password command: a string goes to /bin/sh -c, an array is run directly; the first line of its output is the password. */
export function runPasswordCommand(command: string | string[], timeoutMs = 60_000): Promise<string> {
  const [file, args] = typeof command === 'string' ? ['/bin/sh', ['-c', command]] : [command[0]!, command.slice(1)];
  const shown = typeof command === 'string' ? command : command.join(' ');
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : err.killed ? 'timed out' : `exit status ${(err as { code?: number }).code ?? '?'}`;
        const detail = stderr.trim().split('\n')[0];
        reject(new CredentialError(`passwordCommand ${JSON.stringify(shown)} failed (${why})${detail ? `: ${detail}` : ''}`));
        return;
      }
      const line = stdout.split(/\r?\n/)[0] ?? '';
      if (line === '') reject(new CredentialError(`passwordCommand ${JSON.stringify(shown)} printed nothing`));
      else resolve(line);
    });
  });
}

/** Tokens of a .netrc file (quotes allowed), comments (#) dropped. */
function netrcTokens(text: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const line of text.split('\n')) {
    const l = line.trimStart();
    if (l.startsWith('#')) continue;
    let m: RegExpExecArray | null;
    while ((m = re.exec(l)) !== null) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  }
  return out;
}

/** Find the password for host (and user, when given) in .netrc text; `default` applies last. */
export function netrcLookup(text: string, host: string, user?: string): { login?: string; password?: string } | null {
  const t = netrcTokens(text);
  let fallback: { login?: string; password?: string } | null = null;
  for (let i = 0; i < t.length; i++) {
    const isMachine = t[i] === 'machine';
    const isDefault = t[i] === 'default';
    if (!isMachine && !isDefault) continue;
    const name = isMachine ? t[++i] : undefined;
    const entry: { login?: string; password?: string } = {};
    for (i++; i < t.length && t[i] !== 'machine' && t[i] !== 'default'; i++) {
      if (t[i] === 'login') entry.login = t[++i];
      else if (t[i] === 'password') entry.password = t[++i];
      else if (t[i] === 'account' || t[i] === 'port') i++;
      else if (t[i] === 'macdef') break;
    }
    i--;
    if (user !== undefined && entry.login !== undefined && entry.login !== user) continue;
    if (isMachine && name?.toLowerCase() === host.toLowerCase()) return entry;
    if (isDefault && !fallback) fallback = entry;
  }
  return fallback;
}

/** Get the password from its source. */
export async function resolvePassword(src: PasswordSource): Promise<string> {
  switch (src.kind) {
    case 'password':
      return src.value;
    case 'file': {
      const p = expandHome(src.path);
      let text: string;
      try {
        text = await readFile(p, 'utf8');
      } catch (err) {
        throw new CredentialError(`passwordFile ${p}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      const line = text.split(/\r?\n/)[0] ?? '';
      if (line === '') throw new CredentialError(`passwordFile ${p} is empty`);
      return line;
    }
    case 'env': {
      const v = process.env[src.name];
      if (v === undefined || v === '') throw new CredentialError(`passwordEnv: environment variable ${src.name} is not set`);
      return v;
    }
    case 'command':
      return runPasswordCommand(src.command);
    case 'netrc': {
      const p = expandHome(src.file ?? process.env.NETRC ?? '~/.netrc');
      let text: string;
      try {
        text = await readFile(p, 'utf8');
      } catch (err) {
        throw new CredentialError(`netrc ${p}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      const e = netrcLookup(text, src.host, src.user);
      if (!e?.password) throw new CredentialError(`netrc ${p}: no password for machine ${src.host}${src.user ? ` login ${src.user}` : ''}`);
      return e.password;
    }
  }
}
