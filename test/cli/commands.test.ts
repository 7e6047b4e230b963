import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { commandLoaders, commandsFor } from '../../src/cli/commands.js';

const names = (registers: Array<(p: Command) => void>): string[] => {
  const program = new Command();
  for (const r of registers) r(program);
  return program.commands.map((c) => c.name());
};

describe('command loading', () => {
  it('loads only the named command, so its start-up does not pay for the others', async () => {
    expect(names(await commandsFor(['sync', '--config', 'x.toml']))).toEqual(['sync']);
    expect(names(await commandsFor(['serve', '--demo']))).toEqual(['serve']);
  });

  it('loads every command for the top-level help, `help` and unknown names', async () => {
    const all = commandLoaders.map(([n]) => n);
    expect(names(await commandsFor(['--help']))).toEqual(all);
    expect(names(await commandsFor(['help', 'sync']))).toEqual(all);
    expect(names(await commandsFor(['nosuch']))).toEqual(all);
    expect(names(await commandsFor([]))).toEqual(all);
  });
});
