/**
 * Helpers on the selected view that the message commands share: state checks, CONDSTORE
 * activation, removing expunged messages from the view and telling the client, and mapping
 * store errors to tagged responses.
 */
import { atom } from '../../protocol/values.js';
import type { SequenceSet } from '../../protocol/ast.js';
import { StoreError, type UidMapping } from '../../store/contract.js';
import { MailboxNameError, type CommandResult, type SelectedMailbox, type SessionContext } from '../context.js';
import { formatSet, invalidMessageSet } from '../search/sets.js';

/** The tagged answer when no mailbox is selected (the session machine normally catches this first). */
export const NOT_SELECTED: CommandResult = { status: 'BAD', text: 'No mailbox selected.' };

/** The answer to a change attempted in a mailbox opened with EXAMINE. */
export const READ_ONLY: CommandResult = { status: 'NO', text: 'Mailbox is read-only.' };

/**
 * Resolves a command's set to UIDs, or returns Dovecot's BAD for a non-UID set naming a message
 * number beyond the mailbox ("Error in IMAP command FETCH: Invalid messageset").
 */
export function resolveSet(ctx: SessionContext, sel: SelectedMailbox, command: string, set: SequenceSet, uid: boolean): number[] | CommandResult {
  if (!uid && invalidMessageSet(set, sel.uids.length)) return { status: 'BAD', text: `Error in IMAP command ${command}: Invalid messageset` };
  return ctx.resolve(set, uid);
}

/**
 * Turns CONDSTORE on for the session (RFC 7162 3.1: FETCH MODSEQ/CHANGEDSINCE, SEARCH MODSEQ and
 * STORE UNCHANGEDSINCE enable it). The first time, the client learns the mailbox HIGHESTMODSEQ it
 * is synchronised to, as Dovecot does; syncedModSeq is used so no pending change is skipped.
 */
export function activateCondstore(ctx: SessionContext): void {
  if (ctx.condstoreActive) return;
  ctx.condstoreActive = true;
  const sel = ctx.selected;
  if (sel) ctx.untagged([atom('OK'), atom(`[HIGHESTMODSEQ ${sel.syncedModSeq}]`), atom('Highest')]);
}

/** System flags STORE accepts, by upper-case spelling (\Recent is the server's, RFC 3501 2.3.2). */
const SYSTEM_FLAGS = new Map(
  ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'].map((f) => [f.toUpperCase(), f] as const),
);

/** Canonical spelling of the flags of STORE, or the offending flag when one is not settable. */
export function normalizeFlags(flags: readonly string[]): { flags: string[] } | { invalid: string } {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of flags) {
    let name = f;
    if (f.startsWith('\\')) {
      const sys = SYSTEM_FLAGS.get(f.toUpperCase());
      if (sys === undefined) return { invalid: f.toUpperCase() };
      name = sys;
    }
    // Keywords are case-insensitive in practice (Dovecot): drop duplicates differing only in case.
    const key = name.toUpperCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(name);
  }
  return { flags: out };
}

/** True when the flag list holds \Seen (any case). */
export function hasSeen(flags: readonly string[]): boolean {
  for (const f of flags) if (f.length === 5 && f.toUpperCase() === '\\SEEN') return true;
  return false;
}

/**
 * Removes expunged UIDs from the view and tells the client: `* n EXPUNGE` in ascending order with
 * numbers adjusted for the ones already removed (as Dovecot does), or one `* VANISHED set` under
 * QRESYNC (RFC 7162 3.2.10). UIDs the view never showed are ignored. Returns the UIDs reported.
 */
export function reportExpunged(ctx: SessionContext, sel: SelectedMailbox, removed: readonly number[]): number[] {
  if (removed.length === 0) return [];
  const gone = new Set(removed);
  const seqs: number[] = [];
  const kept: number[] = [];
  const reported: number[] = [];
  let recentGone = false;
  const uids = sel.uids;
  for (let i = 0; i < uids.length; i++) {
    const u = uids[i];
    if (gone.has(u)) {
      seqs.push(i + 1);
      reported.push(u);
      sel.meta.delete(u);
      if (sel.recent.delete(u)) recentGone = true;
    } else {
      kept.push(u);
    }
  }
  if (reported.length === 0) return reported;
  sel.uids = kept;
  // RFC 5182: an expunged message leaves the saved result too.
  if (sel.savedResult.length > 0) sel.savedResult = sel.savedResult.filter((u) => !gone.has(u));
  if (ctx.enabled.has('QRESYNC')) {
    ctx.untagged([atom('VANISHED'), atom(formatSet(reported))]);
  } else {
    for (let i = 0; i < seqs.length; i++) ctx.untagged([seqs[i] - i, atom('EXPUNGE')]);
  }
  // RFC 3501 7.3.2: the count of recent messages is sent again when the mailbox shrinks (as Dovecot does).
  if (recentGone) ctx.untagged([sel.recent.size, atom('RECENT')]);
  return reported;
}

/** Maps a StoreError to a tagged NO with its RFC 5530 code; other errors are rethrown. */
export function storeErrorResult(err: unknown, trycreate: boolean): CommandResult {
  if (err instanceof StoreError) {
    if (err.code === 'NONEXISTENT' && trycreate) return { status: 'NO', code: 'TRYCREATE', text: err.message || 'Mailbox does not exist.' };
    return { status: 'NO', code: err.code, text: err.message };
  }
  throw err;
}

/** Decodes a target mailbox name from its wire form, or answers NO for one that cannot be. */
export function decodeTarget(ctx: SessionContext, wire: string): string | CommandResult {
  try {
    return ctx.decodeMailbox(wire);
  } catch (err) {
    if (err instanceof MailboxNameError) return { status: 'NO', text: err.message };
    throw err;
  }
}

/** The COPYUID response code (RFC 4315 3), both sets in the store's matching order; undefined if empty. */
export function copyUidCode(mapping: UidMapping): string | undefined {
  if (mapping.destUids.length === 0) return undefined;
  return `COPYUID ${mapping.uidValidity} ${formatSet(mapping.sourceUids)} ${formatSet(mapping.destUids)}`;
}
