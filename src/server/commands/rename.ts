/** RENAME (RFC 9051 6.3.6): children move along; renaming INBOX moves its messages. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';
import { SEPARATOR } from './list.js';
import { invalidMailboxName } from './create.js';

/** RENAME from to. */
export async function renameCommand(ctx: ServerSession, cmd: CommandNamed<'RENAME'>): Promise<CommandResult> {
  const from = ctx.decodeMailbox(cmd.from);
  const to = ctx.decodeMailbox(cmd.to).replace(/\/+$/, '');
  if (to === 'INBOX') return { status: 'NO', code: 'ALREADYEXISTS', text: 'INBOX always exists.' };
  const invalid = invalidMailboxName(to);
  if (invalid) return { status: 'NO', code: 'CANNOT', text: invalid };
  if (to === from || to.startsWith(from + SEPARATOR)) {
    return { status: 'NO', code: 'CANNOT', text: 'Cannot rename a mailbox to itself or below itself.' };
  }
  await ctx.store.renameMailbox(from, to);
  // The selected mailbox (or an ancestor of it) moved: follow it so change notifications still match.
  const sel = ctx.selected;
  if (sel && from !== 'INBOX') {
    if (sel.name === from) sel.name = to;
    else if (sel.name.startsWith(from + SEPARATOR)) sel.name = to + sel.name.slice(from.length);
  }
  return { status: 'OK', text: 'Rename completed.' };
}
