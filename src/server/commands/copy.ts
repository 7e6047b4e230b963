/**
 * COPY and UID COPY (RFC 3501 6.4.7, RFC 4315 COPYUID, RFC 9051 6.4.7). The store copies the whole
 * set in one call and reports the UID mapping, which becomes the COPYUID response code.
 */
import type { Command } from '../../protocol/ast.js';
import type { CommandHandler } from '../context.js';
import { copyUidCode, decodeTarget, NOT_SELECTED, resolveSet, storeErrorResult } from '../fetch/view.js';
import { recentKey, recentTracker } from '../recent.js';

// COPY and MOVE share one AST shape, so the extract names both.
type CopyCommand = Extract<Command, { name: 'COPY' | 'MOVE' }>;

/** COPY / UID COPY: copy messages to another mailbox, answering OK [COPYUID v src dst]. */
export const copyCommand: CommandHandler<CopyCommand> = async (ctx, cmd) => {
  const sel = ctx.selected;
  if (!sel) return NOT_SELECTED;
  const target = decodeTarget(ctx, cmd.mailbox);
  if (typeof target !== 'string') return target;
  const uids = resolveSet(ctx, sel, cmd.name, cmd.sequence, cmd.uid);
  if (!Array.isArray(uids)) return uids;
  try {
    if (uids.length === 0) {
      // Nothing to copy, but a missing target is still worth a TRYCREATE.
      await ctx.store.status(target);
      return { status: 'OK', text: 'No messages found.' };
    }
    const mapping = await sel.handle.copy(uids, target, ctx.id);
    if (mapping.destUids.length > 0) recentTracker.arrived(recentKey(ctx.user, target, mapping.uidValidity), mapping.destUids.reduce((a, b) => (b < a ? b : a)));
    return { status: 'OK', code: copyUidCode(mapping), text: 'Copy completed.' };
  } catch (err) {
    return storeErrorResult(err, true);
  }
};
