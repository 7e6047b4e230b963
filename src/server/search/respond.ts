/**
 * Answers of SEARCH and SORT: the classic `* SEARCH n...` / `* SORT n...` lines (with RFC 7162
 * `(MODSEQ n)`), ESEARCH (RFC 4731, RFC 5267 for SORT, RFC 9051 for IMAP4rev2) and the SEARCHRES
 * SAVE result (RFC 5182).
 */
import iconv from 'iconv-lite';
import type { SearchReturn } from '../../protocol/ast.js';
import { atom, type ResponseValue } from '../../protocol/values.js';
import type { MessageMeta } from '../../store/contract.js';
import type { SelectedMailbox, SessionContext } from '../context.js';
import { formatSet, indexOfUid } from './sets.js';

/** What to report: the matching messages in result order (ascending for SEARCH, sort order for SORT). */
export interface ResultToReport {
  /** The command tag (ESEARCH's TAG) and whether it was a UID command. */
  tag: string;
  uid: boolean;
  /** RETURN options; undefined for the classic response. */
  returnOptions?: SearchReturn;
  /** Matches in result order with their metadata. */
  metas: readonly MessageMeta[];
  /** True when a MODSEQ search key was used (RFC 7162 3.1.5). */
  modseq: boolean;
  /** SEARCH or SORT: the classic response name, and whether order matters. */
  kind: 'SEARCH' | 'SORT';
}

function highestOf(metas: Iterable<MessageMeta>): bigint {
  let h = 0n;
  for (const m of metas) if (m.modSeq > h) h = m.modSeq;
  return h;
}

/** Sequence numbers of UIDs in the view (binary search each, as SORT order is not ascending). */
function toSeqs(sel: SelectedMailbox, metas: readonly MessageMeta[]): number[] {
  const out: number[] = [];
  for (const m of metas) {
    const i = indexOfUid(sel.uids, m.uid);
    if (i >= 0) out.push(i + 1);
  }
  return out;
}

/**
 * Sends the untagged result and applies SAVE. For ESEARCH, MIN/MAX are the lowest/highest numbers
 * for SEARCH and the first/last in sort order for SORT (RFC 5267 3.2); ALL keeps sort order.
 */
export function reportResult(ctx: SessionContext, sel: SelectedMailbox, r: ResultToReport): void {
  const nums = r.uid ? r.metas.map((m) => m.uid) : toSeqs(sel, r.metas);
  const opts = r.returnOptions;
  if (opts === undefined) {
    const line: ResponseValue[] = [atom(r.kind), ...nums];
    if (r.modseq && nums.length > 0) line.push([atom('MODSEQ'), highestOf(r.metas)]);
    ctx.untagged(line);
    return;
  }
  // RETURN () means ALL (RFC 4731 3.1).
  const wanted = new Set(opts.length === 0 ? ['ALL'] : opts);
  const n = nums.length;
  // SEARCH results are ascending, SORT results in sort order: either way MIN/MAX are the ends.
  const minIdx = n > 0 ? 0 : -1;
  const maxIdx = n - 1;
  if (wanted.has('SAVE')) {
    // RFC 5182 2.4: with only MIN and/or MAX the saved set is those; otherwise all matches.
    const onlyMinMax = !wanted.has('ALL') && !wanted.has('COUNT') && (wanted.has('MIN') || wanted.has('MAX'));
    const saved = new Set<number>();
    if (onlyMinMax) {
      if (wanted.has('MIN') && n > 0) saved.add(r.metas[minIdx].uid);
      if (wanted.has('MAX') && n > 0) saved.add(r.metas[maxIdx].uid);
    } else {
      for (const m of r.metas) saved.add(m.uid);
    }
    sel.savedResult = [...saved].sort((a, b) => a - b);
    // RFC 5182 2.1: SAVE alone produces no ESEARCH response.
    if (wanted.size === 1) return;
  }
  const line: ResponseValue[] = [atom('ESEARCH'), [atom('TAG'), r.tag]];
  if (r.uid) line.push(atom('UID'));
  if (wanted.has('MIN') && n > 0) line.push(atom('MIN'), nums[minIdx]);
  if (wanted.has('MAX') && n > 0) line.push(atom('MAX'), nums[maxIdx]);
  if (wanted.has('ALL') && n > 0) {
    const all = r.kind === 'SORT' ? nums : [...nums].sort((a, b) => a - b);
    line.push(atom('ALL'), atom(formatSet(all)));
  }
  if (wanted.has('COUNT')) line.push(atom('COUNT'), n);
  if (r.modseq && n > 0) {
    // RFC 7162 3.1.5: with only MIN/MAX, the MODSEQ is that of the messages returned.
    let mods: MessageMeta[] = r.metas as MessageMeta[];
    if (!wanted.has('ALL') && !wanted.has('COUNT')) {
      mods = [];
      if (wanted.has('MIN')) mods.push(r.metas[minIdx]);
      if (wanted.has('MAX')) mods.push(r.metas[maxIdx]);
    }
    if (mods.length > 0) line.push(atom('MODSEQ'), highestOf(mods));
  }
  ctx.untagged(line);
}

/** The SEARCHRES rule for a failed command that asked to SAVE: `$` becomes empty (RFC 5182 2.1). */
export function clearSavedOnError(sel: SelectedMailbox, opts: SearchReturn | undefined): void {
  if (opts?.includes('SAVE')) sel.savedResult = [];
}

/**
 * True for a CHARSET the server cannot decode (RFC 3501 6.4.4). The parser has already decoded the
 * search strings with it and refuses unknown ones itself; this is the handler's own guard.
 */
export function badCharset(charset: string | undefined): boolean {
  if (charset === undefined) return false;
  const c = charset.toUpperCase();
  if (c === 'UTF-8' || c === 'US-ASCII' || c === 'UTF8' || c === 'ASCII') return false;
  return !iconv.encodingExists(c);
}

/** The BADCHARSET response code listing what is supported. */
export const BADCHARSET_CODE = 'BADCHARSET (US-ASCII UTF-8)';
