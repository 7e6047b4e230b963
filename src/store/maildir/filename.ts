/**
 * Maildir file names: `<unique>[,S=<size>][,W=<vsize>][:2,<flags>]`. The base (everything before
 * ':') names the message for life; the info part after `:2,` holds flag letters in ASCII order:
 * D \Draft, F \Flagged, P passed, R \Answered, S \Seen, T \Deleted, and a-z keywords whose names
 * live in dovecot-keywords. Letters we don't understand are kept when we rewrite the flags.
 */
import os from 'node:os';
import { bareLfCount, toCrlf } from '../../mime/crlf.js';

export { toCrlf };

/** System flags and their Maildir letters. */
export const SYSTEM_FLAG_LETTERS: ReadonlyArray<readonly [string, string]> = [
  ['\\Draft', 'D'],
  ['\\Flagged', 'F'],
  ['\\Answered', 'R'],
  ['\\Seen', 'S'],
  ['\\Deleted', 'T'],
];
const LETTER_TO_FLAG = new Map(SYSTEM_FLAG_LETTERS.map(([f, l]) => [l, f]));
const FLAG_TO_LETTER = new Map(SYSTEM_FLAG_LETTERS.map(([f, l]) => [f.toLowerCase(), l]));

/** A parsed file name. */
export interface ParsedName {
  /** The part before ':' (the uidlist key). */
  base: string;
  /** Flag letters after `:2,`, or '' when the name has no (version 2) info. */
  letters: string;
  /** True when the name carries a `:2,` info part. */
  hasInfo: boolean;
  /** S= size from the base (file size in bytes), if present. */
  fileSize?: number;
  /** W= size from the base (size with CRLF line ends, i.e. RFC822.SIZE), if present. */
  vsize?: number;
}

/** Split a Maildir file name into base, flag letters and the S=/W= sizes. */
export function parseName(name: string): ParsedName {
  const colon = name.indexOf(':');
  const base = colon < 0 ? name : name.slice(0, colon);
  let letters = '';
  let hasInfo = false;
  if (colon >= 0 && name.charCodeAt(colon + 1) === 50 /* 2 */ && name.charCodeAt(colon + 2) === 44 /* , */) {
    hasInfo = true;
    letters = name.slice(colon + 3);
  }
  const out: ParsedName = { base, letters, hasInfo };
  // Extra fields follow the unique part as ",S=<n>" and ",W=<n>" (indexOf: this runs for every file of a folder).
  const s = sizeField(base, ',S=');
  if (s !== undefined) out.fileSize = s;
  const w = sizeField(base, ',W=');
  if (w !== undefined) out.vsize = w;
  return out;
}

function sizeField(base: string, key: string): number | undefined {
  const at = base.indexOf(key);
  if (at < 0) return undefined;
  let end = at + 3;
  while (end < base.length && base.charCodeAt(end) >= 48 && base.charCodeAt(end) <= 57) end++;
  if (end === at + 3 || (end < base.length && base[end] !== ',')) return undefined;
  return Number(base.slice(at + 3, end));
}

/** parseName(name.slice(from)).vsize without building the rest (a cold sync asks it of every file). */
export function vsizeOf(name: string, from = 0): number | undefined {
  return sizeOf(name, ',W=', from);
}

/** parseName(name.slice(from)).fileSize without building the rest. */
export function fileSizeOf(name: string, from = 0): number | undefined {
  return sizeOf(name, ',S=', from);
}

function sizeOf(name: string, key: string, from: number): number | undefined {
  let colon = name.indexOf(':', from);
  if (colon < 0) colon = name.length;
  const at = name.indexOf(key, from);
  if (at < 0 || at + 3 > colon) return undefined;
  let end = at + 3;
  let n = 0;
  for (let c = name.charCodeAt(end); end < colon && c >= 48 && c <= 57; c = name.charCodeAt(++end)) n = n * 10 + (c - 48);
  if (end === at + 3 || (end < colon && name.charCodeAt(end) !== 44)) return undefined;
  return end - at - 3 > 15 ? Number(name.slice(at + 3, end)) : n;
}

/** IMAP flags of a letter string, given the keyword table (index 0 = 'a'). Unknown keyword letters are skipped. */
export function lettersToFlags(letters: string, keywords: ReadonlyArray<string | undefined>): string[] {
  const flags: string[] = [];
  for (const ch of letters) {
    const sys = LETTER_TO_FLAG.get(ch);
    if (sys) {
      if (!flags.includes(sys)) flags.push(sys);
      continue;
    }
    if (ch >= 'a' && ch <= 'z') {
      const kw = keywords[ch.charCodeAt(0) - 97];
      if (kw && !flags.includes(kw)) flags.push(kw);
    }
  }
  return flags;
}

/** Letters we keep untouched when rewriting flags: anything not a system flag letter nor a-z (e.g. P). */
export function preservedLetters(letters: string): string {
  let out = '';
  for (const ch of letters) if (!LETTER_TO_FLAG.has(ch) && !(ch >= 'a' && ch <= 'z') && !out.includes(ch)) out += ch;
  return out;
}

/** The Maildir letter of a system flag (case-insensitive), or undefined for keywords. */
export function systemLetter(flag: string): string | undefined {
  return FLAG_TO_LETTER.get(flag.toLowerCase());
}

/** Sort letters in ASCII order without duplicates, as the Maildir spec requires. */
export function sortLetters(letters: string): string {
  return [...new Set(letters)].sort().join('');
}

/** Full file name from a base and letters; `inNew` names have no info part. */
export function buildName(base: string, letters: string, inNew: boolean): string {
  return inNew ? base : `${base}:2,${sortLetters(letters)}`;
}

// Maildir's unique part: time, then M<microseconds>P<pid>Q<counter>, then the host with '/' and ':' escaped.
const host = os.hostname().replace(/\//g, '\\057').replace(/:/g, '\\072').replace(/,/g, '\\054') || 'localhost';
let counter = 0;

/** A new base name `<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<vsize>`. */
export function newBaseName(fileSize: number, vsize: number, now = Date.now()): string {
  counter = (counter + 1) % 1_000_000_000;
  const hr = process.hrtime.bigint();
  const usec = Number(hr / 1000n) % 1_000_000;
  return `${Math.floor(now / 1000)}.M${usec}P${process.pid}Q${counter}.${host},S=${fileSize},W=${vsize}`;
}

/** Size of the bytes once every bare LF became CRLF (what IMAP reports as RFC822.SIZE). */
export function crlfSize(data: Buffer): number {
  return data.length + bareLfCount(data);
}

/**
 * The bytes IMAP gets for a file: a file without any CR (LF line ends, as Dovecot and most MDAs
 * store mail) is served with CRLF, as Dovecot serves it; anything else exactly as stored, so
 * binary content appended through imapkit round-trips byte for byte.
 */
export function servedBytes(file: Buffer): Buffer {
  return file.includes(13) ? file : toCrlf(file);
}

/** Length of servedBytes(file) (RFC822.SIZE, and the W= of names we write). */
export function servedSize(file: Buffer): number {
  return file.includes(13) ? file.length : crlfSize(file);
}
