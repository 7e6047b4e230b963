/** The commands `imapkit --help` lists: only ones that work are registered. */
import type { Command } from 'commander';
import { register as serve } from './serve.js';
import { register as user } from './user.js';
import { register as deliver } from './deliver.js';
import { register as importCommand } from './import.js';
import { register as exportCommand } from './export.js';
import { register as proxy } from './proxy.js';
import { register as forward } from './forward.js';
import { register as auth } from './auth.js';
import { register as sync } from './sync.js';

export const commands: Array<(program: Command) => void> = [serve, user, deliver, importCommand, exportCommand, proxy, sync, forward, auth];
