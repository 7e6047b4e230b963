/**
 * EXPUNGE and UID EXPUNGE (RFC 3501 6.4.3, RFC 4315 2.1, RFC 7162 3.2.10 VANISHED). The store
 * removes the \Deleted messages; the client hears one EXPUNGE per message it knew (or VANISHED
 * under QRESYNC) and the view drops them.
 */
import type { Command } from '../../protocol/ast.js';
import type { CommandHandler } from '../context.js';
import { NOT_SELECTED, READ_ONLY, reportExpunged, storeErrorResult } from '../fetch/view.js';

type ExpungeCommand = Extract<Command, { name: 'EXPUNGE' }>;

/** EXPUNGE / UID EXPUNGE: permanently remove \Deleted messages (only those of the set for UID EXPUNGE). */
export const expungeCommand: CommandHandler<ExpungeCommand> = async (ctx, cmd) => {
  const sel = ctx.selected;
  if (!sel) return NOT_SELECTED;
  if (sel.readOnly) return READ_ONLY;
  let uids: number[] | undefined;
  if (cmd.uid) {
    if (cmd.sequence === undefined) return { status: 'BAD', text: 'UID EXPUNGE needs a UID set.' };
    uids = ctx.resolve(cmd.sequence, true);
    if (uids.length === 0) return { status: 'OK', text: 'Expunge completed.' };
  }
  try {
    const removed = await sel.handle.expunge(uids, ctx.id);
    reportExpunged(ctx, sel, removed);
  } catch (err) {
    return storeErrorResult(err, false);
  }
  return { status: 'OK', text: 'Expunge completed.' };
};
