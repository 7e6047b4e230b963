/**
 * One IMAP connection: the state machine (not authenticated → authenticated → selected → logout,
 * RFC 9051 3), reading commands with the streaming parser and answering with the response writer.
 * Commands run one at a time in arrival order (pipelined commands wait their turn); after each
 * command the selected view is synchronised with the store and the changes go out as untagged
 * EXISTS / FETCH / EXPUNGE / VANISHED, under the rules of RFC 3501 7.4.1 and RFC 7162 3.2.10.
 *
 * Memory matters (10,000 idle connections): an idle session holds its socket, a parser, a writer,
 * its selected view and nothing else. The message cache is emptied whenever the input runs dry,
 * and the only timer is the socket's own inactivity timeout.
 */
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { Writable, type Duplex } from 'node:stream';
import { CommandParser } from '../protocol/parser.js';
import { ResponseWriter } from '../protocol/writer.js';
import { decodeMailboxName, encodeMailboxName, Utf7Error } from '../protocol/utf7.js';
import { formatSequenceSet } from '../protocol/sequence.js';
import type { Command, ParserEvent, SequenceSet } from '../protocol/ast.js';
import type { ResponseValue } from '../protocol/values.js';
import { StoreError, type MailStore, type MessageMeta, type UserDb, type UserMailStore } from '../store/contract.js';
import { indexMessage, type MessageIndex } from '../mime/index.js';
import type { Logger } from '../log/logger.js';
import { MailboxNameError, type CommandResult, type SelectedMailbox, type ServerLimits, type SessionContext } from './context.js';
import { capabilities } from './capabilities.js';
import type { LimitSettings, LoginThrottle } from './limits.js';
import { Compression } from './compress.js';
import { capabilityCommand } from './commands/capability.js';
import { noopCommand } from './commands/noop.js';
import { logoutCommand } from './commands/logout.js';
import { loginCommand } from './commands/login.js';
import { authenticateCommand } from './commands/authenticate.js';
import { startTlsCommand } from './commands/starttls.js';
import { enableCommand } from './commands/enable.js';
import { idCommand } from './commands/id.js';
import { selectCommand } from './commands/select.js';
import { createCommand } from './commands/create.js';
import { deleteCommand } from './commands/delete.js';
import { renameCommand } from './commands/rename.js';
import { subscribeCommand } from './commands/subscribe.js';
import { listCommand } from './commands/list.js';
import { lsubCommand } from './commands/lsub.js';
import { statusCommand } from './commands/status.js';
import { appendCommand } from './commands/append.js';
import { namespaceCommand } from './commands/namespace.js';
import { idleCommand } from './commands/idle.js';
import { checkCommand } from './commands/check.js';
import { closeCommand } from './commands/close.js';
import { unselectCommand } from './commands/unselect.js';
import { getQuotaCommand, getQuotaRootCommand, setQuotaCommand } from './commands/quota.js';
import { compressCommand } from './commands/compress.js';
import { fetchCommand } from './commands/fetch.js';
import { searchCommand } from './commands/search.js';
import { sortCommand } from './commands/sort.js';
import { threadCommand } from './commands/thread.js';
import { storeCommand } from './commands/store.js';
import { copyCommand } from './commands/copy.js';
import { moveCommand } from './commands/move.js';
import { expungeCommand } from './commands/expunge.js';
import { recentTracker } from './recent.js';
import { flagValues } from './fetch/format.js';

/** RFC 9051 3: where a session is in its life. */
export type SessionState = 'notauth' | 'auth' | 'selected' | 'logout';

/** A command of the given name (narrowed from the parser's union). */
export type CommandNamed<N extends Command['name']> = Command & { name: N };

/** Everything a session needs from its server (shared by all sessions: nothing per connection here). */
export interface SessionConfig {
  store: MailStore;
  users: UserDb;
  limits: LimitSettings;
  throttle: LoginThrottle;
  log: Logger;
  /** Log a protocol trace (passwords and SASL data redacted). */
  debug: boolean;
  /** Allow LOGIN / AUTHENTICATE without TLS from non-loopback addresses. */
  allowPlaintextLogin: boolean;
  /** Treat loopback clients like remote ones for LOGINDISABLED (tests). */
  loopbackIsRemote: boolean;
  /** TLS context for STARTTLS, when a certificate is configured. */
  secureContext?: SecureContext;
  /** Sent in the ID response (RFC 2971). */
  serverId: Record<string, string>;
}

/** What the command modules in commands/ see: the handler context plus the session machinery. */
export interface ServerSession extends SessionContext {
  readonly state: SessionState;
  readonly config: SessionConfig;
  readonly remoteAddress: string;
  /** TLS is active. */
  readonly secure: boolean;
  /** COMPRESS=DEFLATE is active. */
  readonly compressed: boolean;
  /** The capability atoms for the current state. */
  capabilities(): string[];
  /** LOGIN and AUTHENTICATE are refused until TLS (LOGINDISABLED). */
  loginDisabled(): boolean;
  /** Become authenticated as `user` (opens the user's mail). */
  authenticated(user: string): Promise<void>;
  /** Send `+ text`. */
  continuation(text: string): void;
  /** Send `* OK|NO|BAD [code] text`. */
  untaggedStatus(status: 'OK' | 'NO' | 'BAD', code: string | undefined, text: string): void;
  /** Read one raw line (AUTHENTICATE responses, IDLE's DONE); null when the connection ends. */
  readLine(opts?: { secret?: boolean }): Promise<string | null>;
  /** Run `fn` right after the tagged response is written (STARTTLS, COMPRESS, LOGOUT). */
  afterTagged(fn: () => void | Promise<void>): void;
  /** Install a new selected mailbox (or none), closing the previous handle. `closed`: send [CLOSED] first. */
  setSelected(selected: SelectedMailbox | undefined, opts?: { closed?: boolean }): Promise<void>;
  /** Bring the selected view up to date; `allowExpunge` false holds back EXPUNGE/VANISHED. */
  syncSelected(allowExpunge: boolean, force?: boolean): Promise<void>;
  /** While `fn` runs, store changes to the selected mailbox are pushed at once (IDLE). */
  whileIdling<T>(fn: () => Promise<T>): Promise<T>;
  /** Turn on an ENABLE-able extension (upper case). */
  enable(extension: string): void;
  /** Upgrade to TLS (after STARTTLS's OK). */
  startTls(): Promise<void>;
  /** Start DEFLATE compression (after COMPRESS's OK). */
  startCompression(): Promise<void>;
  /** Say BYE and close the connection once the output has drained. */
  close(byeText?: string): void;
}

type Handler = (ctx: ServerSession, cmd: never) => Promise<CommandResult>;

/** How the view is synchronised after a command (RFC 3501 7.4.1). */
type SyncRule = 'full' | 'noexpunge' | 'none';

interface Entry {
  handler: Handler;
  states: ReadonlyArray<SessionState>;
  sync: SyncRule;
}

const ANY: SessionState[] = ['notauth', 'auth', 'selected'];
const NOTAUTH: SessionState[] = ['notauth'];
const AUTH: SessionState[] = ['auth', 'selected'];
const SELECTED: SessionState[] = ['selected'];

/** The dispatch table: which handler, in which states, with which sync rule. */
const DISPATCH: Record<Command['name'], Entry> = {
  CAPABILITY: { handler: capabilityCommand, states: ANY, sync: 'full' },
  NOOP: { handler: noopCommand, states: ANY, sync: 'full' },
  LOGOUT: { handler: logoutCommand, states: ANY, sync: 'none' },
  ID: { handler: idCommand, states: ANY, sync: 'full' },
  STARTTLS: { handler: startTlsCommand, states: NOTAUTH, sync: 'none' },
  LOGIN: { handler: loginCommand, states: NOTAUTH, sync: 'none' },
  AUTHENTICATE: { handler: authenticateCommand, states: NOTAUTH, sync: 'none' },
  // RFC 5161 3.1 places ENABLE in the authenticated state; like Dovecot we also take it once selected.
  ENABLE: { handler: enableCommand, states: AUTH, sync: 'none' },
  SELECT: { handler: selectCommand, states: AUTH, sync: 'none' },
  EXAMINE: { handler: selectCommand, states: AUTH, sync: 'none' },
  CREATE: { handler: createCommand, states: AUTH, sync: 'full' },
  DELETE: { handler: deleteCommand, states: AUTH, sync: 'full' },
  RENAME: { handler: renameCommand, states: AUTH, sync: 'full' },
  SUBSCRIBE: { handler: subscribeCommand, states: AUTH, sync: 'full' },
  UNSUBSCRIBE: { handler: subscribeCommand, states: AUTH, sync: 'full' },
  LIST: { handler: listCommand, states: AUTH, sync: 'full' },
  LSUB: { handler: lsubCommand, states: AUTH, sync: 'full' },
  STATUS: { handler: statusCommand, states: AUTH, sync: 'full' },
  APPEND: { handler: appendCommand, states: AUTH, sync: 'full' },
  NAMESPACE: { handler: namespaceCommand, states: AUTH, sync: 'full' },
  IDLE: { handler: idleCommand, states: AUTH, sync: 'full' },
  GETQUOTA: { handler: getQuotaCommand, states: AUTH, sync: 'full' },
  GETQUOTAROOT: { handler: getQuotaRootCommand, states: AUTH, sync: 'full' },
  SETQUOTA: { handler: setQuotaCommand, states: AUTH, sync: 'full' },
  COMPRESS: { handler: compressCommand, states: AUTH, sync: 'none' },
  CHECK: { handler: checkCommand, states: SELECTED, sync: 'full' },
  CLOSE: { handler: closeCommand, states: SELECTED, sync: 'none' },
  UNSELECT: { handler: unselectCommand, states: SELECTED, sync: 'none' },
  EXPUNGE: { handler: expungeCommand, states: SELECTED, sync: 'full' },
  COPY: { handler: copyCommand, states: SELECTED, sync: 'full' },
  MOVE: { handler: moveCommand, states: SELECTED, sync: 'full' },
  // RFC 3501 7.4.1: no EXPUNGE while responding to FETCH, STORE, SEARCH (we include the UID forms, SORT, THREAD).
  FETCH: { handler: fetchCommand, states: SELECTED, sync: 'noexpunge' },
  STORE: { handler: storeCommand, states: SELECTED, sync: 'noexpunge' },
  SEARCH: { handler: searchCommand, states: SELECTED, sync: 'noexpunge' },
  SORT: { handler: sortCommand, states: SELECTED, sync: 'noexpunge' },
  THREAD: { handler: threadCommand, states: SELECTED, sync: 'noexpunge' },
};

/** Output beyond this many bytes makes drain() wait for the socket. */
const OUTPUT_HIGH_WATER = 256 * 1024;
/** The per-session message cache: a few entries, bounded in bytes. */
const CACHE_ENTRIES = 8;
const CACHE_BYTES = 8 * 1024 * 1024;

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopback(address: string): boolean {
  if (address === '::1') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

let sessionCounter = 0;

/** Error text of a StoreError / MailboxNameError / anything else, as a tagged result. */
export function errorResult(err: unknown, log?: Logger): CommandResult {
  if (err instanceof StoreError) {
    if (err.code === 'SERVERBUG') log?.error({ err }, 'store failure');
    return { status: 'NO', code: err.code, text: err.message };
  }
  if (err instanceof MailboxNameError) return { status: 'BAD', text: err.message };
  log?.error({ err }, 'command failed');
  return { status: 'NO', code: 'SERVERBUG', text: 'Internal error' };
}

/** Redact what must never reach a log: LOGIN passwords. */
function traceCommand(cmd: Command): unknown {
  if (cmd.name === 'LOGIN') return { tag: cmd.tag, name: cmd.name, user: cmd.user, password: '[redacted]' };
  if (cmd.name === 'AUTHENTICATE') return { tag: cmd.tag, name: cmd.name, mechanism: cmd.mechanism, initialResponse: cmd.initialResponse === undefined ? undefined : '[redacted]' };
  if (cmd.name === 'APPEND') return { tag: cmd.tag, name: cmd.name, mailbox: cmd.mailbox, sizes: cmd.messages.map((m) => m.data.length) };
  return cmd;
}

/** A Writable in front of the real sink that logs what goes out (only with --debug). */
class TraceSink extends Writable {
  constructor(
    private readonly target: NodeJS.WritableStream,
    private readonly log: Logger,
  ) {
    super({ highWaterMark: 16 * 1024 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const text = chunk.length > 512 ? `${chunk.subarray(0, 512).toString('latin1')}... (${chunk.length} bytes)` : chunk.toString('latin1');
    this.log.debug({ out: text }, 'S:');
    if (this.target.write(chunk)) cb();
    else this.target.once('drain', () => cb());
  }
}

/** One client connection. */
export class Session implements ServerSession {
  readonly id: string;
  readonly remoteAddress: string;
  readonly limits: ServerLimits;
  readonly enabled = new Set<string>();
  selected: SelectedMailbox | undefined;
  condstoreActive = false;
  state: SessionState = 'notauth';
  secure: boolean;
  compressed = false;

  private socket: Duplex & { setTimeout?: (ms: number) => unknown; setNoDelay?: (on: boolean) => unknown };
  private parser: CommandParser;
  private writer: ResponseWriter;
  private userName: string | undefined;
  private userStore: UserMailStore | undefined;
  private running = false;
  private ended = false;
  private lineWaiter: { resolve: (line: string | null) => void; secret: boolean } | undefined;
  private after: Array<() => void | Promise<void>> | undefined;
  private cache: Map<number, { raw: Buffer; index: MessageIndex }> | undefined;
  private cacheBytes = 0;
  /** UIDs the store expunged that the client has not been told about yet (held back during FETCH etc.). */
  private pendingExpunge: Set<number> | undefined;
  /** The store reported a change to the selected mailbox since the last sync. */
  private dirty = false;
  private unwatch: (() => void) | undefined;
  private idling = false;
  private syncing: Promise<void> | undefined;
  private compression: Compression | undefined;
  private cleanedUp = false;
  private logger: Logger | undefined;
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  constructor(
    socket: Socket | TLSSocket,
    readonly config: SessionConfig,
    info: { remoteAddress: string; secure: boolean },
  ) {
    this.id = `s${++sessionCounter}`;
    this.socket = socket;
    this.remoteAddress = info.remoteAddress;
    this.secure = info.secure;
    this.limits = { appendLimit: config.limits.appendLimit };
    this.parser = this.newParser();
    this.writer = new ResponseWriter(this.sinkFor(socket));
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
    this.attach(socket);
    socket.setNoDelay(true);
    socket.setTimeout(config.limits.preAuthTimeoutMs);
  }

  /** Resolves once the connection is closed and the session's resources are released. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  /** Send the greeting (RFC 9051 7.1.1: untagged OK with the capability list). */
  start(): void {
    this.writer.tagged('*', 'OK', `CAPABILITY ${this.capabilities().join(' ')}`, 'imapkit ready.');
  }

  // ----- SessionContext -----------------------------------------------------------------

  /** A logger bound to this session, made on first use (most sessions never log). */
  get log(): Logger {
    return (this.logger ??= this.config.log.child({ session: this.id }));
  }

  get user(): string {
    if (this.userName === undefined) throw new Error('not authenticated');
    return this.userName;
  }

  get store(): UserMailStore {
    if (!this.userStore) throw new Error('not authenticated');
    return this.userStore;
  }

  untagged(values: ResponseValue[]): void {
    this.writer.untagged(values);
  }

  drain(): Promise<void> {
    if (this.writer.pending < OUTPUT_HIGH_WATER) return Promise.resolve();
    return this.writer.drain();
  }

  decodeMailbox(wire: string): string {
    let name = wire;
    if (!this.enabled.has('UTF8=ACCEPT')) {
      try {
        name = decodeMailboxName(wire);
      } catch (err) {
        if (err instanceof Utf7Error) throw new MailboxNameError(`Invalid mailbox name: ${err.message}`);
        throw err;
      }
    }
    // INBOX is case-insensitive (RFC 3501 5.1); the store spells it in upper case.
    if (/^inbox(\/|$)/i.test(name)) name = 'INBOX' + name.slice(5);
    return name;
  }

  encodeMailbox(name: string): string {
    return this.enabled.has('UTF8=ACCEPT') ? name : encodeMailboxName(name);
  }

  resolve(set: SequenceSet, uid: boolean): number[] {
    const sel = this.selected;
    if (!sel) return [];
    const uids = sel.uids;
    if (set.kind === 'saved') {
      // `$` holds UIDs; keep those still in the view, ascending (RFC 5182 2.1).
      return sel.savedResult.filter((u) => this.seqOf(u) > 0).sort((a, b) => a - b);
    }
    const out = new Set<number>();
    if (uids.length === 0) return [];
    const maxUid = uids[uids.length - 1]!;
    for (const r of set.ranges) {
      if (uid) {
        // `*` is the largest UID in use (RFC 3501 6.4.8); a range is unordered.
        let a = r.start === '*' ? maxUid : r.start;
        let b = r.end === '*' ? maxUid : r.end;
        if (a > b) [a, b] = [b, a];
        for (let i = lowerBound(uids, a); i < uids.length && uids[i]! <= b; i++) out.add(uids[i]!);
      } else {
        let a = r.start === '*' ? uids.length : r.start;
        let b = r.end === '*' ? uids.length : r.end;
        if (a > b) [a, b] = [b, a];
        for (let s = Math.max(1, a); s <= Math.min(b, uids.length); s++) out.add(uids[s - 1]!);
      }
    }
    return [...out].sort((a, b) => a - b);
  }

  seqOf(uid: number): number {
    const uids = this.selected?.uids;
    if (!uids) return 0;
    const i = lowerBound(uids, uid);
    return i < uids.length && uids[i] === uid ? i + 1 : 0;
  }

  async message(uid: number, known?: Buffer): Promise<{ raw: Buffer; index: MessageIndex } | null> {
    const sel = this.selected;
    if (!sel) return null;
    const cached = this.cache?.get(uid);
    if (cached) {
      // Refresh LRU position.
      this.cache!.delete(uid);
      this.cache!.set(uid, cached);
      return cached;
    }
    const raw = known ?? (await sel.handle.read(uid));
    if (!raw) return null;
    const entry = { raw, index: indexMessage(raw) };
    if (this.selected !== sel || raw.length > CACHE_BYTES / 2) return entry;
    this.cache ??= new Map();
    this.cache.set(uid, entry);
    this.cacheBytes += raw.length;
    for (const [key, value] of this.cache) {
      if (this.cache.size <= CACHE_ENTRIES && this.cacheBytes <= CACHE_BYTES) break;
      this.cache.delete(key);
      this.cacheBytes -= value.raw.length;
    }
    return entry;
  }

  // ----- ServerSession ------------------------------------------------------------------

  capabilities(): string[] {
    return capabilities({
      authenticated: this.state !== 'notauth',
      secure: this.secure,
      startTlsAvailable: this.config.secureContext !== undefined,
      loginDisabled: this.loginDisabled(),
      compressed: this.compressed,
      appendLimit: this.config.limits.appendLimit,
    });
  }

  loginDisabled(): boolean {
    if (this.secure || this.config.allowPlaintextLogin) return false;
    return this.config.loopbackIsRemote || !isLoopback(this.remoteAddress);
  }

  async authenticated(user: string): Promise<void> {
    this.userStore = await this.config.store.openUser(user);
    this.userName = user;
    this.state = 'auth';
    this.socket.setTimeout?.(this.config.limits.idleTimeoutMs);
    // The parent logger with the id as a field: a child logger per session would cost memory.
    this.config.log.info({ session: this.id, user, remote: this.remoteAddress }, 'login');
  }

  continuation(text: string): void {
    this.writer.continuation(text);
  }

  untaggedStatus(status: 'OK' | 'NO' | 'BAD', code: string | undefined, text: string): void {
    this.writer.tagged('*', status, code, text);
  }

  readLine(opts: { secret?: boolean } = {}): Promise<string | null> {
    if (this.ended) return Promise.resolve(null);
    this.parser.setLineMode(true);
    return new Promise((resolve) => {
      this.lineWaiter = { resolve, secret: opts.secret === true };
      // The line may already be buffered (pipelined by the client); otherwise wait for input.
      this.socket.resume();
      this.pumpLine();
    });
  }

  afterTagged(fn: () => void | Promise<void>): void {
    (this.after ??= []).push(fn);
  }

  async setSelected(selected: SelectedMailbox | undefined, opts: { closed?: boolean } = {}): Promise<void> {
    const previous = this.selected;
    this.selected = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    this.pendingExpunge = undefined;
    this.dirty = false;
    this.clearCache();
    if (previous) {
      // RFC 7162 3.2.11 / RFC 9051 7.1: [CLOSED] tells the client that responses now refer to the new mailbox.
      if (opts.closed) this.untaggedStatus('OK', 'CLOSED', 'Previous mailbox closed.');
      await previous.handle.close().catch((err: unknown) => this.log.warn({ err }, 'closing mailbox failed'));
    }
    if (selected) {
      this.selected = selected;
      this.state = 'selected';
      // A change may have landed between the handler's list() and this watch: look once.
      this.dirty = true;
      this.unwatch = this.store.watch((event) => {
        // Compare with the current name: RENAME of the selected mailbox updates it.
        if (this.selected !== selected || event.mailbox !== selected.name) return;
        // Our own flag changes and expunges were reported by the handler that made them; looking
        // again would cost a full changesSince after every STORE 1:*. Own appends (COPY into the
        // selected mailbox) still need an EXISTS.
        if (event.origin === this.id && (event.kind === 'flags' || event.kind === 'expunge')) return;
        this.dirty = true;
        if (this.idling) void this.syncSelected(true).catch((err: unknown) => this.log.warn({ err }, 'IDLE update failed'));
      });
    } else if (this.state === 'selected') {
      this.state = 'auth';
    }
  }

  syncSelected(allowExpunge: boolean, force = false): Promise<void> {
    const run = (): Promise<void> => this.doSync(allowExpunge, force);
    // One sync at a time: an IDLE wake-up may race the end of a command.
    const next = (this.syncing ?? Promise.resolve()).then(run, run);
    this.syncing = next;
    void next.finally(() => {
      if (this.syncing === next) this.syncing = undefined;
    }).catch(() => undefined);
    return next;
  }

  async whileIdling<T>(fn: () => Promise<T>): Promise<T> {
    this.idling = true;
    this.clearCache();
    this.socket.setTimeout?.(this.config.limits.idleCommandTimeoutMs);
    try {
      // Changes that happened before IDLE started go out now (RFC 2177: the server may send updates at once).
      const sel = this.selected;
      if (sel) {
        await this.syncSelected(true, true);
        // Synced and nothing held back: what was last reported is no longer needed to suppress
        // echoes (changesSince(syncedModSeq) will not return it again), so an idle session keeps none.
        if (this.selected === sel && !this.pendingExpunge) sel.meta.clear();
      }
      return await fn();
    } finally {
      this.idling = false;
      this.socket.setTimeout?.(this.config.limits.idleTimeoutMs);
    }
  }

  enable(extension: string): void {
    this.enabled.add(extension);
    if (extension === 'QRESYNC' || extension === 'CONDSTORE') this.condstoreActive = true;
    if (extension === 'QRESYNC') this.enabled.add('CONDSTORE');
    if (extension === 'UTF8=ACCEPT') this.writer.utf8 = true;
  }

  async startTls(): Promise<void> {
    const ctx = this.config.secureContext;
    if (!ctx) throw new Error('no TLS context');
    await this.writer.drain();
    const raw = this.socket;
    this.detach(raw);
    // The TLS socket keeps its own timer; the raw one must not fire behind our back.
    raw.setTimeout?.(0);
    // Anything the client sent after STARTTLS in plaintext must not be executed (RFC 3207 6 / CVE-2011-0411).
    this.parser = this.newParser();
    const secure = new TLSSocket(raw as Socket, { isServer: true, secureContext: ctx });
    this.socket = secure;
    this.secure = true;
    this.writer.setSink(this.sinkFor(secure));
    this.attach(secure);
    secure.setTimeout(this.config.limits.preAuthTimeoutMs);
  }

  async startCompression(): Promise<void> {
    await this.writer.drain();
    this.detach(this.socket);
    this.parser = this.newParser();
    this.compression = new Compression(this.socket, {
      onData: (chunk) => this.onInput(chunk),
      onError: (err) => {
        this.log.warn({ err }, 'compression error');
        this.destroy();
      },
    });
    this.compressed = true;
    this.writer.setSink(this.sinkFor(this.compression.output));
    this.attachLifecycle(this.socket);
  }

  close(byeText?: string): void {
    if (this.ended) return;
    if (byeText !== undefined) this.writer.bye(byeText);
    this.state = 'logout';
    this.ended = true;
    this.lineWaiter?.resolve(null);
    this.lineWaiter = undefined;
    this.writer.drain().then(
      () => this.endOutput(),
      () => this.destroy(),
    );
  }

  /** Shut the session down from the server side (server close). */
  shutdown(text = 'Server shutting down.'): void {
    this.close(text);
  }

  // ----- input ---------------------------------------------------------------------------

  private newParser(): CommandParser {
    return new CommandParser({
      maxLineLength: this.config.limits.maxLineLength,
      // A literal bigger than APPENDLIMIT can never be stored: refuse it before reading it.
      maxLiteralSize: this.config.limits.appendLimit,
    });
  }

  private sinkFor(stream: NodeJS.WritableStream): NodeJS.WritableStream {
    return this.config.debug ? new TraceSink(stream, this.log) : stream;
  }

  private readonly onData = (chunk: Buffer): void => this.onInput(chunk);
  private readonly onEnd = (): void => this.destroy();
  private readonly onClose = (): void => this.cleanup();
  private readonly onError = (err: Error): void => {
    this.log.debug({ err: err.message }, 'socket error');
    this.destroy();
  };
  private readonly onTimeout = (): void => {
    this.log.debug('inactivity timeout');
    this.close('Disconnected for inactivity.');
    // A client that does not read would keep the socket open forever; give it a moment, then cut.
    const socket = this.socket;
    socket.setTimeout?.(5_000);
    socket.once('timeout', () => socket.destroy());
  };

  private attach(socket: Duplex): void {
    socket.on('data', this.onData);
    this.attachLifecycle(socket);
  }

  private attachLifecycle(socket: Duplex): void {
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
    socket.on('timeout', this.onTimeout);
  }

  private detach(socket: Duplex): void {
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('close', this.onClose);
    socket.removeListener('error', this.onError);
    socket.removeListener('timeout', this.onTimeout);
  }

  private onInput(chunk: Buffer): void {
    if (this.ended) return;
    this.parser.push(chunk);
    if (this.lineWaiter) {
      this.pumpLine();
      return;
    }
    if (this.running) {
      // A command is executing: hold further input in the kernel rather than in memory.
      this.socket.pause();
      return;
    }
    this.running = true;
    void this.run();
  }

  private pumpLine(): void {
    const waiter = this.lineWaiter;
    if (!waiter) return;
    const ev = this.parser.next();
    if (!ev) return;
    this.lineWaiter = undefined;
    this.parser.setLineMode(false);
    if (this.running) this.socket.pause();
    if (ev.kind === 'line') {
      if (this.config.debug) this.log.debug({ in: waiter.secret ? '[redacted]' : ev.line }, 'C:');
      waiter.resolve(ev.line);
    } else if (ev.kind === 'error' && ev.fatal) {
      this.close(ev.message);
      waiter.resolve(null);
    } else {
      // An over-long line in line mode: treat as a line the command will reject.
      waiter.resolve(ev.kind === 'error' ? '' : null);
    }
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        if (this.ended) return;
        const ev = this.parser.next();
        if (!ev) break;
        await this.handleEvent(ev);
        // A client pipelining commands without reading answers must not grow our output queue without bound.
        if (this.writer.pending > OUTPUT_HIGH_WATER) await this.writer.drain();
      }
    } catch (err) {
      this.log.error({ err }, 'session failure');
      this.destroy();
      return;
    } finally {
      this.running = false;
    }
    if (this.ended) return;
    // Input ran dry: the session is idle; keep nothing per message.
    this.clearCache();
    this.socket.resume();
  }

  private async handleEvent(ev: ParserEvent): Promise<void> {
    switch (ev.kind) {
      case 'continue':
        this.writer.continuation('Ready for literal data');
        return;
      case 'error':
        if (this.config.debug) this.log.debug({ tag: ev.tag, error: ev.message }, 'C: (unparsable)');
        if (ev.fatal) {
          if (ev.tag !== '*' && ev.code === 'TOOBIG') this.writer.tagged(ev.tag, 'NO', ev.code, ev.message);
          this.close(ev.message);
          return;
        }
        // RFC 7889: a message above APPENDLIMIT is refused with NO [TOOBIG], not BAD; an unknown
        // SEARCH/SORT/THREAD charset is NO [BADCHARSET] (RFC 9051 6.4.4), as the handlers say too.
        this.writer.tagged(ev.tag, ev.code === 'TOOBIG' || ev.code === 'BADCHARSET' ? 'NO' : 'BAD', ev.code, ev.message);
        return;
      case 'line':
        // Only expected in line mode, which readLine handles; a stray one is ignored.
        return;
      case 'command':
        await this.execute(ev.command);
        return;
    }
  }

  private async execute(cmd: Command): Promise<void> {
    if (this.config.debug) this.log.debug({ in: traceCommand(cmd) }, 'C:');
    const entry = DISPATCH[cmd.name];
    if (!entry) {
      this.writer.tagged(cmd.tag, 'BAD', undefined, `Unknown command ${cmd.name}`);
      return;
    }
    if (!entry.states.includes(this.state)) {
      this.writer.tagged(cmd.tag, 'BAD', undefined, stateError(cmd.name, this.state));
      return;
    }
    let result: CommandResult;
    try {
      result = await (entry.handler as (ctx: ServerSession, cmd: Command) => Promise<CommandResult>)(this, cmd);
    } catch (err) {
      result = errorResult(err, this.log);
    }
    // The connection is going away (BYE already sent, e.g. the mailbox was deleted): no tagged reply.
    if (this.ended) return;
    if (this.selected && entry.sync !== 'none') {
      try {
        await this.syncSelected(entry.sync === 'full');
      } catch (err) {
        this.log.warn({ err }, 'mailbox sync failed');
      }
    }
    this.writer.tagged(cmd.tag, result.status, result.code, result.text);
    const after = this.after;
    this.after = undefined;
    if (after) for (const fn of after) await fn();
  }

  // ----- untagged updates ---------------------------------------------------------------

  private async doSync(allowExpunge: boolean, force: boolean): Promise<void> {
    const sel = this.selected;
    if (!sel || this.ended) return;
    const pending = this.pendingExpunge;
    if (!this.dirty && !force && !(allowExpunge && pending && pending.size > 0)) return;
    this.dirty = false;
    let changes;
    try {
      changes = await sel.handle.changesSince(sel.syncedModSeq);
    } catch (err) {
      if (err instanceof StoreError && err.code === 'NONEXISTENT') {
        // The mailbox was deleted under us: nothing sensible remains (Dovecot does the same).
        this.close('Selected mailbox was deleted, have to disconnect.');
        return;
      }
      throw err;
    }
    if (this.selected !== sel || this.ended) return;
    const expunged = new Set<number>(changes.expunged);
    if (pending) for (const uid of pending) expunged.add(uid);

    if (expunged.size > 0) {
      const gone = sel.uids.filter((u) => expunged.has(u));
      if (gone.length > 0) {
        if (allowExpunge) this.reportExpunged(sel, gone);
        else {
          this.pendingExpunge ??= new Set();
          for (const uid of gone) this.pendingExpunge.add(uid);
        }
      }
      if (allowExpunge) this.pendingExpunge = undefined;
    }

    const maxUid = sel.uids.length ? sel.uids[sel.uids.length - 1]! : 0;
    const added: MessageMeta[] = [];
    const withUid = this.enabled.has('QRESYNC');
    for (const m of changes.changed) {
      if (expunged.has(m.uid)) continue;
      if (m.uid > maxUid) {
        added.push(m);
        continue;
      }
      const seq = this.seqOf(m.uid);
      if (seq === 0) continue;
      // meta holds what this session last reported (its own STORE/FETCH included): no echo of that.
      const old = sel.meta.get(m.uid);
      if (old && sameFlags(old.flags, m.flags) && (!this.condstoreActive || old.modSeq === m.modSeq)) continue;
      sel.meta.set(m.uid, m);
      const items: ResponseValue[] = [];
      if (withUid) items.push({ atom: 'UID' }, m.uid);
      items.push({ atom: 'FLAGS' }, flagValues(m.flags, sel.recent.has(m.uid)));
      if (this.condstoreActive) items.push({ atom: 'MODSEQ' }, [m.modSeq]);
      this.writer.untagged([seq, { atom: 'FETCH' }, items]);
    }
    if (added.length > 0) {
      added.sort((a, b) => a.uid - b.uid);
      // Reassigned, never pushed: the view's array may be shared with other sessions (select.ts).
      sel.uids = sel.uids.concat(added.map((m) => m.uid));
      this.writer.untagged([sel.uids.length, { atom: 'EXISTS' }]);
      if (!this.enabled.has('IMAP4REV2')) {
        // New mail is recent to the first session that sees it (read-write), as after a SELECT.
        const last = added[added.length - 1]!.uid;
        const mark = sel.readOnly ? recentTracker.peek(sel.recentKey, last + 1) : recentTracker.claim(sel.recentKey, last, added[0]!.uid);
        const before = sel.recent.size;
        for (const m of added) if (m.uid > mark) sel.recent.add(m.uid);
        if (sel.recent.size !== before) this.writer.untagged([sel.recent.size, { atom: 'RECENT' }]);
      }
    }
    if (changes.highestModSeq > sel.syncedModSeq) sel.syncedModSeq = changes.highestModSeq;
  }

  /** Remove `gone` (ascending UIDs in the view) and tell the client: VANISHED under QRESYNC, else EXPUNGE. */
  private reportExpunged(sel: SelectedMailbox, gone: number[]): void {
    if (this.enabled.has('QRESYNC')) {
      this.writer.untagged([{ atom: 'VANISHED' }, { atom: formatSequenceSet(gone) }]);
    } else {
      // Highest sequence number first, so each number is still the one the client knows.
      for (let i = gone.length - 1; i >= 0; i--) {
        const seq = this.seqOf(gone[i]!);
        if (seq > 0) this.writer.untagged([seq, { atom: 'EXPUNGE' }]);
      }
    }
    const goneSet = new Set(gone);
    sel.uids = sel.uids.filter((u) => !goneSet.has(u));
    let recentGone = false;
    for (const uid of gone) {
      sel.meta.delete(uid);
      if (sel.recent.delete(uid)) recentGone = true;
      this.cacheDelete(uid);
    }
    // RFC 3501 7.3.2: the count of recent messages is sent again when the mailbox shrinks.
    if (recentGone) this.writer.untagged([sel.recent.size, { atom: 'RECENT' }]);
  }

  // ----- teardown ------------------------------------------------------------------------

  private clearCache(): void {
    this.cache = undefined;
    this.cacheBytes = 0;
  }

  private cacheDelete(uid: number): void {
    const entry = this.cache?.get(uid);
    if (!entry) return;
    this.cache!.delete(uid);
    this.cacheBytes -= entry.raw.length;
  }

  private endOutput(): void {
    if (this.compression) this.compression.end();
    else this.socket.end();
  }

  private destroy(): void {
    this.ended = true;
    this.lineWaiter?.resolve(null);
    this.lineWaiter = undefined;
    this.socket.destroy();
  }

  private cleanup(): void {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    this.ended = true;
    this.state = 'logout';
    this.lineWaiter?.resolve(null);
    this.lineWaiter = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    this.clearCache();
    this.compression?.destroy();
    const selected = this.selected;
    this.selected = undefined;
    const store = this.userStore;
    this.userStore = undefined;
    void (async () => {
      try {
        if (selected) await selected.handle.close();
        if (store) await store.close();
      } catch (err) {
        this.log.warn({ err }, 'releasing session resources failed');
      }
      this.resolveClosed();
    })();
  }
}

function stateError(name: string, state: SessionState): string {
  if (state === 'notauth') return `${name} is not allowed before authentication`;
  if (name === 'STARTTLS' || name === 'LOGIN' || name === 'AUTHENTICATE') return `${name}: already authenticated`;
  return `${name}: no mailbox selected`;
}

/** Index of the first element >= x in an ascending array. */
function lowerBound(arr: number[], x: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Same flag set, order and case of keywords aside? Flags compare case-insensitively (RFC 3501 2.3.2). */
function sameFlags(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a.map((f) => f.toLowerCase()));
  return b.every((f) => set.has(f.toLowerCase()));
}
