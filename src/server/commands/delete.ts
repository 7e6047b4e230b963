/** DELETE (RFC 9051 6.3.5): children stay; INBOX cannot be deleted. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** DELETE mailbox. */
export async function deleteCommand(ctx: ServerSession, cmd: CommandNamed<'DELETE'>): Promise<CommandResult> {
  const name = ctx.decodeMailbox(cmd.mailbox);
  if (name === 'INBOX') return { status: 'NO', code: 'CANNOT', text: 'INBOX cannot be deleted.' };
  await ctx.store.deleteMailbox(name);
  // Deleting the selected mailbox leaves nothing to look at: deselect, saying so.
  if (ctx.selected?.name === name) await ctx.setSelected(undefined, { closed: true });
  return { status: 'OK', text: 'Delete completed.' };
}
