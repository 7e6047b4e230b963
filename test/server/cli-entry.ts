/** A command line with just serve and user, for spawning in cli.test.ts (commands.ts is the lead's). */
import { Command } from 'commander';
import { register as registerServe } from '../../src/cli/serve.js';
import { register as registerUser } from '../../src/cli/user.js';

const program = new Command().name('imapkit');
registerServe(program);
registerUser(program);
await program.parseAsync(process.argv);
