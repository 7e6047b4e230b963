/** STATUS (RFC 9051 6.3.11, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE, RFC 7889 APPENDLIMIT, RFC 8474 MAILBOXID). */
import type { StatusItem } from '../../protocol/ast.js';
import type { ResponseValue } from '../../protocol/values.js';
import type { MailboxStatus } from '../../store/contract.js';
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';
import { recentKey, recentTracker } from '../recent.js';

/**
 * A mailbox name (wire form) as a response value: a bare astring when it can be one (as Dovecot
 * writes them), else a quoted string or literal chosen by the writer.
 */
export function mailboxValue(wire: string): ResponseValue {
  return /^[\x21\x23\x24\x26\x27\x2b-\x5b\x5d-\x7a\x7c-\x7e]+$/.test(wire) && wire.toUpperCase() !== 'NIL' ? { atom: wire } : wire;
}

/** The `(item value ...)` list of a STATUS response. */
export function statusValues(ctx: ServerSession, st: MailboxStatus, items: StatusItem[]): ResponseValue[] {
  const out: ResponseValue[] = [];
  for (const item of items) {
    out.push({ atom: item });
    switch (item) {
      case 'MESSAGES':
        out.push(st.messages);
        break;
      case 'RECENT': {
        // Messages no session has taken yet (recent.ts); exact unless some of them were expunged since.
        const mark = recentTracker.peek(recentKey(ctx.user, st.name, st.uidValidity), st.uidNext);
        out.push(Math.max(0, Math.min(st.messages, st.uidNext - 1 - mark)));
        break;
      }
      case 'UIDNEXT':
        out.push(st.uidNext);
        break;
      case 'UIDVALIDITY':
        out.push(st.uidValidity);
        break;
      case 'UNSEEN':
        out.push(st.unseen);
        break;
      case 'DELETED':
        out.push(st.deleted);
        break;
      case 'SIZE':
        out.push(st.size);
        break;
      case 'HIGHESTMODSEQ':
        out.push(st.highestModSeq);
        break;
      case 'APPENDLIMIT':
        out.push(ctx.limits.appendLimit);
        break;
      case 'MAILBOXID':
        out.push([{ atom: st.mailboxId }]);
        break;
    }
  }
  return out;
}

/** Send `* STATUS name (...)` for one mailbox. */
export async function sendStatus(ctx: ServerSession, name: string, items: StatusItem[]): Promise<void> {
  const st = await ctx.store.status(name);
  // RFC 7162 3.1: asking for HIGHESTMODSEQ is a CONDSTORE-enabling action.
  if (items.includes('HIGHESTMODSEQ')) ctx.condstoreActive = true;
  ctx.untagged([{ atom: 'STATUS' }, mailboxValue(ctx.encodeMailbox(name)), statusValues(ctx, st, items)]);
}

/** STATUS mailbox (items). */
export async function statusCommand(ctx: ServerSession, cmd: CommandNamed<'STATUS'>): Promise<CommandResult> {
  const name = ctx.decodeMailbox(cmd.mailbox);
  await sendStatus(ctx, name, cmd.items);
  return { status: 'OK', text: 'Status completed.' };
}
