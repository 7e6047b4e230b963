/** SUBSCRIBE / UNSUBSCRIBE (RFC 9051 6.3.7-8). */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** SUBSCRIBE mailbox | UNSUBSCRIBE mailbox. */
export async function subscribeCommand(ctx: ServerSession, cmd: CommandNamed<'SUBSCRIBE' | 'UNSUBSCRIBE'>): Promise<CommandResult> {
  const name = ctx.decodeMailbox(cmd.mailbox);
  const on = cmd.name === 'SUBSCRIBE';
  await ctx.store.setSubscribed(name, on);
  return { status: 'OK', text: `${on ? 'Subscribe' : 'Unsubscribe'} completed.` };
}
