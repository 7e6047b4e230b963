/**
 * MIME indexer throughput on one core: index the deterministic corpus (test/fixtures/corpus.ts)
 * several times and keep the best run; then ENVELOPE + BODYSTRUCTURE generation, BODY[1] and
 * BINARY[1] extraction from the ready indexes. There is no in-process peer for a byte-offset MIME
 * indexer, so the figures stand alone; when bench/parser-stream.ts is present its command-parser
 * throughput is reported alongside (same machine, same run).
 *
 * Usage: npm run bench -- mime [count] [runs]   (defaults: 2000 messages, best of 5)
 */
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCorpus } from '../test/fixtures/corpus.js';
import { bodyStructure, decodePart, envelope, extractSection, indexMessage, type MessageIndex } from '../src/mime/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MB = 1e6;

interface Rate {
  bestMs: number;
  mbPerSec: number;
  msgsPerSec: number;
}

/** Best-of-`runs` timing of `fn` over a corpus of `bytes` bytes and `count` messages. */
function best(runs: number, bytes: number, count: number, fn: () => void): Rate {
  let bestMs = Infinity;
  for (let r = 0; r < runs; r++) {
    const t = process.hrtime.bigint();
    fn();
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (ms < bestMs) bestMs = ms;
  }
  return { bestMs: round(bestMs), mbPerSec: round(bytes / MB / (bestMs / 1000)), msgsPerSec: Math.round(count / (bestMs / 1000)) };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Optional: the protocol parser benchmark's figures, when that file exists. */
async function parserFigures(): Promise<object | null> {
  try {
    const mod = (await import(path.join(here, 'parser-stream.ts'))) as { parserThroughput?: () => Promise<object> };
    return typeof mod.parserThroughput === 'function' ? await mod.parserThroughput() : null;
  } catch {
    return null;
  }
}

/** Run the benchmark; returns the figures (the runner saves them as bench/results/mime.json). */
export default async function (args: string[] = []): Promise<object> {
  const count = Number(args[0] ?? 2000);
  const runs = Number(args[1] ?? 5);
  const tGen = process.hrtime.bigint();
  const corpus = generateCorpus(count);
  const genMs = Number(process.hrtime.bigint() - tGen) / 1e6;
  const bytes = corpus.reduce((n, m) => n + m.raw.length, 0);
  console.log(`corpus: ${count} messages, ${(bytes / MB).toFixed(1)} MB (generated in ${genMs.toFixed(0)} ms)`);

  // warm up the JIT before timing
  for (const m of corpus.slice(0, 200)) indexMessage(m.raw);

  let sink = 0;
  const index = best(runs, bytes, count, () => {
    for (const m of corpus) sink += indexMessage(m.raw).partCount;
  });
  const indexes: MessageIndex[] = corpus.map((m) => indexMessage(m.raw));
  const structure = best(runs, bytes, count, () => {
    for (let i = 0; i < corpus.length; i++) {
      const raw = corpus[i]!.raw;
      sink += envelope(raw, indexes[i]!).length + bodyStructure(raw, indexes[i]!, true).length;
    }
  });
  const sections = best(runs, bytes, count, () => {
    for (let i = 0; i < corpus.length; i++) {
      const raw = corpus[i]!.raw;
      sink += extractSection(raw, indexes[i]!, { part: [1] })?.length ?? 0;
      const b = decodePart(raw, indexes[i]!, [1]);
      sink += typeof b === 'string' || b === null ? 0 : b.length;
    }
  });
  const parser = await parserFigures();
  if (sink === 0) console.log('(no work done?)');

  const rows: Array<[string, Rate]> = [
    ['index (indexMessage)', index],
    ['ENVELOPE + BODYSTRUCTURE', structure],
    ['BODY[1] + BINARY[1]', sections],
  ];
  console.log('\n| step | best ms | MB/s | messages/s |\n| --- | ---: | ---: | ---: |');
  for (const [name, r] of rows) console.log(`| ${name} | ${r.bestMs} | ${r.mbPerSec} | ${r.msgsPerSec} |`);
  if (parser) console.log(`\nprotocol command parser (bench/parser-stream.ts): ${JSON.stringify(parser)}`);
  const target = index.mbPerSec >= 100 ? 'met' : 'NOT met';
  console.log(`\nindexing target >= 100 MB/s on one core: ${target} (${index.mbPerSec} MB/s)`);

  const result = {
    corpus: { messages: count, megabytes: round(bytes / MB), generateMs: Math.round(genMs) },
    runs,
    index,
    envelopeBodystructure: structure,
    bodyAndBinary: sections,
    parser,
    targetMbPerSec: 100,
    targetMet: index.mbPerSec >= 100,
  };
  const md = [
    '# MIME benchmark',
    '',
    `Corpus: ${count} generated messages (test/fixtures/corpus.ts), ${(bytes / MB).toFixed(1)} MB; best of ${runs} runs, one core, ${process.version}.`,
    '',
    '| step | best ms | MB/s | messages/s |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map(([name, r]) => `| ${name} | ${r.bestMs} | ${r.mbPerSec} | ${r.msgsPerSec} |`),
    '',
    `Indexing target (>= 100 MB/s): ${target}.`,
    parser ? `\nProtocol command parser (bench/parser-stream.ts): ${JSON.stringify(parser)}` : '',
    '',
  ].join('\n');
  await mkdir(path.join(here, 'results'), { recursive: true });
  await writeFile(path.join(here, 'results', 'mime.md'), md);
  return result;
}
