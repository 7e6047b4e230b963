/**
 * IDLE (RFC 2177, RFC 9051 6.3.13): changes to the selected mailbox are pushed at once until the
 * client sends DONE. The session's store watch wakes the sync; nothing here polls.
 */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** IDLE ... DONE. */
export async function idleCommand(ctx: ServerSession, _cmd: CommandNamed<'IDLE'>): Promise<CommandResult> {
  ctx.continuation('idling');
  const line = await ctx.whileIdling(() => ctx.readLine());
  if (line === null) return { status: 'BAD', text: 'Connection closed during IDLE.' };
  if (line.toUpperCase() !== 'DONE') return { status: 'BAD', text: 'Expected DONE to end IDLE.' };
  return { status: 'OK', text: 'Idle completed.' };
}
