/**
 * SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4, RFC 4731 ESEARCH, RFC 5182 SEARCHRES,
 * RFC 7162 MODSEQ). Evaluation lives in search/evaluate.ts; this file checks the charset, runs the
 * search and picks the response form.
 */
import type { Command } from '../../protocol/ast.js';
import type { CommandHandler } from '../context.js';
import { activateCondstore, NOT_SELECTED } from '../fetch/view.js';
import { searchMessages } from '../search/evaluate.js';
import { BADCHARSET_CODE, badCharset, clearSavedOnError, reportResult } from '../search/respond.js';
import { usesModSeq } from '../search/keys.js';

type SearchCommand = Extract<Command, { name: 'SEARCH' }>;

/** SEARCH / UID SEARCH: `* SEARCH ...`, or `* ESEARCH ...` with RETURN options or under IMAP4rev2. */
export const searchCommand: CommandHandler<SearchCommand> = async (ctx, cmd) => {
  const sel = ctx.selected;
  if (!sel) return NOT_SELECTED;
  // RFC 9051 6.4.4: an IMAP4rev2 client always gets ESEARCH; no RETURN means RETURN (ALL).
  const returnOptions = cmd.returnOptions ?? (ctx.enabled.has('IMAP4REV2') ? [] : undefined);
  if (badCharset(cmd.charset)) {
    clearSavedOnError(sel, returnOptions);
    return { status: 'NO', code: BADCHARSET_CODE, text: 'Unsupported charset.' };
  }
  const modseq = usesModSeq(cmd.criteria);
  if (modseq) activateCondstore(ctx);
  const result = await searchMessages(ctx, cmd.criteria);
  reportResult(ctx, sel, { tag: cmd.tag, uid: cmd.uid, returnOptions, metas: result.metas, modseq, kind: 'SEARCH' });
  return { status: 'OK', text: 'Search completed.' };
};
