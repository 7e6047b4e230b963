/**
 * Command parser throughput: a deterministic recorded client stream of ~20 MB (LOGIN, SELECT,
 * FETCH with many items, UID SEARCH, STORE, APPEND with literals of a few KB), fed to the
 * CommandParser in 64 KiB chunks as a socket would deliver it. Side by side: imapflow's own
 * stream framer and tokenizer (ImapStream + parser) on the same bytes; it yields token lists, not
 * a command AST, so it is a reference point rather than a like-for-like peer.
 */
import { CommandParser } from '../src/protocol/parser.js';

const TARGET_BYTES = 20 * 1024 * 1024;
const CHUNK = 64 * 1024;
const MB = 1024 * 1024;

// Deterministic PRNG (mulberry32) so every run times the same bytes.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = 'the quarterly report attached please review meeting agenda lunch budget draft invoice shipping update'.split(' ');

function message(rnd: () => number, i: number): Buffer {
  const size = 2048 + Math.floor(rnd() * 4096);
  const head =
    `From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: report ${i}\r\n` +
    `Date: Thu, 14 Mar 2024 10:20:30 +0100\r\nMessage-ID: <${i}@example.org>\r\nMIME-Version: 1.0\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n\r\n';
  const lines: string[] = [head];
  let n = head.length;
  while (n < size) {
    const words: string[] = [];
    for (let w = 0; w < 10; w++) words.push(WORDS[Math.floor(rnd() * WORDS.length)]!);
    const line = `${words.join(' ')}\r\n`;
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join(''));
}

/** The recorded stream and the number of commands in it. */
export function buildStream(target = TARGET_BYTES): { data: Buffer; commands: number } {
  const rnd = prng(42);
  const parts: Buffer[] = [];
  let bytes = 0;
  let commands = 0;
  const add = (s: string | Buffer): void => {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    parts.push(b);
    bytes += b.length;
  };
  for (let i = 1; bytes < target; i++) {
    const t = `s${i}`;
    add(`${t}a LOGIN user${i}@example.org "pass word ${i}"\r\n`);
    add(`${t}b SELECT INBOX (CONDSTORE)\r\n`);
    add(
      `${t}c UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE ` +
        'BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID References In-Reply-To)] MODSEQ) (CHANGEDSINCE 12345)\r\n',
    );
    add(`${t}d UID SEARCH RETURN (ALL COUNT) CHARSET UTF-8 OR (FROM "alice" SINCE 1-Feb-2024) (SUBJECT "report ${i}" UNSEEN) NOT DELETED\r\n`);
    add(`${t}e UID STORE ${i}:${i + 50} +FLAGS.SILENT (\\Seen $Forwarded)\r\n`);
    add(`${t}f FETCH ${i}:${i + 100} (FLAGS BODY.PEEK[1.2.MIME] BODY[TEXT]<0.2048> BINARY.PEEK[1])\r\n`);
    const msg = message(rnd, i);
    add(`${t}g APPEND INBOX (\\Seen) "14-Mar-2024 10:20:30 +0100" {${msg.length}}\r\n`);
    add(msg);
    add('\r\n');
    add(`${t}h NOOP\r\n`);
    commands += 8;
  }
  return { data: Buffer.concat(parts, bytes), commands };
}

function runOurs(data: Buffer): { commands: number; errors: number; ms: number } {
  const started = process.hrtime.bigint();
  const p = new CommandParser();
  let commands = 0;
  let errors = 0;
  for (let off = 0; off < data.length; off += CHUNK) {
    p.push(data.subarray(off, Math.min(off + CHUNK, data.length)));
    for (let e = p.next(); e; e = p.next()) {
      if (e.kind === 'command') commands++;
      else if (e.kind === 'error') errors++;
    }
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { commands, errors, ms };
}

interface PeerItem {
  payload: Buffer;
  literals: Buffer[];
  next: () => void;
}

async function runPeer(data: Buffer): Promise<{ commands: number; errors: number; ms: number } | null> {
  let ImapStream: new (opts: object) => NodeJS.ReadWriteStream;
  let parse: (payload: Buffer, opts: { literals: Buffer[] }) => Promise<unknown>;
  try {
    const streamMod = (await import('imapflow/lib/handler/imap-stream.js')) as unknown as { ImapStream: typeof ImapStream };
    const parserMod = (await import('imapflow/lib/handler/imap-parser.js')) as unknown as { default: typeof parse };
    ImapStream = streamMod.ImapStream;
    parse = parserMod.default;
  } catch {
    return null;
  }
  const started = process.hrtime.bigint();
  const stream = new ImapStream({ logger: false, maxLiteralSize: 64 * MB });
  let commands = 0;
  let errors = 0;
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (item: PeerItem) => {
      parse(item.payload, { literals: item.literals })
        .then(() => commands++, () => errors++)
        .finally(() => item.next());
    });
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  for (let off = 0; off < data.length; off += CHUNK) {
    const ok = stream.write(data.subarray(off, Math.min(off + CHUNK, data.length)));
    if (!ok) await new Promise((r) => stream.once('drain', r));
  }
  stream.end();
  await done;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { commands, errors, ms };
}

/** Time the parser on the recorded stream (best of three after a warm-up). */
export async function parserThroughput(): Promise<{ mbPerSec: number; commandsPerSec: number }> {
  const { data, commands } = buildStream();
  runOurs(data);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const r = runOurs(data);
    if (r.errors !== 0 || r.commands !== commands) throw new Error(`parser-stream: ${r.errors} errors, ${r.commands}/${commands} commands`);
    best = Math.min(best, r.ms);
    await new Promise((r) => setImmediate(r));
  }
  return { mbPerSec: data.length / MB / (best / 1000), commandsPerSec: commands / (best / 1000) };
}

/** `npm run bench -- parser-stream`: our parser, then imapflow's tokenizer on the same stream. */
export default async function (): Promise<unknown> {
  const { data, commands } = buildStream();
  const ours = await parserThroughput();
  console.log(`stream: ${(data.length / MB).toFixed(1)} MiB, ${commands} commands`);
  console.log(`imapkit CommandParser: ${ours.mbPerSec.toFixed(1)} MiB/s, ${Math.round(ours.commandsPerSec)} commands/s`);
  let peer: { mbPerSec: number; commandsPerSec: number; errors: number } | null = null;
  await runPeer(data); // warm-up
  const p = await runPeer(data);
  if (p) {
    peer = { mbPerSec: data.length / MB / (p.ms / 1000), commandsPerSec: p.commands / (p.ms / 1000), errors: p.errors };
    console.log(`imapflow ImapStream+parser (tokens only): ${peer.mbPerSec.toFixed(1)} MiB/s, ${Math.round(peer.commandsPerSec)} commands/s, ${p.errors} errors`);
    console.log(`ratio (imapkit / imapflow): ${(ours.mbPerSec / peer.mbPerSec).toFixed(2)}x`);
  } else {
    console.log('imapflow tokenizer not importable: peer skipped');
  }
  return { streamBytes: data.length, commands, ...ours, peer };
}
