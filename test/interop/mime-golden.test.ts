/**
 * Golden test: imapkit's ENVELOPE, BODY/BODYSTRUCTURE, sections and BINARY against a private
 * Dovecot, for every corpus message. Values are compared as parsed trees (a quoted string equals a
 * literal with the same bytes). Every difference must be listed in KNOWN_DIFFERENCES.md (MIME
 * section) as "- `<message name>` `<field>`: reason"; the test asserts the sets are equal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCorpus } from '../fixtures/corpus.js';
import { RawImapClient, fetchItems, type ImapValue } from './helpers/raw-imap.js';
import { bodyStructure, decodePart, envelope, extractSection, indexMessage } from '../../src/mime/index.js';
import type { ResponseValue } from '../../src/protocol/values.js';
import type { Section } from '../../src/protocol/ast.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const script = path.join(root, 'scripts/dovecot.sh');
const COUNT = 300;

function dovecotAvailable(): boolean {
  if (spawnSync('bash', ['-c', 'command -v dovecot || test -x /usr/sbin/dovecot']).status === 0) return true;
  if (process.env.CI === 'true') throw new Error('dovecot is not installed (CI=true): run scripts/install-peers.sh');
  console.warn('\n*** mime-golden: Dovecot is not installed, SKIPPING the golden MIME test (run scripts/install-peers.sh) ***\n');
  return false;
}

/** Canonical form of a value: numbers and atoms tagged, strings by their bytes. */
type Canon = null | string | Canon[];

function canonDovecot(v: ImapValue): Canon {
  if (v === null) return null;
  if (Array.isArray(v)) return v.map(canonDovecot);
  if (typeof v === 'string') return /^\d+$/.test(v) ? `n:${v}` : `a:${v}`;
  return `s:${v.bytes.toString('latin1')}`;
}

function canonOurs(v: ResponseValue): Canon {
  if (v === null) return null;
  if (Array.isArray(v)) return v.map(canonOurs);
  if (typeof v === 'number' || typeof v === 'bigint') return `n:${v}`;
  if (typeof v === 'string') return `s:${Buffer.from(v, 'utf8').toString('latin1')}`;
  if ('adjacent' in v) return v.adjacent.map(canonOurs);
  if ('atom' in v) return `a:${v.atom}`;
  if ('literal' in v) return `s:${v.literal.toString('latin1')}`;
  return 's:<stream>';
}

/** The FETCH items compared, with how imapkit answers each. */
interface Probe {
  item: string;
  ours: (raw: Buffer) => Canon;
}

function section(part: number[], text?: Section['text'], fields?: string[]): (raw: Buffer) => Canon {
  return (raw) => {
    const bytes = extractSection(raw, indexMessage(raw), { part, ...(text ? { text } : {}), ...(fields ? { fields } : {}) });
    // Dovecot answers an empty string for a part that does not exist
    return `s:${(bytes ?? Buffer.alloc(0)).toString('latin1')}`;
  };
}

const PROBES: Probe[] = [
  { item: 'RFC822.SIZE', ours: (raw) => `n:${indexMessage(raw).size}` },
  { item: 'ENVELOPE', ours: (raw) => canonOurs(envelope(raw, indexMessage(raw))) },
  { item: 'BODYSTRUCTURE', ours: (raw) => canonOurs(bodyStructure(raw, indexMessage(raw), true)) },
  { item: 'BODY', ours: (raw) => canonOurs(bodyStructure(raw, indexMessage(raw), false)) },
  { item: 'BODY.PEEK[1]', ours: section([1]) },
  { item: 'BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]', ours: section([], 'HEADER.FIELDS', ['FROM', 'SUBJECT']) },
  { item: 'BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT DATE)]', ours: section([], 'HEADER.FIELDS.NOT', ['SUBJECT', 'DATE']) },
  { item: 'BODY.PEEK[HEADER]', ours: section([], 'HEADER') },
  { item: 'BODY.PEEK[TEXT]', ours: section([], 'TEXT') },
  { item: 'BODY.PEEK[1.MIME]', ours: section([1], 'MIME') },
  { item: 'BODY.PEEK[2]', ours: section([2]) },
  { item: 'BODY.PEEK[1.1]', ours: section([1, 1]) },
  { item: 'BODY.PEEK[2.HEADER]', ours: section([2], 'HEADER') },
];

/** Response key Dovecot uses for a requested item. */
function responseKey(item: string): string {
  return item.replace('.PEEK', '').toUpperCase();
}

/** BINARY items compared (part numbers; [] is the whole message). */
const BINARY_PARTS: number[][] = [[1], [2], []];

function binaryOurs(raw: Buffer, part: number[]): string {
  const r = decodePart(raw, indexMessage(raw), part);
  if (r === 'UNKNOWN-CTE') return 'NO [UNKNOWN-CTE]';
  return `s:${(r ?? Buffer.alloc(0)).toString('latin1')}`;
}

/** Documented differences: "- `name` `FIELD`: reason" lines in the MIME section. */
function documented(): Set<string> {
  const text = readFileSync(path.join(here, 'KNOWN_DIFFERENCES.md'), 'utf8');
  const start = text.indexOf('## MIME (ENVELOPE, BODYSTRUCTURE, sections)');
  if (start < 0) return new Set();
  const rest = text.slice(start + 3);
  const end = rest.indexOf('\n## ');
  const sectionText = end < 0 ? rest : rest.slice(0, end);
  const out = new Set<string>();
  for (const m of sectionText.matchAll(/^- `([^`]+)` `([^`]+)`/gm)) out.add(`${m[1]} ${m[2]}`);
  return out;
}

const enabled = dovecotAvailable();

/** The malformed-mail fixtures join the corpus, named "fixture-<file>". */
function fixtures(): Array<{ name: string; raw: Buffer }> {
  const dir = path.join(root, 'test/fixtures/mime');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.eml'))
    .sort()
    .map((f) => ({ name: `fixture-${f.replace(/\.eml$/, '')}`, raw: readFileSync(path.join(dir, f)) }));
}

describe('MIME golden test against Dovecot', () => {
  const corpus = [...generateCorpus(COUNT), ...fixtures()];
  let dir = '';
  let port = 0;
  let client: RawImapClient | null = null;
  const uidOf = new Map<string, number>();
  const refused: string[] = [];

  /** Log in as test1, retrying while a freshly started Dovecot's auth process warms up. */
  async function login(): Promise<RawImapClient> {
    for (let attempt = 1; ; attempt++) {
      const c = await RawImapClient.connect(port);
      try {
        await c.login('test1', 'pass');
        return c;
      } catch (err) {
        await c.close().catch(() => undefined);
        if (attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  }

  async function connect(): Promise<RawImapClient> {
    const c = await login();
    const r = await c.command('SELECT INBOX');
    if (r.status !== 'OK') throw new Error(`SELECT failed: ${r.text}`);
    return c;
  }

  beforeAll(async () => {
    if (!enabled) return;
    dir = mkdtempSync(path.join(os.tmpdir(), 'imapkit-mime-golden-'));
    // Dovecot's unprivileged processes must reach the passwd file and sockets in here
    chmodSync(dir, 0o755);
    // output to a file: the daemon keeps inherited pipes open, which would block spawnSync;
    // a few attempts on fresh ports, since other test runs share this machine
    const log = path.join(dir, 'start.log');
    let started = false;
    for (let attempt = 0; attempt < 3 && !started; attempt++) {
      port = 20000 + Math.floor(Math.random() * 20000);
      started = spawnSync('bash', ['-c', 'bash "$0" start "$1" "$2" >"$3" 2>&1', script, dir, String(port), log]).status === 0;
    }
    if (!started) throw new Error(`dovecot.sh start failed: ${readFileSync(log, 'utf8')}`);
    const c = await login();
    for (const m of corpus) {
      const r = await c.append('INBOX', m.raw, [], { literalPlus: true });
      const uid = r.status === 'OK' ? /APPENDUID \d+ (\d+)/.exec(r.code ?? '')?.[1] : undefined;
      if (uid !== undefined) uidOf.set(m.name, Number(uid));
      else refused.push(m.name);
    }
    await c.close();
    client = await connect();
  }, 180_000);

  afterAll(async () => {
    if (client) await client.close().catch(() => undefined);
    if (dir) {
      spawnSync('bash', ['-c', 'bash "$0" stop "$1" >/dev/null 2>&1', script, dir]);
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('matches Dovecot except for the documented differences', async () => {
    if (!enabled) return;
    expect(corpus.length).toBeGreaterThanOrEqual(COUNT);
    const differences = new Set<string>(refused.map((n) => `${n} APPEND`));
    const details: string[] = [];
    const items = PROBES.map((p) => p.item).join(' ');
    for (const m of corpus) {
      const uid = uidOf.get(m.name);
      if (uid === undefined) continue;
      let c = client!;
      const r = await c.command(`UID FETCH ${uid} (${items})`);
      expect(r.status, `${m.name}: FETCH failed: ${r.text}`).toBe('OK');
      const fetch = r.untagged.find((u) => u.values[1] === 'FETCH');
      expect(fetch, `${m.name}: no FETCH response`).toBeDefined();
      const got = fetchItems(fetch!.values);
      for (const p of PROBES) {
        const theirs = canonDovecot(got.get(responseKey(p.item)) ?? null);
        const ours = p.ours(m.raw);
        if (JSON.stringify(theirs) !== JSON.stringify(ours)) {
          differences.add(`${m.name} ${p.item}`);
          details.push(`${m.name} ${p.item}\n  dovecot: ${JSON.stringify(theirs).slice(0, 100000)}\n  imapkit: ${JSON.stringify(ours).slice(0, 100000)}`);
        }
      }
      // BINARY one item per command: Dovecot refuses (NO) or disconnects on undecodable parts
      for (const bp of BINARY_PARTS) {
        const item = `BINARY.PEEK[${bp.join('.')}]`;
        let theirs: string;
        try {
          const b = await c.command(`UID FETCH ${uid} (${item})`);
          if (b.status !== 'OK') theirs = `NO [${b.code ?? ''}]`;
          else {
            const f = b.untagged.find((u) => u.values[1] === 'FETCH');
            theirs = String(canonDovecot(fetchItems(f!.values).get(responseKey(item)) ?? null));
          }
        } catch {
          theirs = 'BYE';
          c = client = await connect();
        }
        const ours = binaryOurs(m.raw, bp);
        if (theirs !== ours) {
          differences.add(`${m.name} ${item}`);
          details.push(`${m.name} ${item}\n  dovecot: ${theirs.slice(0, 300)}\n  imapkit: ${ours.slice(0, 300)}`);
        }
      }
    }
    const expected = documented();
    const undocumented = [...differences].filter((d) => !expected.has(d)).sort();
    const stale = [...expected].filter((d) => !differences.has(d)).sort();
    if (undocumented.length > 0 || stale.length > 0) {
      console.log(details.filter((d) => undocumented.includes(d.split('\n')[0]!)).join('\n'));
      console.log('undocumented differences:\n' + undocumented.map((d) => `- \`${d.replace(' ', '` `')}\``).join('\n'));
    }
    expect({ undocumented, stale }).toEqual({ undocumented: [], stale: [] });
  }, 300_000);
});
