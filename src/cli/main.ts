#!/usr/bin/env node
/** imapkit command line: each command lives in its own module and registers itself here. */
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { commandsFor } from './commands.js';

// Maildir writes fsync many files at once (sync, import, deliver batches); libuv's default of 4
// threads would queue them. Read when the pool first starts, which no import above does.
process.env.UV_THREADPOOL_SIZE ??= '16';

const require = createRequire(import.meta.url);
const pkg = require('../../package.json') as { version: string };

const program = new Command();
program
  .name('imapkit')
  .description('One toolkit for everything around IMAP: server, gateway, proxy, sync, forward.')
  .version(pkg.version);
for (const register of await commandsFor(process.argv.slice(2))) register(program);
program.showHelpAfterError();
await program.parseAsync(process.argv);
