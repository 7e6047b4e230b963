/**
 * FETCH and UID FETCH (RFC 3501 6.4.5 / 6.4.8, RFC 9051 6.4.5, RFC 3516 BINARY, RFC 7162
 * CHANGEDSINCE and VANISHED). Metadata comes from one store call for the whole set; message bytes
 * and the MIME index are loaded per message only when an item needs them and, for ENVELOPE and
 * BODYSTRUCTURE, only when neither the shared structure cache nor the store (the answers persisted
 * at APPEND, MailboxHandle.structures) has the answer; answers computed then are written back.
 * ENVELOPE and the top-level HEADER sections need the header only: it alone is parsed, as Dovecot
 * does (fetch/headers.ts), unless another item needs the whole message anyway.
 */
import type { Command } from '../../protocol/ast.js';
import { atom } from '../../protocol/values.js';
import type { MessageMeta } from '../../store/contract.js';
import type { CommandHandler, CommandResult } from '../context.js';
import type { ResponseValue } from '../../protocol/values.js';
import { buildFetch, planFetch, type MessageSource } from '../fetch/build.js';
import { BodyReader } from '../fetch/bodies.js';
import { cacheKey, structureCache, type CachedItem } from '../fetch/cache.js';
import { computeAnswers } from '../fetch/stored.js';
import { StructureReader } from '../fetch/structures.js';
import { HeaderReader } from '../fetch/headers.js';
import { activateCondstore, hasSeen, NOT_SELECTED, resolveSet } from '../fetch/view.js';
import { formatSet, indexOfUid, inRanges, sortedUnique } from '../search/sets.js';

type FetchCommand = Extract<Command, { name: 'FETCH' }>;

/** Messages between drain() calls, and literal bytes that force one sooner. */
const DRAIN_EVERY = 64;
const DRAIN_BYTES = 1 << 20;

/** FETCH / UID FETCH: one `* n FETCH (...)` per message of the set, in sequence order. */
export const fetchCommand: CommandHandler<FetchCommand> = async (ctx, cmd) => {
  const sel = ctx.selected;
  if (!sel) return NOT_SELECTED;
  if (cmd.vanished) {
    // RFC 7162 3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE, once QRESYNC is enabled.
    if (!cmd.uid) return { status: 'BAD', text: 'VANISHED is only allowed in UID FETCH.' };
    if (!ctx.enabled.has('QRESYNC')) return { status: 'BAD', text: 'QRESYNC is not enabled.' };
    if (cmd.changedSince === undefined) return { status: 'BAD', text: 'VANISHED requires CHANGEDSINCE.' };
  }
  const resolved = resolveSet(ctx, sel, cmd.name, cmd.sequence, cmd.uid);
  if (!Array.isArray(resolved)) return resolved;
  const uids = resolved;
  const plan = planFetch(cmd.items, cmd.uid, cmd.changedSince !== undefined);
  if (plan.modseq || cmd.changedSince !== undefined) activateCondstore(ctx);

  if (cmd.vanished && cmd.changedSince !== undefined) {
    const changes = await sel.handle.changesSince(cmd.changedSince);
    let max = sel.uids.length > 0 ? sel.uids[sel.uids.length - 1] : 0;
    for (const u of changes.expunged) if (u > max) max = u;
    // `*` is read as the largest UID ever seen so `1:*` covers every vanished message.
    const gone = changes.expunged.filter((u) => indexOfUid(sel.uids, u) < 0 && inRanges(cmd.sequence, u, max));
    if (gone.length > 0) ctx.untagged([atom('VANISHED'), [atom('EARLIER')], atom(formatSet(sortedUnique(gone)))]);
  }
  if (uids.length === 0) return { status: 'OK', text: 'Fetch completed.' };

  // Current metadata for the set in one call; a message another session expunged keeps what the client last saw.
  const fresh = await sel.handle.get(uids);
  const metas: MessageMeta[] = [];
  let f = 0;
  for (const uid of uids) {
    while (f < fresh.length && fresh[f].uid < uid) f++;
    const m = f < fresh.length && fresh[f].uid === uid ? fresh[f] : sel.meta.get(uid);
    if (m === undefined) continue;
    if (cmd.changedSince !== undefined && m.modSeq <= cmd.changedSince) continue;
    metas.push(m);
  }

  const changed = new Set<number>();
  if (plan.setsSeen && !sel.readOnly) {
    const unseen = metas.filter((m) => !hasSeen(m.flags)).map((m) => m.uid);
    if (unseen.length > 0) {
      const res = await sel.handle.updateFlags(unseen, { action: 'add', flags: ['\\Seen'] }, ctx.id);
      const byUid = new Map(res.updated.map((m) => [m.uid, m]));
      for (let i = 0; i < metas.length; i++) {
        const u = byUid.get(metas[i].uid);
        if (u) {
          metas[i] = u;
          changed.add(u.uid);
        }
      }
    }
  }

  const utf8 = ctx.enabled.has('UTF8=ACCEPT');
  let missing = false;
  let pending = 0;
  let bytes = 0;
  let seqIdx = 0;
  const view = sel.uids;
  // Bytes are read in batches (one store call per chunk of UIDs), only once a message needs them.
  const reader = new BodyReader(sel.handle, metas.map((m) => m.uid));
  // Items needing only the top-level header parse just that (and read just that where the store can).
  const headers = new HeaderReader(sel.handle, reader);
  // Persisted ENVELOPE/BODYSTRUCTURE/BODY answers, looked up in batches too, only on a cache miss.
  const stored = plan.structure.length > 0 ? new StructureReader(sel.handle, metas.map((m) => m.uid)) : undefined;
  try {
    for (const meta of metas) {
      while (seqIdx < view.length && view[seqIdx] < meta.uid) seqIdx++;
      const seq = seqIdx + 1;
      // ENVELOPE/BODYSTRUCTURE/BODY come from the shared cache when it has them: no read, no parse.
      let cached: Partial<Record<CachedItem, ResponseValue>> | undefined;
      let needIndex = plan.needIndex;
      let needHeader = plan.needHeader;
      const key = meta.emailId ? cacheKey(ctx.user, meta.emailId) : undefined;
      // The store had no (current) answer: compute them all, to send and to write back.
      let writeBack = false;
      if (plan.structure.length > 0) {
        cached = {};
        let miss = false;
        const hit = key !== undefined ? structureCache.values(key) : undefined;
        for (const item of plan.structure) {
          const v = hit?.[item];
          if (v === undefined) miss = true;
          else cached[item] = v;
        }
        if (miss && stored?.enabled) {
          const answers = await stored.get(meta.uid);
          if (answers) {
            for (const item of plan.structure) {
              if (cached[item] === undefined) cached[item] = key !== undefined ? structureCache.set(key, item, answers[item], utf8) : answers[item];
            }
            miss = false;
          } else {
            writeBack = true;
          }
        }
        if (miss) {
          // ENVELOPE alone comes from the header; BODYSTRUCTURE/BODY, and answers to write back, need the whole tree.
          if (writeBack || plan.structure.some((item) => item !== 'ENVELOPE' && cached?.[item] === undefined)) needIndex = true;
          else needHeader = true;
        }
      }
      // The whole message is read anyway (BODY[], RFC822): index it once, fully.
      if (needHeader && plan.needRaw) needIndex = true;
      let source: MessageSource | undefined;
      if (needIndex) {
        const m = await ctx.message(meta.uid, (await reader.read(meta.uid)) ?? undefined);
        if (!m) {
          missing = true;
          continue;
        }
        source = m;
        if (writeBack && stored && cached) {
          const { answers, layout } = computeAnswers(m.raw, m.index);
          for (const item of plan.structure) {
            if (cached[item] === undefined) cached[item] = key !== undefined ? structureCache.set(key, item, answers[item], utf8) : answers[item];
          }
          await stored.computed(meta.uid, answers, layout);
        }
      } else if (needHeader) {
        const h = await headers.read(meta.uid);
        if (!h) {
          missing = true;
          continue;
        }
        source = h;
      } else if (plan.needRaw) {
        const raw = await reader.read(meta.uid);
        if (!raw) {
          missing = true;
          continue;
        }
        // Bare LFs (size differs from the byte count) or NULs must be rewritten: that needs the index.
        source = raw.length === meta.size && raw.indexOf(0) < 0 ? { raw } : ((await ctx.message(meta.uid, raw)) ?? { raw });
      }
      const flagsChanged = changed.has(meta.uid);
      const built = buildFetch(plan, meta, source, {
        flagsChanged,
        condstore: ctx.condstoreActive,
        recent: sel.recent.has(meta.uid),
        cached,
        computed: key !== undefined ? (item, v) => structureCache.set(key, item, v, utf8) : undefined,
      });
      if ('error' in built) return unknownCte();
      ctx.untagged([seq, atom('FETCH'), built.values]);
      if (plan.flags || flagsChanged) sel.meta.set(meta.uid, meta);
      bytes += built.bytes;
      if (++pending >= DRAIN_EVERY || bytes >= DRAIN_BYTES) {
        pending = 0;
        bytes = 0;
        await ctx.drain();
      }
    }
  } finally {
    await stored?.flush();
  }
  if (missing) return { status: 'NO', code: 'EXPUNGEISSUED', text: 'Some of the requested messages no longer exist.' };
  return { status: 'OK', text: 'Fetch completed.' };
};

/** RFC 3516 4.2: a content transfer encoding the server cannot decode. */
function unknownCte(): CommandResult {
  return { status: 'NO', code: 'UNKNOWN-CTE', text: 'Unknown Content-Transfer-Encoding.' };
}
