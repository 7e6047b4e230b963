/** A stand-in for src/cli/main.ts until `forward` is registered there: `node --import tsx test/forward/cli-entry.ts forward ...`. */
import { Command } from 'commander';
import { register as registerForward } from '../../src/cli/forward.js';
import { register as registerAuth } from '../../src/cli/auth.js';

const program = new Command().name('imapkit');
registerForward(program);
registerAuth(program);
await program.parseAsync(process.argv);
