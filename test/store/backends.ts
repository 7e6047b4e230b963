/**
 * The backends the contract suite runs against. A backend is done when it passes
 * test/store/contract.test.ts; add an entry here for each new one.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MailStore } from '../../src/store/contract.js';
import { MemoryStore } from '../../src/store/memory/store.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { MaildirStore } from '../../src/store/maildir/store.js';

/** One backend under test: create() gives a fresh, empty store and a way to remove it. */
export interface Backend {
  name: string;
  create(): Promise<{ store: MailStore; cleanup(): Promise<void> }>;
}

/** Every backend the contract suite runs against. */
export const backends: Backend[] = [
  {
    name: 'memory',
    async create() {
      const store = new MemoryStore({ scryptLn: 4 });
      return { store, cleanup: () => store.close() };
    },
  },
  {
    name: 'sqlite',
    async create() {
      const dir = await mkdtemp(join(tmpdir(), 'imapkit-sqlite-'));
      const store = new SqliteStore(join(dir, 'mail.sqlite'), { scryptLn: 4 });
      return {
        store,
        async cleanup() {
          await store.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  { name: 'maildir', async create() { const dir = await mkdtemp(join(tmpdir(), 'imapkit-maildir-')); const store = new MaildirStore({ path: join(dir, '%u', 'Maildir'), rescanIntervalMs: 200 }); return { store, async cleanup() { await store.close(); await rm(dir, { recursive: true, force: true }); } }; } },
];
