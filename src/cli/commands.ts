/** The commands `imapkit --help` lists: only ones that work are registered. */
import type { Command } from 'commander';

export const commands: Array<(program: Command) => void> = [];
