/**
 * APPEND (RFC 9051 6.3.12) with MULTIAPPEND (RFC 3502), UIDPLUS APPENDUID (RFC 4315),
 * APPENDLIMIT/TOOBIG (RFC 7889), BINARY literals (RFC 3516) and UTF8 (RFC 6855).
 * All messages of one command are stored atomically, or none.
 */
import { formatSequenceSet } from '../../protocol/sequence.js';
import { StoreError, type NewMessage } from '../../store/contract.js';
import { toCrlf } from '../../mime/crlf.js';
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';
import { SYSTEM_FLAGS } from './select.js';
import { structureOf } from '../fetch/stored.js';
import { recentKey, recentTracker } from '../recent.js';

const SYSTEM_LOWER = new Map(SYSTEM_FLAGS.map((f) => [f.toLowerCase(), f]));

/** Normalise APPEND/STORE flags: system flags spelled canonically, \Recent dropped; undefined if one is unknown. */
export function appendFlags(flags: string[]): string[] | undefined {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of flags) {
    let flag = f;
    if (f.startsWith('\\')) {
      // \Recent is server-managed (RFC 3501 2.3.2): a client cannot set it.
      if (f.toLowerCase() === '\\recent') continue;
      const system = SYSTEM_LOWER.get(f.toLowerCase());
      if (!system) return undefined;
      flag = system;
    }
    if (seen.has(flag.toLowerCase())) continue;
    seen.add(flag.toLowerCase());
    out.push(flag);
  }
  return out;
}

/** APPEND mailbox [flags] [date] literal [...]. */
export async function appendCommand(ctx: ServerSession, cmd: CommandNamed<'APPEND'>): Promise<CommandResult> {
  const name = ctx.decodeMailbox(cmd.mailbox);
  const messages: NewMessage[] = [];
  for (const m of cmd.messages) {
    if (m.data.length > ctx.limits.appendLimit) {
      return { status: 'NO', code: 'TOOBIG', text: `Message larger than APPENDLIMIT (${ctx.limits.appendLimit} bytes).` };
    }
    if (m.data.length === 0) return { status: 'NO', text: 'Cannot store an empty message.' };
    // NUL is only legal inside a ~{n} literal (RFC 3516 4.2).
    if (!m.binary && m.data.includes(0)) return { status: 'BAD', text: 'NUL in message data needs a literal8 (~{n}).' };
    const flags = appendFlags(m.flags);
    if (!flags) return { status: 'BAD', text: 'Unknown system flag in APPEND.' };
    // Stored with CRLF line ends so RFC822.SIZE, sections and BODY[] bytes agree (as Dovecot reports them).
    const message: NewMessage = { data: toCrlf(m.data), flags, internalDate: m.date };
    // A store that keeps them gets the ENVELOPE/BODYSTRUCTURE/BODY answers now, so FETCH never parses this message.
    if (ctx.store.keepsStructures) {
      const structure = structureOf(message.data);
      if (structure) message.structure = structure;
    }
    messages.push(message);
  }
  if (messages.length === 0) return { status: 'BAD', text: 'APPEND without a message.' };
  let mapping;
  try {
    mapping = await ctx.store.append(name, messages, ctx.id);
  } catch (err) {
    // RFC 9051 6.3.12: a missing target gets TRYCREATE so the client can CREATE and retry.
    if (err instanceof StoreError && err.code === 'NONEXISTENT') {
      return { status: 'NO', code: 'TRYCREATE', text: `Mailbox doesn't exist: ${name}` };
    }
    throw err;
  }
  // Appending to the selected mailbox: the client learns of the new message before the OK.
  if (ctx.selected?.name === name) await ctx.syncSelected(true, true);
  if (mapping.destUids.length > 0) recentTracker.arrived(recentKey(ctx.user, name, mapping.uidValidity), mapping.destUids.reduce((a, b) => (b < a ? b : a)));
  return {
    status: 'OK',
    code: `APPENDUID ${mapping.uidValidity} ${formatSequenceSet(mapping.destUids)}`,
    text: 'Append completed.',
  };
}
