/**
 * THREAD and UID THREAD (RFC 5256 4): search, read each match's threading headers, build the
 * forest with REFERENCES or ORDEREDSUBJECT, and answer `* THREAD (..)(..)`.
 */
import type { Command } from '../../protocol/ast.js';
import { atom } from '../../protocol/values.js';
import type { CommandHandler } from '../context.js';
import { activateCondstore, NOT_SELECTED } from '../fetch/view.js';
import { searchMessages } from '../search/evaluate.js';
import { usesModSeq } from '../search/keys.js';
import { BADCHARSET_CODE, badCharset } from '../search/respond.js';
import { readSortData } from '../search/sortdata.js';
import { indexOfUid } from '../search/sets.js';
import { threadByOrderedSubject } from '../thread/orderedsubject.js';
import { threadByReferences } from '../thread/references.js';
import { formatThreads, type ThreadMessage } from '../thread/tree.js';

type ThreadCommand = Extract<Command, { name: 'THREAD' }>;

/** THREAD / UID THREAD with the REFERENCES or ORDEREDSUBJECT algorithm. */
export const threadCommand: CommandHandler<ThreadCommand> = async (ctx, cmd) => {
  const sel = ctx.selected;
  if (!sel) return NOT_SELECTED;
  const algorithm = cmd.algorithm.toUpperCase();
  if (algorithm !== 'REFERENCES' && algorithm !== 'ORDEREDSUBJECT') {
    return { status: 'BAD', text: `Unknown thread algorithm ${cmd.algorithm}.` };
  }
  if (badCharset(cmd.charset)) return { status: 'NO', code: BADCHARSET_CODE, text: 'Unsupported charset.' };
  if (usesModSeq(cmd.search)) activateCondstore(ctx);
  const found = await searchMessages(ctx, cmd.search);
  const messages: ThreadMessage[] = [];
  for (const meta of found.metas) {
    const seq = indexOfUid(sel.uids, meta.uid) + 1;
    const msg = await ctx.message(meta.uid);
    const base = { id: cmd.uid ? meta.uid : seq, seq };
    if (!msg) {
      // Expunged meanwhile: it still threads, alone, by its arrival date.
      messages.push({ ...base, date: meta.internalDate.getTime(), baseSubject: '', isReply: false, messageId: null, references: [], inReplyTo: [] });
      continue;
    }
    const d = readSortData(msg.raw, msg.index, meta);
    messages.push({
      ...base,
      date: d.date,
      baseSubject: d.subject,
      isReply: d.isReply,
      messageId: d.messageId,
      references: d.references,
      inReplyTo: d.inReplyTo,
    });
  }
  const roots = algorithm === 'REFERENCES' ? threadByReferences(messages) : threadByOrderedSubject(messages);
  const text = formatThreads(roots);
  // The thread lists are written as one atom: their grammar puts no space between `)(`.
  ctx.untagged(text === '' ? [atom('THREAD')] : [atom('THREAD'), atom(text)]);
  return { status: 'OK', text: 'Thread completed.' };
};
