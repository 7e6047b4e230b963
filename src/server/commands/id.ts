/** ID (RFC 2971): log what the client says about itself, tell it who we are. */
import type { ResponseValue } from '../../protocol/values.js';
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** ID (params) | ID NIL. */
export async function idCommand(ctx: ServerSession, cmd: CommandNamed<'ID'>): Promise<CommandResult> {
  if (cmd.params) {
    // Client-supplied text: bounded before logging, so a client cannot flood the log.
    const fields = Object.fromEntries(cmd.params.slice(0, 30).map(([k, v]) => [k.slice(0, 30), v === null ? null : v.slice(0, 200)]));
    ctx.log.debug({ clientId: fields }, 'client ID');
  }
  const list: ResponseValue[] = [];
  for (const [key, value] of Object.entries(ctx.config.serverId)) list.push(key, value);
  ctx.untagged([{ atom: 'ID' }, list.length ? list : null]);
  return { status: 'OK', text: 'ID completed.' };
}
