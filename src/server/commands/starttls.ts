/** STARTTLS (RFC 9051 6.2.1): upgrade after the tagged OK; the capability list changes. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** STARTTLS. */
export async function startTlsCommand(ctx: ServerSession, _cmd: CommandNamed<'STARTTLS'>): Promise<CommandResult> {
  if (ctx.secure) return { status: 'BAD', text: 'TLS is already active.' };
  if (!ctx.config.secureContext) return { status: 'NO', text: 'TLS is not configured on this server.' };
  ctx.afterTagged(() => ctx.startTls());
  return { status: 'OK', text: 'Begin TLS negotiation now.' };
}
