/** CREATE (RFC 9051 6.3.4) with CREATE-SPECIAL-USE (RFC 6154 3). */
import type { SpecialUse } from '../../store/contract.js';
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';
import { SEPARATOR } from './list.js';

const SPECIAL_USES: ReadonlyArray<SpecialUse> = ['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash', '\\Important'];

/** A usable mailbox name: no empty hierarchy levels, no control characters. Returns the reason it is not. */
export function invalidMailboxName(name: string): string | undefined {
  if (name === '') return 'Empty mailbox name.';
  if (name.split(SEPARATOR).some((part) => part === '')) return 'Empty hierarchy level in mailbox name.';
  if (/[\x00-\x1f\x7f]/.test(name)) return 'Control characters are not allowed in mailbox names.';
  if (name.includes('*') || name.includes('%')) return 'Wildcards are not allowed in mailbox names.';
  return undefined;
}

/** CREATE mailbox [(USE (attr))]. */
export async function createCommand(ctx: ServerSession, cmd: CommandNamed<'CREATE'>): Promise<CommandResult> {
  // A trailing separator announces a future parent; the name itself is created without it (RFC 9051 6.3.4).
  const name = ctx.decodeMailbox(cmd.mailbox).replace(/\/+$/, '');
  if (name === 'INBOX') return { status: 'NO', code: 'ALREADYEXISTS', text: 'INBOX always exists.' };
  const invalid = invalidMailboxName(name);
  if (invalid) return { status: 'NO', code: 'CANNOT', text: invalid };
  let use: SpecialUse | undefined;
  if (cmd.specialUse && cmd.specialUse.length > 0) {
    const wanted = cmd.specialUse.map((u) => SPECIAL_USES.find((s) => s.toLowerCase() === u.toLowerCase()));
    // The store keeps one attribute per mailbox; unknown or several attributes are refused (RFC 6154 3).
    if (wanted.length > 1 || !wanted[0]) return { status: 'NO', code: 'USEATTR', text: 'Unsupported special-use attribute.' };
    use = wanted[0];
  }
  await ctx.store.createMailbox(name, use);
  return { status: 'OK', text: 'Create completed.' };
}
