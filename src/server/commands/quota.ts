/**
 * QUOTA (RFC 9208): one quota root "" per user with STORAGE (KiB) and MESSAGE resources.
 * Limits are set by the administrator, so SETQUOTA is refused (no QUOTASET capability).
 */
import type { ResponseValue } from '../../protocol/values.js';
import type { QuotaInfo } from '../../store/contract.js';
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';
import { mailboxValue } from './status.js';

/** The resource list of a QUOTA response: only resources that have a limit (RFC 9208 5.1). */
function resources(q: QuotaInfo): ResponseValue[] {
  const out: ResponseValue[] = [];
  if (q.storageLimitKiB !== undefined) out.push({ atom: 'STORAGE' }, q.storageUsedKiB, q.storageLimitKiB);
  if (q.messagesLimit !== undefined) out.push({ atom: 'MESSAGE' }, q.messagesUsed, q.messagesLimit);
  return out;
}

/** GETQUOTA root. */
export async function getQuotaCommand(ctx: ServerSession, cmd: CommandNamed<'GETQUOTA'>): Promise<CommandResult> {
  const q = await ctx.store.quota();
  const list = resources(q);
  if (cmd.root !== q.root || list.length === 0) return { status: 'NO', code: 'NONEXISTENT', text: 'No such quota root.' };
  ctx.untagged([{ atom: 'QUOTA' }, q.root, list]);
  return { status: 'OK', text: 'Getquota completed.' };
}

/** GETQUOTAROOT mailbox. */
export async function getQuotaRootCommand(ctx: ServerSession, cmd: CommandNamed<'GETQUOTAROOT'>): Promise<CommandResult> {
  const name = ctx.decodeMailbox(cmd.mailbox);
  // The mailbox must exist (RFC 9208 4.3); status() raises NONEXISTENT otherwise.
  await ctx.store.status(name);
  const q = await ctx.store.quota();
  const list = resources(q);
  if (list.length === 0) {
    ctx.untagged([{ atom: 'QUOTAROOT' }, mailboxValue(ctx.encodeMailbox(name))]);
  } else {
    ctx.untagged([{ atom: 'QUOTAROOT' }, mailboxValue(ctx.encodeMailbox(name)), q.root]);
    ctx.untagged([{ atom: 'QUOTA' }, q.root, list]);
  }
  return { status: 'OK', text: 'Getquotaroot completed.' };
}

/** SETQUOTA root (...): refused, limits are administrative. */
export async function setQuotaCommand(_ctx: ServerSession, _cmd: CommandNamed<'SETQUOTA'>): Promise<CommandResult> {
  return { status: 'NO', code: 'NOPERM', text: 'Quota limits are set by the administrator.' };
}
