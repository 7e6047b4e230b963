/**
 * The persisted form of the structure cache (the on-disk half of cache.ts, as Dovecot keeps
 * ENVELOPE and BODYSTRUCTURE in dovecot.index.cache): the ENVELOPE, BODYSTRUCTURE and BODY answers
 * of one message, computed once when the server APPENDs it and stored with the message through the
 * optional store capability NewMessage.structure / MailboxHandle.structures. The store keeps these
 * bytes opaque; only this module reads or writes them.
 *
 * Format: the ASCII prefix `IKS<version>\n`, then ENVELOPE, BODYSTRUCTURE and BODY in that order,
 * then optionally the message's search layout (search/layout.ts; kind `l`, UTF-8 JSON, so a first
 * SEARCH after a restart parses nothing either), each as one kind byte and a 4-byte big-endian
 * length, then that many bytes: kind `w` is the wire
 * form (printable ASCII, the common case: the in-memory cache keeps it as one atom, and reading it
 * back is one latin1 decode, no MIME work); kind `j` is UTF-8 JSON of a ResponseValue tree (toJson),
 * for answers holding literals or 8-bit text, whose encoding depends on the session. Bump
 * STRUCTURE_FORMAT whenever this layout, or what the MIME layer answers for ENVELOPE or
 * BODYSTRUCTURE, changes: entries of another version read as missing and are recomputed.
 */
import { indexMessage, type Cte, type MessageIndex } from '../../mime/index.js';
import { atom, checkedAtom, type ResponseValue } from '../../protocol/values.js';
import { structureValue } from './build.js';
import { compact, type CachedItem } from './cache.js';
import { layoutOf, type SearchLayout } from '../search/layout.js';

/** Version of the persisted layout and of the answers in it. */
export const STRUCTURE_FORMAT = 2;

const PREFIX = Buffer.from(`IKS${STRUCTURE_FORMAT}\n`, 'latin1');

/** The cached items, in stored order. */
const ITEMS: readonly CachedItem[] = ['ENVELOPE', 'BODYSTRUCTURE', 'BODY'];
const WIRE = 0x77; // 'w'
const JSON_TREE = 0x6a; // 'j'
const LAYOUT = 0x6c; // 'l'
const PRINTABLE = /^[\x20-\x7e]*$/;

/** The answers of one message, ready for the FETCH builder. */
export type StructureAnswers = Record<CachedItem, ResponseValue>;

/** What is computed for a message at APPEND: its answers, and its search layout. */
export interface ComputedStructure {
  answers: StructureAnswers;
  layout: SearchLayout;
}

/** Computes the three answers and the search layout of a message (parsing it unless `index` is given). */
export function computeAnswers(raw: Buffer, index: MessageIndex = indexMessage(raw)): ComputedStructure {
  return {
    answers: {
      ENVELOPE: compact(structureValue('ENVELOPE', raw, index), false).stored,
      BODYSTRUCTURE: compact(structureValue('BODYSTRUCTURE', raw, index), false).stored,
      BODY: compact(structureValue('BODY', raw, index), false).stored,
    },
    layout: layoutOf(raw, index),
  };
}

/** The persisted bytes of a message's answers (and layout); undefined if one cannot be stored (never for MIME output). */
export function encodeAnswers(answers: StructureAnswers, layout?: SearchLayout): Buffer | undefined {
  const parts: Buffer[] = [PREFIX];
  try {
    for (const item of ITEMS) {
      const v = answers[item];
      const wire = v !== null && typeof v === 'object' && 'atom' in v && PRINTABLE.test(v.atom);
      const body = wire ? Buffer.from(v.atom, 'latin1') : Buffer.from(JSON.stringify(toJson(v)), 'utf8');
      const head = Buffer.allocUnsafe(5);
      head[0] = wire ? WIRE : JSON_TREE;
      head.writeUInt32BE(body.length, 1);
      parts.push(head, body);
    }
    if (layout) {
      const body = Buffer.from(JSON.stringify([layout.plainHeaders, layout.otherHeaders, layout.plainBodies, layout.otherBodies.map((b) => [b.start, b.end, b.cte, b.charset])]), 'utf8');
      const head = Buffer.allocUnsafe(5);
      head[0] = LAYOUT;
      head.writeUInt32BE(body.length, 1);
      parts.push(head, body);
    }
  } catch {
    return undefined;
  }
  return Buffer.concat(parts);
}

/** Parses and encodes a message for NewMessage.structure; undefined when that fails (the server then parses at FETCH). */
export function structureOf(raw: Buffer): Buffer | undefined {
  try {
    const c = computeAnswers(raw);
    return encodeAnswers(c.answers, c.layout);
  } catch {
    return undefined;
  }
}

/** The answers stored in `blob`, or undefined when it is of another version or damaged. */
export function decodeAnswers(blob: Buffer): StructureAnswers | undefined {
  if (blob.length <= PREFIX.length || !blob.subarray(0, PREFIX.length).equals(PREFIX)) return undefined;
  try {
    const out: Partial<StructureAnswers> = {};
    let at = PREFIX.length;
    for (const item of ITEMS) {
      if (at + 5 > blob.length) return undefined;
      const kind = blob[at];
      const len = blob.readUInt32BE(at + 1);
      const start = at + 5;
      at = start + len;
      if (at > blob.length) return undefined;
      if (kind === WIRE) {
        const text = blob.toString('latin1', start, at);
        if (!PRINTABLE.test(text)) return undefined;
        out[item] = checkedAtom(text);
      } else if (kind === JSON_TREE) {
        out[item] = fromJson(JSON.parse(blob.toString('utf8', start, at)));
      } else {
        return undefined;
      }
    }
    // A layout frame may follow (decodeLayout reads it).
    return at === blob.length || (at + 5 <= blob.length && blob[at] === LAYOUT && at + 5 + blob.readUInt32BE(at + 1) === blob.length) ? (out as StructureAnswers) : undefined;
  } catch {
    return undefined;
  }
}

const CTES: readonly Cte[] = ['7bit', 'binary', 'base64', 'quoted-printable', 'unknown'];

/** The search layout stored in `blob`, or undefined when it has none, is of another version or is damaged. */
export function decodeLayout(blob: Buffer): SearchLayout | undefined {
  if (blob.length <= PREFIX.length || !blob.subarray(0, PREFIX.length).equals(PREFIX)) return undefined;
  try {
    let at = PREFIX.length;
    for (let i = 0; i < ITEMS.length; i++) {
      if (at + 5 > blob.length) return undefined;
      at += 5 + blob.readUInt32BE(at + 1);
    }
    if (at + 5 > blob.length || blob[at] !== LAYOUT) return undefined;
    const end = at + 5 + blob.readUInt32BE(at + 1);
    if (end !== blob.length) return undefined;
    const j: unknown = JSON.parse(blob.toString('utf8', at + 5, end));
    if (!Array.isArray(j) || j.length !== 4) return undefined;
    const [h, H, b, B] = j as unknown[];
    const pairs = (x: unknown): x is number[] => Array.isArray(x) && x.length % 2 === 0 && x.every((n, i) => Number.isSafeInteger(n) && n >= 0 && (i % 2 === 0 || n >= (x[i - 1] as number)));
    if (!pairs(h) || !pairs(H) || !pairs(b) || !Array.isArray(B)) return undefined;
    const otherBodies: SearchLayout['otherBodies'] = [];
    for (const e of B) {
      if (!Array.isArray(e) || e.length !== 4 || !pairs([e[0], e[1]]) || !CTES.includes(e[2] as Cte) || (e[3] !== null && typeof e[3] !== 'string')) return undefined;
      otherBodies.push({ start: e[0] as number, end: e[1] as number, cte: e[2] as Cte, charset: e[3] as string | null });
    }
    return { plainHeaders: h, otherHeaders: H, plainBodies: b, otherBodies };
  } catch {
    return undefined;
  }
}

/**
 * JSON form of a value: null, numbers, strings and arrays as themselves; {"a":text} an atom,
 * {"l":latin1,"b":1?} a literal, {"j":[...]} an adjacent list, {"n":digits} a bigint.
 */
function toJson(v: ResponseValue): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'number') return v;
  if (typeof v === 'bigint') return { n: v.toString() };
  if (Array.isArray(v)) return v.map(toJson);
  if ('atom' in v) return { a: v.atom };
  if ('adjacent' in v) return { j: v.adjacent.map(toJson) };
  if ('literal' in v) return v.binary ? { l: v.literal.toString('latin1'), b: 1 } : { l: v.literal.toString('latin1') };
  throw new Error('a streamed literal cannot be stored');
}

/** The inverse of toJson; throws on anything toJson does not produce (or an atom that could break a line). */
function fromJson(j: unknown): ResponseValue {
  if (j === null || typeof j === 'string') return j;
  if (typeof j === 'number') {
    if (!Number.isSafeInteger(j) || j < 0) throw new Error('bad number');
    return j;
  }
  if (Array.isArray(j)) return j.map(fromJson);
  if (typeof j === 'object') {
    const o = j as Record<string, unknown>;
    if (typeof o.a === 'string') {
      if (o.a.indexOf('\r') >= 0 || o.a.indexOf('\n') >= 0) throw new Error('bad atom');
      return atom(o.a);
    }
    if (typeof o.l === 'string') return o.b === 1 ? { literal: Buffer.from(o.l, 'latin1'), binary: true } : { literal: Buffer.from(o.l, 'latin1') };
    if (Array.isArray(o.j)) return { adjacent: o.j.map(fromJson) };
    if (typeof o.n === 'string' && /^\d+$/.test(o.n)) return BigInt(o.n);
  }
  throw new Error('bad stored value');
}
