/**
 * Benchmark runner: `npm run bench -- <name>` runs bench/<name>.ts, whose default export runs the
 * benchmark side by side with its peer, prints the figures and ratios, and returns them; the
 * result is kept in bench/results/<name>.json. Benchmarks are never part of `npm test`.
 */
import { execFileSync } from 'node:child_process';
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const name = process.argv[2];
if (!name || !/^[a-z0-9-]+$/.test(name)) {
  console.error('usage: npm run bench -- <name>   (e.g. mime, server, maildir, sync, forward, proxy)');
  process.exit(64);
}
// Benchmarks run imapkit as users do, from the compiled dist/ (`npx imapkit`): build it first.
console.log('building dist/ (npm run build) ...');
execFileSync('npm', ['run', '--silent', 'build'], { cwd: path.join(here, '..'), stdio: 'inherit' });
const mod = (await import(path.join(here, `${name}.ts`))) as { default: (args: string[]) => Promise<unknown> };
const started = new Date();
const result = await mod.default(process.argv.slice(3));
const record = {
  benchmark: name,
  date: started.toISOString(),
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, platform: `${os.platform()} ${os.release()}` },
  result,
};
await mkdir(path.join(here, 'results'), { recursive: true });
await writeFile(path.join(here, 'results', `${name}.json`), JSON.stringify(record, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
console.log(`\nsaved bench/results/${name}.json`);
