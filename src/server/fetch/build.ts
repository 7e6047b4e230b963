/**
 * Building FETCH responses (RFC 3501 6.4.5 / 7.4.2, RFC 9051, RFC 3516 BINARY, RFC 7162 MODSEQ,
 * RFC 8474 OBJECTID, RFC 8514 SAVEDATE). A plan is made once per command: which items, in what
 * order, and what each message needs (metadata only, the raw bytes, or the parsed MIME index),
 * so FETCH FLAGS never touches message bytes and FETCH BODY.PEEK[] never parses them.
 */
import type { FetchItem } from '../../protocol/ast.js';
import { atom, type ResponseValue } from '../../protocol/values.js';
import type { MessageMeta } from '../../store/contract.js';
import { bodyStructure, decodePart, envelope, extractSection, type MessageIndex } from '../../mime/index.js';
import type { CachedItem } from './cache.js';
import { flagValues, formatInternalDate, objectId, sectionName } from './format.js';

/** What one FETCH command asks for, prepared once. */
export interface FetchPlan {
  /** Items in response order, without duplicates (UID first for UID FETCH). */
  items: PlannedItem[];
  /** Some item other than ENVELOPE/BODYSTRUCTURE/BODY needs the parsed MIME index. */
  needIndex: boolean;
  /**
   * Some item needs the top-level header and nothing else (RFC822.HEADER, BODY[HEADER],
   * BODY[HEADER.FIELDS (...)]): a header-only index will do, unless needIndex or needRaw is set.
   */
  needHeader: boolean;
  /** ENVELOPE/BODYSTRUCTURE/BODY asked for: they need the index unless the structure cache has them. */
  structure: CachedItem[];
  /** Some item needs the message bytes (implied by needIndex). */
  needRaw: boolean;
  /** Some item is a non-PEEK body fetch: \Seen is set implicitly (RFC 3501 6.4.5). */
  setsSeen: boolean;
  /** FLAGS is among the items. */
  flags: boolean;
  /** UID is among the items. */
  uid: boolean;
  /** MODSEQ is among the items. */
  modseq: boolean;
}

/** One item with its response name worked out. */
export interface PlannedItem {
  item: FetchItem;
  /** The response item name: "FLAGS", "BODY[1.TEXT]<0>", "BINARY.SIZE[2]". */
  name: string;
}

/**
 * Message data handed to the builder; index only when the plan needs it. With a header-only index
 * (MessageIndex.headerOnly, plan.needHeader) `raw` may be just a prefix holding the whole header.
 */
export interface MessageSource {
  raw: Buffer;
  index?: MessageIndex;
}

/** Builds the plan: dedupes items by response name, puts UID first for UID FETCH (RFC 3501 6.4.8). */
export function planFetch(items: readonly FetchItem[], uid: boolean, changedSince: boolean): FetchPlan {
  const plan: FetchPlan = { items: [], needIndex: false, needHeader: false, structure: [], needRaw: false, setsSeen: false, flags: false, uid: false, modseq: false };
  const names = new Set<string>();
  const add = (item: FetchItem): void => {
    const name = responseName(item);
    if ('peek' in item && !item.peek) plan.setsSeen = true;
    if (item.type === 'RFC822' || item.type === 'RFC822.TEXT') plan.setsSeen = true;
    if (names.has(name)) return;
    names.add(name);
    plan.items.push({ item, name });
    if (item.type === 'FLAGS') plan.flags = true;
    if (item.type === 'UID') plan.uid = true;
    if (item.type === 'MODSEQ') plan.modseq = true;
    switch (item.type) {
      case 'ENVELOPE':
      case 'BODYSTRUCTURE':
      case 'BODY':
        plan.structure.push(item.type);
        break;
      case 'RFC822.HEADER':
        plan.needHeader = true;
        break;
      case 'RFC822.TEXT':
      case 'BINARY.SIZE':
        plan.needIndex = true;
        break;
      case 'BODY[]':
        if (item.section.part.length === 0 && item.section.text === undefined) plan.needRaw = true;
        else if (item.section.part.length === 0 && item.section.text?.startsWith('HEADER')) plan.needHeader = true;
        else plan.needIndex = true;
        break;
      case 'BINARY[]':
        // Even BINARY[] (the whole message) decodes every leaf, so it needs the MIME tree.
        plan.needIndex = true;
        break;
      case 'RFC822':
        plan.needRaw = true;
        break;
      default:
        break;
    }
  };
  if (uid) add({ type: 'UID' });
  for (const item of items) add(item);
  // RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ in every response.
  if (changedSince && !plan.modseq) add({ type: 'MODSEQ' });
  if (plan.needIndex) plan.needRaw = true;
  return plan;
}

/** The name an item has in a FETCH response (partial shows only its origin octet). */
export function responseName(item: FetchItem): string {
  switch (item.type) {
    case 'BODY[]':
      return `BODY[${sectionName(item.section)}]${item.partial ? `<${item.partial.offset}>` : ''}`;
    case 'BINARY[]':
      return `BINARY[${item.part.join('.')}]${item.partial ? `<${item.partial.offset}>` : ''}`;
    case 'BINARY.SIZE':
      return `BINARY.SIZE[${item.part.join('.')}]`;
    default:
      return item.type;
  }
}

/** Result of building one message's FETCH data. */
export type BuiltFetch = { values: ResponseValue[]; bytes: number } | { error: 'UNKNOWN-CTE' };

/** Applies `<offset.length>` (RFC 3501 6.4.5): past the end gives an empty string. */
function applyPartial(buf: Buffer, partial: { offset: number; length: number } | undefined): Buffer {
  if (!partial) return buf;
  if (partial.offset >= buf.length) return buf.subarray(0, 0);
  return buf.subarray(partial.offset, partial.offset + partial.length);
}

/**
 * The message as served for BODY[] / RFC822: bare LFs as CRLF and NUL as 0x80 (as Dovecot does).
 * Without an index the raw bytes are already clean: the command checked size and NULs first.
 */
function wholeMessage(src: MessageSource): Buffer {
  if (src.index) return extractSection(src.raw, src.index, { part: [] }) ?? src.raw;
  return src.raw;
}

/** The whole-message section BODY[], which raw bytes can serve without a parse. */
function isWhole(item: FetchItem): boolean {
  return item.type === 'BODY[]' && item.section.part.length === 0 && item.section.text === undefined;
}

/** Per-message extras of buildFetch. */
export interface BuildOptions {
  /** An implicit \Seen changed the flags: FLAGS (and UID and MODSEQ under CONDSTORE) are appended. */
  flagsChanged: boolean;
  /** CONDSTORE is active in the session. */
  condstore: boolean;
  /** The message has \Recent in the session (recent.ts). */
  recent?: boolean;
  /** ENVELOPE / BODYSTRUCTURE / BODY from the structure cache, when it had them. */
  cached?: Partial<Record<CachedItem, ResponseValue>>;
  /** Called with each structure value computed here, so the caller can cache it; returns the value to send. */
  computed?: (item: CachedItem, value: ResponseValue) => ResponseValue;
}

/** ENVELOPE, BODYSTRUCTURE or BODY of a parsed message. */
export function structureValue(item: CachedItem, raw: Buffer, index: MessageIndex): ResponseValue {
  if (item === 'ENVELOPE') return envelope(raw, index);
  // A header-only index knows no parts: planFetch/fetchCommand never pair them; a bug otherwise.
  if (index.headerOnly) throw new Error(`FETCH: ${item} needs the full MIME index`);
  return bodyStructure(raw, index, item === 'BODYSTRUCTURE');
}

/** The data items of one message's FETCH response (the parenthesised list). */
export function buildFetch(plan: FetchPlan, meta: MessageMeta, source: MessageSource | undefined, opts: BuildOptions): BuiltFetch {
  const out: ResponseValue[] = [];
  let bytes = 0;
  // The plan guarantees what was loaded; a miss is a bug in planFetch, not a client error.
  const src = (): MessageSource => {
    if (!source) throw new Error('FETCH: message bytes were not loaded');
    return source;
  };
  const idx = (): MessageIndex => {
    if (!source?.index) throw new Error('FETCH: message index was not loaded');
    return source.index;
  };
  for (const { item, name } of plan.items) {
    switch (item.type) {
      case 'UID':
        out.push(atom('UID'), meta.uid);
        break;
      case 'FLAGS':
        out.push(atom('FLAGS'), flagValues(meta.flags, opts.recent));
        break;
      case 'INTERNALDATE':
        out.push(atom('INTERNALDATE'), formatInternalDate(meta.internalDate));
        break;
      case 'RFC822.SIZE':
        out.push(atom('RFC822.SIZE'), meta.size);
        break;
      case 'MODSEQ':
        out.push(atom('MODSEQ'), [meta.modSeq]);
        break;
      case 'EMAILID':
        out.push(atom('EMAILID'), [objectId(meta.emailId)]);
        break;
      case 'THREADID':
        out.push(atom('THREADID'), meta.threadId ? [objectId(meta.threadId)] : null);
        break;
      case 'SAVEDATE':
        out.push(atom('SAVEDATE'), meta.saveDate ? formatInternalDate(meta.saveDate) : null);
        break;
      case 'ENVELOPE':
      case 'BODYSTRUCTURE':
      case 'BODY': {
        let v = opts.cached?.[item.type];
        if (v === undefined) {
          v = structureValue(item.type, src().raw, idx());
          if (opts.computed) v = opts.computed(item.type, v);
        }
        out.push(atom(item.type), v);
        break;
      }
      case 'RFC822': {
        const data = wholeMessage(src());
        out.push(atom('RFC822'), { literal: data });
        bytes += data.length;
        break;
      }
      case 'RFC822.HEADER':
      case 'RFC822.TEXT': {
        const text = item.type === 'RFC822.HEADER' ? 'HEADER' : 'TEXT';
        const data = extractSection(src().raw, idx(), { part: [], text }) ?? Buffer.alloc(0);
        out.push(atom(item.type), { literal: data });
        bytes += data.length;
        break;
      }
      case 'BODY[]': {
        const data = isWhole(item) ? wholeMessage(src()) : extractSection(src().raw, idx(), item.section);
        if (data === null) {
          // A part that does not exist reads as NIL, as in Dovecot.
          out.push(atom(name), null);
        } else {
          const slice = applyPartial(data, item.partial);
          out.push(atom(name), { literal: slice });
          bytes += slice.length;
        }
        break;
      }
      case 'BINARY[]': {
        const data = decodePart(src().raw, idx(), item.part);
        if (data === 'UNKNOWN-CTE') return { error: 'UNKNOWN-CTE' };
        if (data === null) {
          out.push(atom(name), null);
        } else {
          const slice = applyPartial(data, item.partial);
          // RFC 3516 4.3: data holding NUL must go as a binary literal ~{n}.
          out.push(atom(name), { literal: slice, binary: slice.indexOf(0) >= 0 });
          bytes += slice.length;
        }
        break;
      }
      case 'BINARY.SIZE': {
        const data = decodePart(src().raw, idx(), item.part);
        if (data === 'UNKNOWN-CTE') return { error: 'UNKNOWN-CTE' };
        out.push(atom(name), data === null ? 0 : data.length);
        break;
      }
    }
  }
  if (opts.flagsChanged) {
    if (!plan.flags) out.push(atom('FLAGS'), flagValues(meta.flags, opts.recent));
    // RFC 7162 3.1: a FETCH that implicitly set \Seen carries UID and MODSEQ under CONDSTORE.
    if (opts.condstore && !plan.uid) out.push(atom('UID'), meta.uid);
    if (opts.condstore && !plan.modseq) out.push(atom('MODSEQ'), [meta.modSeq]);
  }
  return { values: out, bytes };
}
