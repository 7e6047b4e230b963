/**
 * The `imapkit sync` command on its own, for the interop tests while src/cli/commands.ts does not
 * register it yet (test/interop/sync-helpers.ts prefers src/cli/main.ts once it does).
 */
import { Command } from 'commander';
import { register } from '../../src/cli/sync.js';

const program = new Command().name('imapkit');
register(program);
await program.parseAsync(process.argv);
