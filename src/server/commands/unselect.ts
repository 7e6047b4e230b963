/** UNSELECT (RFC 3691): deselect without expunging. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** UNSELECT. */
export async function unselectCommand(ctx: ServerSession, _cmd: CommandNamed<'UNSELECT'>): Promise<CommandResult> {
  await ctx.setSelected(undefined);
  return { status: 'OK', text: 'Unselect completed.' };
}
