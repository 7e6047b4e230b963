/**
 * MOVE and UID MOVE (RFC 6851). The store moves the set atomically; the client then hears
 * `* OK [COPYUID ...]` followed by EXPUNGE responses (VANISHED under QRESYNC) for the moved
 * messages, and the view drops them.
 */
import type { Command } from '../../protocol/ast.js';
import { atom } from '../../protocol/values.js';
import type { CommandHandler } from '../context.js';
import { copyUidCode, decodeTarget, NOT_SELECTED, READ_ONLY, reportExpunged, resolveSet, storeErrorResult } from '../fetch/view.js';
import { recentKey, recentTracker } from '../recent.js';

// COPY and MOVE share one AST shape, so the extract names both.
type MoveCommand = Extract<Command, { name: 'COPY' | 'MOVE' }>;

/** MOVE / UID MOVE: move messages to another mailbox and expunge them here. */
export const moveCommand: CommandHandler<MoveCommand> = async (ctx, cmd) => {
  const sel = ctx.selected;
  if (!sel) return NOT_SELECTED;
  const target = decodeTarget(ctx, cmd.mailbox);
  if (typeof target !== 'string') return target;
  const uids = resolveSet(ctx, sel, cmd.name, cmd.sequence, cmd.uid);
  if (!Array.isArray(uids)) return uids;
  // MOVE expunges from the source, which EXAMINE forbids (RFC 6851 3.3).
  if (sel.readOnly) return READ_ONLY;
  try {
    if (uids.length === 0) {
      await ctx.store.status(target);
      return { status: 'OK', text: 'No messages found.' };
    }
    const mapping = await sel.handle.move(uids, target, ctx.id);
    if (mapping.destUids.length > 0) recentTracker.arrived(recentKey(ctx.user, target, mapping.uidValidity), mapping.destUids.reduce((a, b) => (b < a ? b : a)));
    const code = copyUidCode(mapping);
    // RFC 6851 4.3: COPYUID goes in an untagged OK before the expunges, since the tagged OK follows them.
    if (code !== undefined) ctx.untagged([atom('OK'), atom(`[${code}]`), atom('Moved UIDs.')]);
    reportExpunged(ctx, sel, mapping.sourceUids.length > 0 ? mapping.sourceUids : uids);
    return { status: 'OK', text: 'Move completed.' };
  } catch (err) {
    return storeErrorResult(err, true);
  }
};
