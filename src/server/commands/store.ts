/**
 * STORE and UID STORE (RFC 3501 6.4.6, RFC 7162 3.1.3 UNCHANGEDSINCE / MODIFIED). One store call
 * changes the whole set; the client then hears the new flags of every message it named (unless
 * .SILENT), with UID for UID STORE, and UID and MODSEQ once CONDSTORE is active.
 */
import type { Command } from '../../protocol/ast.js';
import { atom, type ResponseValue } from '../../protocol/values.js';
import type { MessageMeta } from '../../store/contract.js';
import type { CommandHandler } from '../context.js';
import { flagValues } from '../fetch/format.js';
import { activateCondstore, normalizeFlags, NOT_SELECTED, READ_ONLY, resolveSet } from '../fetch/view.js';
import { formatSet } from '../search/sets.js';

type StoreCommand = Extract<Command, { name: 'STORE' }>;

const DRAIN_EVERY = 256;

/** STORE / UID STORE: change flags, report them, and name the messages UNCHANGEDSINCE refused. */
export const storeCommand: CommandHandler<StoreCommand> = async (ctx, cmd) => {
  const sel = ctx.selected;
  if (!sel) return NOT_SELECTED;
  const norm = normalizeFlags(cmd.flags);
  if ('invalid' in norm) return { status: 'BAD', text: `Error in IMAP command STORE: Invalid system flag ${norm.invalid}` };
  if (sel.readOnly) return READ_ONLY;
  const resolved = resolveSet(ctx, sel, cmd.name, cmd.sequence, cmd.uid);
  if (!Array.isArray(resolved)) return resolved;
  const uids = resolved;
  if (cmd.unchangedSince !== undefined) activateCondstore(ctx);
  if (uids.length === 0) return { status: 'OK', text: 'Store completed.' };

  const res = await sel.handle.updateFlags(
    uids,
    { action: cmd.action, flags: norm.flags, unchangedSince: cmd.unchangedSince },
    ctx.id,
  );
  const updated = new Map<number, MessageMeta>();
  for (const m of res.updated) updated.set(m.uid, m);
  const refused = new Set(res.modified);

  // Messages named but not changed (their flags already matched) still get a FETCH unless .SILENT.
  let current = updated;
  if (!cmd.silent && updated.size + refused.size < uids.length) {
    const rest = uids.filter((u) => !updated.has(u) && !refused.has(u));
    current = new Map(updated);
    for (const m of await sel.handle.get(rest)) current.set(m.uid, m);
  }

  const condstore = ctx.condstoreActive;
  // RFC 7162 3.1: once CONDSTORE is on, FETCH responses caused by STORE carry UID and MODSEQ.
  const withUid = cmd.uid || condstore || ctx.enabled.has('QRESYNC');
  let seqIdx = 0;
  let sent = 0;
  const view = sel.uids;
  for (const uid of uids) {
    while (seqIdx < view.length && view[seqIdx] < uid) seqIdx++;
    const meta = current.get(uid);
    if (meta === undefined || view[seqIdx] !== uid) continue;
    sel.meta.set(uid, meta);
    // RFC 7162 3.1.3: under CONDSTORE a changed message is reported with its MODSEQ even with .SILENT.
    if (cmd.silent && !(condstore && updated.has(uid))) continue;
    const items: ResponseValue[] = [];
    if (withUid) items.push(atom('UID'), uid);
    if (!cmd.silent) items.push(atom('FLAGS'), flagValues(meta.flags, sel.recent.has(meta.uid)));
    if (condstore) items.push(atom('MODSEQ'), [meta.modSeq]);
    ctx.untagged([seqIdx + 1, atom('FETCH'), items]);
    if (++sent % DRAIN_EVERY === 0) await ctx.drain();
  }

  if (refused.size > 0) {
    const nums: number[] = [];
    if (cmd.uid) {
      nums.push(...res.modified);
    } else {
      let i = 0;
      for (const uid of [...res.modified].sort((a, b) => a - b)) {
        while (i < view.length && view[i] < uid) i++;
        if (view[i] === uid) nums.push(i + 1);
      }
    }
    nums.sort((a, b) => a - b);
    return { status: 'OK', code: `MODIFIED ${formatSet(nums)}`, text: 'Conditional store failed.' };
  }
  return { status: 'OK', text: 'Store completed.' };
};
