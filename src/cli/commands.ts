/** The commands `imapkit --help` lists: only ones that work are registered. */
import type { Command } from 'commander';
import { register as serve } from './serve.js';
import { register as user } from './user.js';
import { register as proxy } from './proxy.js';

export const commands: Array<(program: Command) => void> = [serve, user, proxy];
