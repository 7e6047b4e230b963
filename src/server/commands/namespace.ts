/** NAMESPACE (RFC 2342, RFC 9051 6.3.10): one personal namespace, "" with '/' as separator. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** NAMESPACE. */
export async function namespaceCommand(ctx: ServerSession, _cmd: CommandNamed<'NAMESPACE'>): Promise<CommandResult> {
  ctx.untagged([{ atom: 'NAMESPACE' }, [['', '/']], null, null]);
  return { status: 'OK', text: 'Namespace completed.' };
}
