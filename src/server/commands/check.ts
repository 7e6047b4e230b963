/** CHECK (RFC 3501 6.4.1; gone from IMAP4rev2 but still answered): a checkpoint, here a NOOP. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** CHECK: stores are durable on every write, so there is nothing to flush; poll like NOOP. */
export async function checkCommand(ctx: ServerSession, _cmd: CommandNamed<'CHECK'>): Promise<CommandResult> {
  await ctx.syncSelected(true, true);
  return { status: 'OK', text: 'Check completed.' };
}
