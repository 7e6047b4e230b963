/**
 * One connected forward, built on the sync engine in one-way, append-only mode: the source is side
 * a, the target side b, every source folder maps to the one target mailbox. The engine snapshots
 * only UIDs above each folder's high-water mark, records every copy as intended before the APPEND
 * and as done after it, skips Message-IDs already forwarded within the retention window (the
 * `seen` table of its state database) and preserves INTERNALDATE. This module adds what is
 * forward's own: the first-run window, intents confirmed by SEARCH HEADER Message-ID on the
 * target, the after-forward action on the source, the Gmail label, refusals that do not stop the
 * forward, pruning, and IDLE.
 */
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { ImapRepository, type ImapRepositoryOptions } from '../sync/imap-repository.js';
import { SyncSession, type AccountSummary } from '../sync/engine.js';
import { SyncState } from '../sync/state.js';
import { dedupeKey, type CopiedMessage } from '../sync/apply.js';
import { resolvePassword } from '../sync/credentials.js';
import { RepositoryError } from '../sync/repository.js';
import { readClientSecretFile } from '../auth/oauth2/client.js';
import { TokenSource } from '../auth/oauth2/token-source.js';
import { presetTokenUrl } from '../auth/login/providers.js';
import { sleep } from './backoff.js';
import type { AccountConfig, ForwardSpec } from './config.js';
import { IDLE_RENEW_MS, type CycleResult, type ForwardSession, type SessionContext } from './runner.js';
import { ForwardTarget } from './target.js';

/** The `seen` scope of forwarded messages. */
export const FORWARD_SCOPE = 'forward';
/** The `seen` scope of messages the target refused (kept for the status display). */
export const REFUSED_SCOPE = 'forward-refused';

/** The state database of a forward. */
export function stateFile(stateDir: string, name: string): string {
  return path.join(stateDir, `forward-${name}.sqlite`);
}

/** A source message whose after-forward action is still to be done (kept in the state's meta table). */
interface PendingAfter {
  folder: string;
  uidValidity: number | null;
  uid: number;
}

/** Repository options of an account; OAuth2 accounts get a TokenSource on the token file. */
export async function repositoryOptions(a: AccountConfig, opts: { log: Logger; debug: boolean; role: 'source' | 'target' }): Promise<ImapRepositoryOptions> {
  const o: ImapRepositoryOptions = {
    host: a.host,
    port: a.port,
    tls: a.tls === 'none' ? false : a.tls,
    user: a.user,
    // The pool serves the forward; IDLE watchers have connections of their own.
    maxConnections: 2,
    idleRenewMs: IDLE_RENEW_MS,
    warn: (m) => opts.log.warn({ side: opts.role }, m),
  };
  if (a.tlsCaFile) o.caFile = a.tlsCaFile;
  if (a.tlsFingerprint) o.fingerprint = a.tlsFingerprint;
  // imapflow masks LOGIN passwords and SASL responses in its traces.
  if (opts.debug) o.logger = opts.log.child({ imap: opts.role });
  const c = a.credentials;
  switch (c.kind) {
    case 'password':
      o.password = c.password;
      break;
    case 'passwordCommand':
      o.password = () => resolvePassword({ kind: 'command', command: c.command }).catch((err: Error) => Promise.reject(new RepositoryError('auth', err.message, err)));
      break;
    case 'passwordFile':
      o.password = () => resolvePassword({ kind: 'file', path: c.file }).catch((err: Error) => Promise.reject(new RepositoryError('auth', err.message, err)));
      break;
    case 'oauth2': {
      const client = await readClientSecretFile(c.clientSecretFile, c.tokenUrl ?? presetTokenUrl(c.provider));
      if (c.tokenUrl) client.tokenUrl = c.tokenUrl;
      const tokens = new TokenSource({ tokenFile: c.tokenFile, client });
      o.oauth2 = {
        accessToken: () => tokens.accessToken(),
        afterAuthFailure: (rejected) => {
          opts.log.info({ side: opts.role }, 'the server refused the access token: refreshing it');
          return tokens.afterAuthFailure(rejected);
        },
      };
      break;
    }
  }
  return o;
}

/** The real session factory. */
export function createSession(spec: ForwardSpec, ctx: SessionContext): ForwardSession {
  return new EngineSession(spec, ctx);
}

class EngineSession implements ForwardSession {
  private state: SyncState | undefined;
  private source: ImapRepository | undefined;
  private target: ForwardTarget | undefined;
  private targetImap: ImapRepository | undefined;
  private sync: SyncSession | undefined;
  private folders: string[] = [];
  private labelOk = false;
  private closed = false;

  constructor(
    private readonly spec: ForwardSpec,
    private readonly ctx: SessionContext,
  ) {}

  async open(): Promise<void> {
    const { spec, ctx } = this;
    const log = ctx.log;
    this.state = SyncState.open(stateFile(ctx.stateDir, spec.name));
    this.source = new ImapRepository(await repositoryOptions(spec.source, { log, debug: ctx.debug, role: 'source' }));
    this.targetImap = new ImapRepository(await repositoryOptions(spec.target, { log, debug: ctx.debug, role: 'target' }));
    this.target = new ForwardTarget(this.targetImap, log);
    const mailbox = spec.target.mailbox;
    this.sync = new SyncSession({
      name: spec.name,
      a: this.source,
      b: this.target,
      state: this.state,
      selector: (name) => spec.source.folders.includes(name),
      // Every source folder lands in the one target mailbox.
      names: { toLocal: () => mailbox, toRemote: (n) => n },
      appendOnly: true,
      direction: 'a-to-b',
      folderConcurrency: 1,
      copyConcurrency: 1,
      owns: false,
    });
    await this.sync.open();
    const existing = new Set((await this.source.listFolders()).filter((f) => !f.noSelect).map((f) => f.name));
    this.folders = spec.source.folders.filter((f) => existing.has(f));
    const missing = spec.source.folders.filter((f) => !existing.has(f));
    if (missing.length) log.warn({ folders: missing }, 'source folders not found; they are skipped until they exist');
    if (this.folders.length === 0) throw new RepositoryError('config', `${this.source.label}: none of the source folders exist (${spec.source.folders.join(', ')})`);
    this.labelOk = spec.target.label !== undefined && this.targetImap.hasCapability('X-GM-EXT-1');
    if (spec.target.label !== undefined && !this.labelOk) log.warn({ label: spec.target.label }, 'the target has no Gmail labels (X-GM-EXT-1): label ignored');
    // IDLE starts before the first pass, so nothing that arrives during it goes unnoticed.
    if (this.canIdle() && spec.idle && !ctx.noIdle && !ctx.once) await this.source.startWatching(this.folders);
    await this.runPendingAfter();
  }

  canIdle(): boolean {
    return this.source?.capabilities().idle ?? false;
  }

  async cycle(): Promise<CycleResult> {
    const state = this.state!;
    const started = Date.now();
    const copied: Array<{ folder: string; uid: number; destUid: number; messageId: string | null }> = [];
    await this.confirmIntentsBySearch(copied);
    const summary: AccountSummary = await this.sync!.run({
      folders: this.folders,
      since: this.since(started),
      dedupeScope: FORWARD_SCOPE,
      // On SIGTERM the batch under way is finished and recorded; no new one starts.
      signal: this.ctx.signal,
      onCopied: (folder: string, m: CopiedMessage) => {
        // Without a UID the copy is not confirmed (a refusal, or a server without UIDPLUS whose
        // copy the next pass confirms by its Message-ID).
        if (m.destUid === null) return;
        copied.push({ folder, uid: m.srcUid, destUid: m.destUid, messageId: m.messageId });
        this.addPendingAfter(folder, m.srcUid);
      },
      onEvent: (e) => {
        if (e.type === 'warning') this.ctx.log.warn({ folder: e.folder }, e.message);
      },
    });
    const refusals = this.target!.takeRefusals();
    for (const r of refusals) {
      state.seenAdd(REFUSED_SCOPE, [{ key: dedupeKey(r.messageId, r.hash), info: JSON.stringify({ size: r.size, reason: r.reason }) }]);
      this.ctx.events.rejected({ messageId: r.messageId, reason: r.reason });
    }
    await this.afterCopies(copied);
    if (!summary.ok) {
      const e = summary.errors[0]!;
      const err = new RepositoryError(e.kind === 'lock' || e.kind === 'internal' ? 'protocol' : e.kind, `${e.folder ? `${e.folder}: ` : ''}${e.message}`);
      throw err;
    }
    state.setMeta('lastCheckAt', String(started));
    state.seenPrune(new Date(Date.now() - this.spec.retentionMs), FORWARD_SCOPE);
    state.seenPrune(new Date(Date.now() - this.spec.retentionMs), REFUSED_SCOPE);
    return { forwarded: copied.length, rejected: refusals.length };
  }

  /**
   * Messages older than this are not forwarded: the `since` window on a first run, stretched back
   * to just before the last successful check after a long stop, so nothing that arrived while
   * imapkit was down is missed (the high-water mark decides in every other case).
   */
  private since(now: number): Date {
    const window = now - this.spec.sinceMs;
    const last = Number(this.state!.getMeta('lastCheckAt'));
    return new Date(Number.isFinite(last) && last > 0 ? Math.min(window, last - 3_600_000) : window);
  }

  /**
   * A copy intended but never confirmed (a crash or a lost connection between APPEND and commit)
   * is looked for on the target by Message-ID; found, it is recorded as forwarded without a second
   * APPEND. Copies not found (and mail without a Message-ID) are left to the engine, which
   * appends them again.
   */
  private async confirmIntentsBySearch(copied: Array<{ folder: string; uid: number; destUid: number; messageId: string | null }>): Promise<void> {
    const state = this.state!;
    const mailbox = this.spec.target.mailbox;
    for (const fs of state.folders()) {
      if (fs.bName !== mailbox || !this.folders.includes(fs.aName)) continue;
      for (const it of state.intents(fs.id)) {
        if (!it.messageId || it.from !== 'a') continue;
        const found = await this.target!.searchMessageId(mailbox, it.messageId);
        if (found.length === 0) continue;
        const dest = found[found.length - 1]!;
        state.writePairs(fs.id, [{ aUid: it.srcUid, bUid: dest, flags: it.flags, messageId: it.messageId, size: it.size, hash: it.hash }], [it.id], { scope: FORWARD_SCOPE, keys: [it.messageId] });
        this.ctx.log.info({ folder: fs.aName, uid: it.srcUid, messageId: it.messageId }, 'an unconfirmed copy was found on the target: recorded, not appended again');
        copied.push({ folder: fs.aName, uid: it.srcUid, destUid: dest, messageId: it.messageId });
        this.addPendingAfter(fs.aName, it.srcUid);
      }
    }
  }

  /** Status events, the Gmail label, and the after-forward actions of what this pass forwarded. */
  private async afterCopies(copied: Array<{ folder: string; uid: number; destUid: number; messageId: string | null }>): Promise<void> {
    if (copied.length === 0) return;
    const confirmedAt = new Date();
    const mailbox = this.spec.target.mailbox;
    if (this.labelOk) {
      try {
        await this.targetImap!.addLabels(mailbox, copied.map((c) => c.destUid), [this.spec.target.label!]);
      } catch (err) {
        this.ctx.log.warn({ err: (err as Error).message, label: this.spec.target.label }, 'could not add the Gmail label (the messages are forwarded)');
      }
    }
    // Arrival times for the lag: one small FETCH of INTERNALDATE over the new UIDs.
    const arrived = new Map<string, Date>();
    for (const folder of new Set(copied.map((c) => c.folder))) {
      const uids = copied.filter((c) => c.folder === folder).map((c) => c.uid);
      try {
        const snap = await this.source!.snapshot(folder, { minUid: Math.min(...uids), withDates: true });
        for (const m of snap.messages) if (m.internalDate) arrived.set(`${folder}\u0000${m.uid}`, m.internalDate);
      } catch {
        // The lag is only for the status display.
      }
    }
    for (const c of copied) {
      this.ctx.events.forwarded({ folder: c.folder, uid: c.uid, messageId: c.messageId, arrivedAt: arrived.get(`${c.folder}\u0000${c.uid}`), confirmedAt });
    }
    await this.runPendingAfter();
  }

  private pendingAfter(): PendingAfter[] {
    const raw = this.state!.getMeta('afterPending');
    if (!raw) return [];
    try {
      return JSON.parse(raw) as PendingAfter[];
    } catch {
      return [];
    }
  }

  private addPendingAfter(folder: string, uid: number): void {
    if (this.spec.afterForward.kind === 'keep') return;
    const fs = this.state!.folder(folder, this.spec.target.mailbox);
    // Recorded before it is done: a crash in between does it on the next start.
    this.state!.setMeta('afterPending', JSON.stringify([...this.pendingAfter(), { folder, uidValidity: fs.a.uidValidity, uid }]));
  }

  /** Do the after-forward action (seen, move, delete) of every forwarded message still waiting for it. */
  private async runPendingAfter(): Promise<void> {
    const after = this.spec.afterForward;
    const pending = this.pendingAfter();
    if (after.kind === 'keep' || pending.length === 0) return;
    const byFolder = new Map<string, number[]>();
    for (const p of pending) {
      const fs = this.state!.folder(p.folder, this.spec.target.mailbox);
      // UIDs of another UIDVALIDITY name other messages: drop those.
      if (p.uidValidity !== null && fs.a.uidValidity !== null && p.uidValidity !== fs.a.uidValidity) continue;
      byFolder.set(p.folder, [...(byFolder.get(p.folder) ?? []), p.uid]);
    }
    for (const [folder, uids] of byFolder) {
      if (!this.folders.includes(folder)) continue;
      if (after.kind === 'seen') await this.source!.updateFlags(folder, uids, 'add', ['\\Seen']);
      else if (after.kind === 'move') await this.source!.remove(folder, uids, { kind: 'trash', folder: after.folder });
      else await this.source!.remove(folder, uids, { kind: 'expunge' });
      this.ctx.log.debug({ folder, uids, action: after.kind }, 'after-forward action done');
    }
    this.state!.setMeta('afterPending', undefined);
  }

  async waitForChange(signal: AbortSignal, maxMs: number, useIdle: boolean): Promise<void> {
    if (!useIdle) return sleep(maxMs, signal);
    // Idempotent; a watcher lost with its connection is replaced here, and failing to replace it is an error.
    await this.source!.startWatching(this.folders);
    await this.source!.waitForChange(this.folders, signal, maxMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.source?.close(), this.target?.close()]);
    try {
      this.state?.close();
    } catch {
      // closing anyway
    }
  }
}
