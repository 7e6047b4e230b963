/** LOGOUT (RFC 9051 6.1.3): BYE, tagged OK, then the connection closes. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** LOGOUT. */
export async function logoutCommand(ctx: ServerSession, _cmd: CommandNamed<'LOGOUT'>): Promise<CommandResult> {
  ctx.untagged([{ atom: 'BYE' }, { atom: 'Logging' }, { atom: 'out.' }]);
  ctx.afterTagged(() => ctx.close());
  return { status: 'OK', text: 'Logout completed.' };
}
