/** NOOP (RFC 9051 6.1.2): does nothing but lets pending updates out. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** NOOP: a forced sync of the selected view (the session sends the updates before the OK). */
export async function noopCommand(ctx: ServerSession, _cmd: CommandNamed<'NOOP'>): Promise<CommandResult> {
  // Poll the store even without a change notification: NOOP is the client's way of asking.
  if (ctx.selected) await ctx.syncSelected(true, true);
  return { status: 'OK', text: 'NOOP completed.' };
}
