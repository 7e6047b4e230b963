/** CLOSE (RFC 9051 6.4.1): silently expunge \Deleted messages (read-write only) and deselect. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** CLOSE. */
export async function closeCommand(ctx: ServerSession, _cmd: CommandNamed<'CLOSE'>): Promise<CommandResult> {
  const sel = ctx.selected;
  if (sel && !sel.readOnly) {
    try {
      // No EXPUNGE responses: the client is leaving the mailbox (RFC 9051 6.4.1).
      await sel.handle.expunge(undefined, ctx.id);
    } catch (err) {
      ctx.log.warn({ err }, 'CLOSE expunge failed');
    }
  }
  await ctx.setSelected(undefined);
  return { status: 'OK', text: 'Close completed.' };
}
