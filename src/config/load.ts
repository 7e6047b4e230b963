/**
 * Loads a config file (TOML, or an ES module exporting the config as default) and validates it
 * with a zod schema; every error names the file, the key and what was expected.
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import type { z } from 'zod';

/** A config problem a user can fix: the message names the file and key. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Read a config file as plain data: `.toml`, or `.js`/`.mjs`/`.ts` modules (their default export). */
export async function readConfigFile(file: string): Promise<unknown> {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.js' || ext === '.mjs' || ext === '.ts' || ext === '.mts') {
    try {
      const mod = (await import(pathToFileURL(path.resolve(file)).href)) as { default?: unknown };
      const value = mod.default;
      return typeof value === 'function' ? await (value as () => unknown)() : value;
    } catch (err) {
      throw new ConfigError(`${file}: cannot load module: ${(err as Error).message}`);
    }
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parseToml(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid TOML: ${(err as Error).message}`);
  }
}

/** Validate data against a schema; errors list each bad key as `file: key: expected ...`. */
export function validateConfig<S extends z.ZodType>(schema: S, data: unknown, file: string): z.infer<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data as z.infer<S>;
  const lines = result.error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
    return `${file}: ${key}: ${issue.message}`;
  });
  throw new ConfigError(lines.join('\n'));
}

/** Read and validate in one step. */
export async function loadConfig<S extends z.ZodType>(schema: S, file: string): Promise<z.infer<S>> {
  return validateConfig(schema, await readConfigFile(file), file);
}
