/**
 * SEARCH key evaluation (RFC 3501 6.4.4, RFC 9051 6.4.4, RFC 7162 MODSEQ, RFC 5032 OLDER/YOUNGER,
 * RFC 5182 `$`, RFC 8474 EMAILID/THREADID, RFC 8514 SAVEDATE). Each message is first judged on
 * metadata alone with three-valued logic; only when the answer still depends on a header, body or
 * sent-date key is the message read and parsed, so `UNSEEN` or `UID 1:100 BODY x` touch few bytes.
 */
import type { SearchKey } from '../../protocol/ast.js';
import type { MessageMeta } from '../../store/contract.js';
import { allHeaderText, bodyText, headerValues, indexMessage, type MessageIndex } from '../../mime/index.js';
import type { SelectedMailbox, SessionContext } from '../context.js';
import { BodyReader } from '../fetch/bodies.js';
import { dayAtOffset, localDay, parseHeaderDate, searchDay, type HeaderDate } from './dates.js';
import { contains, fold } from './text.js';
import { fitsIn, layoutCache, layoutContains, layoutOf, type SearchLayout } from './layout.js';
import { StructureReader } from '../fetch/structures.js';
import { cacheKey } from '../fetch/cache.js';

/** What a search found: UIDs in ascending order, and the highest MODSEQ among them when a MODSEQ key was used. */
export interface SearchResult {
  uids: number[];
  /** Metadata of the matches, same order as uids. */
  metas: MessageMeta[];
  /** Set when the criteria held a MODSEQ key (RFC 7162 3.1.5); 0n for an empty result. */
  highestModSeq?: bigint;
}

/** Options for evaluation; `now` (ms) fixes the clock for OLDER/YOUNGER. */
export interface SearchOptions {
  now?: number;
}

/** Messages between yields to the event loop while scanning contents. */
const YIELD_EVERY = 256;

/** Needles the raw-byte path can look for: printable ASCII without ':' (see Content.fastContains). */
const FAST_NEEDLE = /^[\x21-\x39\x3b-\x7e]+$/;

/** Case-insensitive matchers of fast needles, by needle (a search uses one or two). */
const needleRes = new Map<string, RegExp>();

/**
 * A case-insensitive matcher of an ASCII needle. Without the `u` flag, `i` never lets a non-ASCII
 * character match an ASCII one, so on ASCII text it is exactly "lower-cased text contains needle".
 */
function needleRegExp(needle: string): RegExp {
  let re = needleRes.get(needle);
  if (re === undefined) {
    if (needleRes.size >= 64) needleRes.clear();
    re = new RegExp(needle.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&'), 'i');
    needleRes.set(needle, re);
  }
  return re;
}

/** Parsed content of one message, folded lazily per need. */
class Content {
  private headers = new Map<string, string[]>();
  private allHeaders: string | undefined;
  private body: string | undefined;
  private date: HeaderDate | null | undefined;
  private parsed: MessageIndex | undefined;

  constructor(
    private readonly raw: Buffer,
    /** The MIME index; called only when a key needs more than the layout. */
    private readonly parse: () => MessageIndex,
    /** The layout cache key of this message's content, when it has an EMAILID. */
    private readonly key: string | undefined,
    private layoutKnown?: SearchLayout,
  ) {}

  private get index(): MessageIndex {
    return (this.parsed ??= this.parse());
  }

  header(name: string): string[] {
    const key = name.toLowerCase();
    let v = this.headers.get(key);
    if (v === undefined) {
      v = headerValues(this.raw, this.index, key).map(fold);
      this.headers.set(key, v);
    }
    return v;
  }

  /** Every header field of every part (MIME part headers, attached messages) as "name: decoded value" lines (TEXT key). */
  headerText(): string {
    if (this.allHeaders === undefined) this.allHeaders = fold(allHeaderText(this.raw, this.index));
    return this.allHeaders;
  }

  /**
   * TEXT (headers = true) or BODY: the same answer as searching headerText()/bodyText(), found
   * without decoding where it cannot matter (see layout.ts), on the message's search layout: made
   * from the index once and kept, so a later search of the same message parses nothing.
   */
  fastContains(needle: string, headers: boolean): boolean {
    if (headers && this.allHeaders !== undefined && contains(this.allHeaders, needle)) return true;
    if (this.body !== undefined) {
      if (contains(this.body, needle)) return true;
      if (!headers || this.allHeaders !== undefined) return false;
    }
    if (this.layoutKnown === undefined) {
      this.layoutKnown = layoutOf(this.raw, this.index);
      if (this.key !== undefined) layoutCache.set(this.key, this.layoutKnown);
    }
    return layoutContains(this.raw, this.layoutKnown, needle, needleRegExp(needle), headers);
  }

  bodyText(): string {
    if (this.body === undefined) this.body = fold(bodyText(this.raw, this.index));
    return this.body;
  }

  sentDate(): HeaderDate | null {
    if (this.date === undefined) {
      const v = headerValues(this.raw, this.index, 'date');
      this.date = v.length > 0 ? parseHeaderDate(v[0]) : null;
    }
    return this.date;
  }
}

/** Per-search data computed once: resolved sets, day numbers, folded needles. */
class Prepared {
  readonly sets = new Map<SearchKey, Set<number>>();
  readonly days = new Map<SearchKey, number>();
  readonly needles = new Map<SearchKey, string>();
  usesModSeq = false;
  needsContent = false;
  /** Every content key is TEXT or BODY with a plain needle: a message's cached layout answers them. */
  layoutOnly = true;
  /** UIDs with \Recent in the session. */
  readonly recent: ReadonlySet<number>;

  constructor(
    ctx: SessionContext,
    key: SearchKey,
    readonly now: number,
  ) {
    this.recent = ctx.selected?.recent ?? new Set();
    this.walk(ctx, key);
  }

  private walk(ctx: SessionContext, key: SearchKey): void {
    switch (key.type) {
      case 'and':
        for (const k of key.keys) this.walk(ctx, k);
        break;
      case 'or':
        this.walk(ctx, key.left);
        this.walk(ctx, key.right);
        break;
      case 'not':
        this.walk(ctx, key.key);
        break;
      case 'seq':
      case 'uid':
        // `$` is a UID set whatever key names it (RFC 5182 2.1); resolve() maps it.
        this.sets.set(key, new Set(ctx.resolve(key.set, key.type === 'uid' || key.set.kind === 'saved')));
        break;
      case 'date':
        this.days.set(key, searchDay(key.date));
        if (key.field === 'sent') {
          this.needsContent = true;
          this.layoutOnly = false;
        }
        break;
      case 'header':
      case 'body':
      case 'text': {
        const needle = fold(key.value);
        this.needles.set(key, needle);
        this.needsContent = true;
        if (key.type === 'header' || !FAST_NEEDLE.test(needle)) this.layoutOnly = false;
        break;
      }
      case 'modseq':
        this.usesModSeq = true;
        break;
      default:
        break;
    }
  }
}

/** Three-valued result: undefined means "depends on message content". */
type Tri = boolean | undefined;

function hasFlag(flags: readonly string[], wanted: string): boolean {
  for (const f of flags) if (f.length === wanted.length && f.toUpperCase() === wanted) return true;
  return false;
}

function compareDay(day: number, op: 'before' | 'on' | 'since', key: number): boolean {
  if (op === 'before') return day < key;
  if (op === 'on') return day === key;
  return day >= key;
}

/** Evaluates a key on metadata; content keys answer from `content` or are undefined without it. */
function evaluate(key: SearchKey, m: MessageMeta, p: Prepared, content: Content | undefined): Tri {
  switch (key.type) {
    case 'all':
      return true;
    case 'and': {
      let result: Tri = true;
      for (const k of key.keys) {
        const r = evaluate(k, m, p, content);
        if (r === false) return false;
        if (r === undefined) result = undefined;
      }
      return result;
    }
    case 'or': {
      const l = evaluate(key.left, m, p, content);
      if (l === true) return true;
      const r = evaluate(key.right, m, p, content);
      if (r === true) return true;
      return l === false && r === false ? false : undefined;
    }
    case 'not': {
      const r = evaluate(key.key, m, p, content);
      return r === undefined ? undefined : !r;
    }
    case 'flag': {
      const wanted = key.flag.toUpperCase();
      // \Recent is the session's, not the store's (recent.ts).
      const has = wanted === '\\RECENT' ? p.recent.has(m.uid) : hasFlag(m.flags, wanted);
      return has === key.set;
    }
    case 'seq':
    case 'uid':
      return p.sets.get(key)?.has(m.uid) ?? false;
    case 'date': {
      const want = p.days.get(key) ?? NaN;
      if (Number.isNaN(want)) return false;
      if (key.field === 'internal') return compareDay(localDay(m.internalDate), key.op, want);
      if (key.field === 'saved') return m.saveDate ? compareDay(localDay(m.saveDate), key.op, want) : false;
      if (!content) return undefined;
      const sent = content.sentDate();
      // No readable Date header: the internal date stands in, as RFC 5256 does for SORT.
      const day = sent ? dayAtOffset(sent.utcMs, sent.offsetMinutes) : localDay(m.internalDate);
      return compareDay(day, key.op, want);
    }
    case 'size':
      return key.op === 'larger' ? m.size > key.value : m.size < key.value;
    case 'header': {
      if (!content) return undefined;
      const values = content.header(key.field);
      if (values.length === 0) return false;
      const needle = p.needles.get(key) ?? '';
      for (const v of values) if (contains(v, needle)) return true;
      return false;
    }
    case 'body': {
      if (!content) return undefined;
      const needle = p.needles.get(key) ?? '';
      if (FAST_NEEDLE.test(needle)) return content.fastContains(needle, false);
      return contains(content.bodyText(), needle);
    }
    case 'text': {
      if (!content) return undefined;
      const needle = p.needles.get(key) ?? '';
      if (FAST_NEEDLE.test(needle)) return content.fastContains(needle, true);
      return contains(content.headerText(), needle) || contains(content.bodyText(), needle);
    }
    case 'modseq':
      return m.modSeq >= key.modseq;
    case 'older':
      return m.internalDate.getTime() <= p.now - key.seconds * 1000;
    case 'younger':
      return m.internalDate.getTime() >= p.now - key.seconds * 1000;
    case 'savedatesupported':
      return true;
    case 'emailid':
      return m.emailId === key.id;
    case 'threadid':
      return m.threadId === key.id;
  }
}

/**
 * Current metadata of every message in the view, in sequence order; a message another session
 * expunged keeps the metadata the client last saw (it still has a sequence number).
 */
export async function viewMetadata(sel: SelectedMailbox): Promise<MessageMeta[]> {
  const fresh = await sel.handle.get(sel.uids);
  if (fresh.length === sel.uids.length) return fresh;
  const out: MessageMeta[] = [];
  let f = 0;
  for (const uid of sel.uids) {
    while (f < fresh.length && fresh[f].uid < uid) f++;
    const m = f < fresh.length && fresh[f].uid === uid ? fresh[f] : sel.meta.get(uid);
    if (m !== undefined) out.push(m);
  }
  return out;
}

/** Runs a search over the selected view: matching UIDs ascending (and MODSEQ when asked). */
export async function searchMessages(ctx: SessionContext, key: SearchKey, opts: SearchOptions = {}): Promise<SearchResult> {
  const sel = ctx.selected;
  if (!sel) return { uids: [], metas: [] };
  const p = new Prepared(ctx, key, opts.now ?? Date.now());
  const metas = await viewMetadata(sel);
  const uids: number[] = [];
  const found: MessageMeta[] = [];
  let highest = 0n;
  let scanned = 0;
  // Judge every message on metadata first, so the ones whose content matters are read in batches.
  const first = metas.map((m) => evaluate(key, m, p, undefined));
  const contentUids = metas.filter((_, i) => first[i] === undefined).map((m) => m.uid);
  const reader = new BodyReader(sel.handle, contentUids);
  // Layouts stored with the messages (at APPEND), for those not in the cache: read in batches too.
  const stored = p.layoutOnly && sel.handle.structures ? new StructureReader(sel.handle, contentUids) : undefined;
  for (let i = 0; i < metas.length; i++) {
    const m = metas[i]!;
    let r = first[i];
    if (r === undefined) {
      const raw = await reader.read(m.uid);
      const cacheAs = m.emailId ? cacheKey(ctx.user, m.emailId) : undefined;
      let layout = p.layoutOnly && cacheAs !== undefined ? layoutCache.get(cacheAs) : undefined;
      if (layout === undefined && stored) {
        layout = await stored.layout(m.uid);
        if (layout !== undefined && raw && !fitsIn(layout, raw.length)) layout = undefined;
        if (layout !== undefined && cacheAs !== undefined) layoutCache.set(cacheAs, layout);
      }
      let content: Content | undefined;
      if (raw && layout) content = new Content(raw, () => indexMessage(raw), cacheAs, layout);
      else {
        const msg = await ctx.message(m.uid, raw ?? undefined);
        if (msg) content = new Content(msg.raw, () => msg.index, cacheAs);
      }
      // An expunged message's bytes are gone: it cannot match a content key.
      r = content ? evaluate(key, m, p, content) === true : false;
      if (++scanned % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (r) {
      uids.push(m.uid);
      found.push(m);
      if (m.modSeq > highest) highest = m.modSeq;
    }
  }
  return p.usesModSeq ? { uids, metas: found, highestModSeq: highest } : { uids, metas: found };
}
