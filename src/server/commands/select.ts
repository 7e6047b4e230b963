/**
 * SELECT / EXAMINE (RFC 9051 6.3.2-3) with CONDSTORE and QRESYNC parameters (RFC 7162 3.1.8,
 * 3.2.5): builds the session's view (sequence numbers ↔ UIDs) and reports the mailbox.
 */
import { formatSequenceSet } from '../../protocol/sequence.js';
import type { SequenceSet } from '../../protocol/ast.js';
import type { ResponseValue } from '../../protocol/values.js';
import { StoreError, type MailboxHandle, type MessageMeta } from '../../store/contract.js';
import type { CommandResult, SelectedMailbox } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';
import { mailboxValue } from './status.js';
import { recentKey, recentTracker } from '../recent.js';
import { flagValues } from '../fetch/format.js';

/** The system flags every mailbox supports (RFC 9051 2.3.2). */
export const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

/**
 * UID arrays of selected views, shared between sessions with identical views of a mailbox
 * (thousands of clients idling in the same INBOX hold one array). Shared arrays are frozen:
 * every change to a view reassigns `uids`, which gives that session its own copy.
 */
const sharedViews = new Map<string, WeakRef<number[]>>();
const forgetView = new FinalizationRegistry<string>((key) => {
  if (sharedViews.get(key)?.deref() === undefined) sharedViews.delete(key);
});

/** The UIDs of `metas`, as an array shared with other sessions seeing the same view. */
export function sharedView(mailboxId: string, metas: MessageMeta[]): number[] {
  const n = metas.length;
  const existing = sharedViews.get(mailboxId)?.deref();
  if (existing && existing.length === n) {
    // Compared newest first: a view that changed usually changed at its end.
    let i = n - 1;
    while (i >= 0 && metas[i]!.uid === existing[i]) i--;
    if (i < 0) return existing;
  }
  const list = new Array<number>(n);
  for (let i = 0; i < n; i++) list[i] = metas[i]!.uid;
  const uids = Object.freeze(list) as number[];
  sharedViews.set(mailboxId, new WeakRef(uids));
  forgetView.register(uids, mailboxId);
  return uids;
}

/** True when `n` is in a sequence set of numbers (`*` stands for `max`). */
export function inSequenceSet(n: number, set: SequenceSet, max: number, saved: number[] = []): boolean {
  if (set.kind === 'saved') return saved.includes(n);
  for (const r of set.ranges) {
    let a = r.start === '*' ? max : r.start;
    let b = r.end === '*' ? max : r.end;
    if (a > b) [a, b] = [b, a];
    if (n >= a && n <= b) return true;
  }
  return false;
}

/** The FETCH items of a flag report: (UID n FLAGS (...) MODSEQ (m)). */
export function flagItems(m: MessageMeta, opts: { uid: boolean; modseq: boolean; recent?: boolean }): ResponseValue[] {
  const items: ResponseValue[] = [];
  if (opts.uid) items.push({ atom: 'UID' }, m.uid);
  items.push({ atom: 'FLAGS' }, flagValues(m.flags, opts.recent));
  if (opts.modseq) items.push({ atom: 'MODSEQ' }, [m.modSeq]);
  return items;
}

/** SELECT or EXAMINE mailbox [(CONDSTORE) | (QRESYNC (...))]. */
export async function selectCommand(ctx: ServerSession, cmd: CommandNamed<'SELECT' | 'EXAMINE'>): Promise<CommandResult> {
  const readOnly = cmd.name === 'EXAMINE';
  // RFC 7162 3.2.5: the QRESYNC parameter needs ENABLE QRESYNC first.
  if (cmd.qresync && !ctx.enabled.has('QRESYNC')) return { status: 'BAD', text: 'QRESYNC parameter requires ENABLE QRESYNC.' };
  const name = ctx.decodeMailbox(cmd.mailbox);
  // A SELECT, even a failing one, leaves the previous mailbox (RFC 9051 6.3.2).
  await ctx.setSelected(undefined, { closed: ctx.selected !== undefined });

  let handle: MailboxHandle;
  try {
    handle = await ctx.store.open(name);
  } catch (err) {
    if (err instanceof StoreError && err.code === 'NONEXISTENT') {
      return { status: 'NO', code: 'NONEXISTENT', text: `Mailbox doesn't exist: ${name}` };
    }
    throw err;
  }
  let selected: SelectedMailbox;
  let metas: MessageMeta[];
  let uidNext: number;
  try {
    // status() before list(): the view may then hold messages newer than syncedModSeq, which the
    // next sync sees as unchanged, never the reverse (a message the client is not told about).
    const status = await handle.status();
    metas = await handle.list();
    const lastUid = metas.length ? metas[metas.length - 1]!.uid : 0;
    uidNext = Math.max(status.uidNext, lastUid + 1);
    selected = {
      handle,
      name,
      readOnly,
      uids: sharedView(handle.mailboxId, metas),
      // Nothing reported yet: meta fills as FETCH/STORE/updates report flags (memory per idle session).
      meta: new Map(),
      syncedModSeq: status.highestModSeq,
      savedResult: [],
      recent: new Set(),
      recentKey: recentKey(ctx.user, name, handle.uidValidity),
    };
    if (!ctx.enabled.has('IMAP4REV2')) {
      // SELECT takes the messages that arrived since the last SELECT; EXAMINE only looks.
      const mark = readOnly ? recentTracker.peek(selected.recentKey, uidNext) : recentTracker.claim(selected.recentKey, uidNext - 1, uidNext);
      for (let i = metas.length - 1; i >= 0 && metas[i]!.uid > mark; i--) selected.recent.add(metas[i]!.uid);
    }
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
  if (cmd.condstore || cmd.qresync) ctx.condstoreActive = true;

  // One pass over the flags for both the keywords in use and the first unseen message (no allocation per message).
  const keywords = new Set<string>();
  let firstUnseen = -1;
  for (let i = 0; i < metas.length; i++) {
    const flags = metas[i]!.flags;
    let seen = false;
    for (let j = 0; j < flags.length; j++) {
      const f = flags[j]!;
      if (f.charCodeAt(0) !== 0x5c) keywords.add(f);
      else if (!seen && f.length === 5 && f.toUpperCase() === '\\SEEN') seen = true;
    }
    if (!seen && firstUnseen < 0) firstUnseen = i;
  }
  const flags = [...SYSTEM_FLAGS, ...keywords].map((f) => ({ atom: f }));
  ctx.untagged([{ atom: 'FLAGS' }, flags]);
  ctx.untaggedStatus(
    'OK',
    readOnly ? 'PERMANENTFLAGS ()' : `PERMANENTFLAGS (${[...SYSTEM_FLAGS, ...keywords, '\\*'].join(' ')})`,
    readOnly ? 'Read-only mailbox.' : 'Flags permitted.',
  );
  ctx.untagged([metas.length, { atom: 'EXISTS' }]);
  const rev2 = ctx.enabled.has('IMAP4REV2');
  if (!rev2) {
    ctx.untagged([selected.recent.size, { atom: 'RECENT' }]);
    if (firstUnseen >= 0) ctx.untaggedStatus('OK', `UNSEEN ${firstUnseen + 1}`, `First unseen.`);
  }
  ctx.untaggedStatus('OK', `UIDVALIDITY ${handle.uidValidity}`, 'UIDs valid.');
  ctx.untaggedStatus('OK', `UIDNEXT ${uidNext}`, 'Predicted next UID.');
  ctx.untaggedStatus('OK', `HIGHESTMODSEQ ${selected.syncedModSeq}`, 'Highest.');
  ctx.untaggedStatus('OK', `MAILBOXID (${handle.mailboxId})`, 'Ok.');
  if (rev2) ctx.untagged([{ atom: 'LIST' }, [], '/', mailboxValue(ctx.encodeMailbox(name))]);

  if (cmd.qresync && cmd.qresync.uidValidity === handle.uidValidity) {
    const q = cmd.qresync;
    const changes = await handle.changesSince(q.modSeq);
    const present = new Set(selected.uids);
    const vanished = changes.expunged
      .filter((uid) => !present.has(uid) && uid < uidNext && (!q.knownUids || inSequenceSet(uid, q.knownUids, uidNext - 1)))
      .sort((a, b) => a - b);
    if (vanished.length) ctx.untagged([{ atom: 'VANISHED' }, [{ atom: 'EARLIER' }], { atom: formatSequenceSet(vanished) }]);
    const changed = changes.changed.filter((m) => present.has(m.uid)).sort((a, b) => a.uid - b.uid);
    const seqs = new Map(selected.uids.map((uid, i) => [uid, i + 1]));
    for (const m of changed) {
      // changesSince ran after list(): its state is at least as new as the view's.
      const known = selected.meta.get(m.uid);
      const current = known && known.modSeq > m.modSeq ? known : m;
      selected.meta.set(m.uid, current);
      ctx.untagged([seqs.get(m.uid)!, { atom: 'FETCH' }, flagItems(current, { uid: true, modseq: true, recent: selected.recent.has(current.uid) })]);
    }
  }

  await ctx.setSelected(selected);
  return { status: 'OK', code: readOnly ? 'READ-ONLY' : 'READ-WRITE', text: `${cmd.name} completed.` };
}
