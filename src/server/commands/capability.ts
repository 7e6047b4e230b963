/** CAPABILITY (RFC 9051 6.1.1): the list depends on the connection's state. */
import type { ResponseValue } from '../../protocol/values.js';
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** CAPABILITY. */
export async function capabilityCommand(ctx: ServerSession, _cmd: CommandNamed<'CAPABILITY'>): Promise<CommandResult> {
  const values: ResponseValue[] = [{ atom: 'CAPABILITY' }, ...ctx.capabilities().map((c) => ({ atom: c }))];
  ctx.untagged(values);
  return { status: 'OK', text: 'Capability completed.' };
}
