/** LSUB (RFC 3501 6.3.9; deprecated by RFC 9051 but still used): subscribed names matching a pattern. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';
import { canonicalPattern, listEntries, sendEntries } from './list.js';

/** LSUB reference pattern. */
export async function lsubCommand(ctx: ServerSession, cmd: CommandNamed<'LSUB'>): Promise<CommandResult> {
  if (cmd.pattern !== '') {
    const all = await ctx.store.listMailboxes();
    const entries = listEntries(all, {
      patterns: [canonicalPattern(ctx, cmd.reference, cmd.pattern)],
      subscribedOnly: true,
      specialUseOnly: false,
      recursiveMatch: false,
      returnSubscribed: false,
      extended: false,
    });
    // LSUB attributes are the plain LIST ones; \Subscribed is implied by the verb.
    sendEntries(ctx, 'LSUB', entries);
  }
  return { status: 'OK', text: 'Lsub completed.' };
}
