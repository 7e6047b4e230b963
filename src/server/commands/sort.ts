/**
 * SORT and UID SORT (RFC 5256 3, RFC 5957 DISPLAYFROM/DISPLAYTO, RFC 5267 ESORT RETURN options).
 * The search runs first; messages are read only when a criterion other than ARRIVAL or SIZE needs
 * their headers. Ties fall back to sequence order (RFC 5256 3: "in order of sequence number").
 */
import type { Command, SortKey } from '../../protocol/ast.js';
import type { MessageMeta } from '../../store/contract.js';
import type { CommandHandler } from '../context.js';
import { activateCondstore, NOT_SELECTED } from '../fetch/view.js';
import { searchMessages } from '../search/evaluate.js';
import { usesModSeq } from '../search/keys.js';
import { BADCHARSET_CODE, badCharset, clearSavedOnError, reportResult } from '../search/respond.js';
import { compareStrings, readSortData, type SortData } from '../search/sortdata.js';

type SortCommand = Extract<Command, { name: 'SORT' }>;

interface Row {
  meta: MessageMeta;
  data: SortData | undefined;
}

function compareBy(key: SortKey['key'], a: Row, b: Row): number {
  switch (key) {
    case 'ARRIVAL':
      return a.meta.internalDate.getTime() - b.meta.internalDate.getTime();
    case 'SIZE':
      return a.meta.size - b.meta.size;
    case 'DATE':
      return (a.data?.date ?? 0) - (b.data?.date ?? 0);
    case 'SUBJECT':
      return compareStrings(a.data?.subject ?? '', b.data?.subject ?? '');
    case 'FROM':
      return compareStrings(a.data?.from ?? '', b.data?.from ?? '');
    case 'TO':
      return compareStrings(a.data?.to ?? '', b.data?.to ?? '');
    case 'CC':
      return compareStrings(a.data?.cc ?? '', b.data?.cc ?? '');
    case 'DISPLAYFROM':
      return compareStrings(a.data?.displayFrom ?? '', b.data?.displayFrom ?? '');
    case 'DISPLAYTO':
      return compareStrings(a.data?.displayTo ?? '', b.data?.displayTo ?? '');
  }
}

/** SORT / UID SORT: the matches of the search in the order of the criteria. */
export const sortCommand: CommandHandler<SortCommand> = async (ctx, cmd) => {
  const sel = ctx.selected;
  if (!sel) return NOT_SELECTED;
  if (badCharset(cmd.charset)) {
    clearSavedOnError(sel, cmd.returnOptions);
    return { status: 'NO', code: BADCHARSET_CODE, text: 'Unsupported charset.' };
  }
  if (cmd.criteria.length === 0) return { status: 'BAD', text: 'Empty sort criteria.' };
  const modseq = usesModSeq(cmd.search);
  if (modseq) activateCondstore(ctx);
  const found = await searchMessages(ctx, cmd.search);
  const needsHeaders = cmd.criteria.some((c) => c.key !== 'ARRIVAL' && c.key !== 'SIZE');
  const rows: Row[] = [];
  for (const meta of found.metas) {
    let data: SortData | undefined;
    if (needsHeaders) {
      const msg = await ctx.message(meta.uid);
      data = msg
        ? readSortData(msg.raw, msg.index, meta)
        : { date: meta.internalDate.getTime(), subject: '', isReply: false, from: '', to: '', cc: '', displayFrom: '', displayTo: '', messageId: null, inReplyTo: [], references: [] };
    }
    rows.push({ meta, data });
  }
  // Array.prototype.sort is stable and rows are in UID (= sequence) order, so ties keep sequence order.
  rows.sort((a, b) => {
    for (const c of cmd.criteria) {
      const r = compareBy(c.key, a, b);
      if (r !== 0) return c.reverse ? -r : r;
    }
    return 0;
  });
  reportResult(ctx, sel, {
    tag: cmd.tag,
    uid: cmd.uid,
    returnOptions: cmd.returnOptions,
    metas: rows.map((r) => r.meta),
    modseq,
    kind: 'SORT',
  });
  return { status: 'OK', text: 'Sort completed.' };
};
