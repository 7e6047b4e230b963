/**
 * A small SessionContext for unit tests of the message commands: a memory store, one selected
 * mailbox, and every untagged response captured both as values and as the wire text the writer
 * would produce.
 */
import type { SequenceSet, SeqRange } from '../../src/protocol/ast.js';
import { expandSequenceSet } from '../../src/protocol/sequence.js';
import type { ResponseValue } from '../../src/protocol/values.js';
import { encodeLine } from '../../src/protocol/writer.js';
import { decodeMailboxName } from '../../src/protocol/utf7.js';
import { indexMessage, type MessageIndex } from '../../src/mime/index.js';
import { MemoryStore } from '../../src/store/memory/store.js';
import type { MailboxHandle, NewMessage, UserMailStore } from '../../src/store/contract.js';
import { MailboxNameError, type CommandResult, type SelectedMailbox, type SessionContext } from '../../src/server/context.js';
import { silentLogger } from '../../src/log/logger.js';

/** A message to put in the test mailbox: raw text, or text with flags and a date. */
export type TestMessage = string | Buffer | { data: string | Buffer; flags?: string[]; date?: Date };

/** The fake context plus handles the tests poke at. */
export interface TestSession {
  ctx: FakeContext;
  store: MemoryStore;
  user: UserMailStore;
  handle: MailboxHandle;
  sel: SelectedMailbox;
}

/** Captures output; everything else is the contract implemented over the selected mailbox. */
export class FakeContext implements SessionContext {
  readonly id: string;
  readonly user = 'test';
  readonly enabled = new Set<string>();
  condstoreActive = false;
  readonly limits = { appendLimit: 64 * 1024 * 1024 };
  readonly log = silentLogger();
  selected: SelectedMailbox | undefined;
  /** Untagged responses as values. */
  readonly values: ResponseValue[][] = [];
  /** Untagged responses as wire text (latin1, CRLF stripped). */
  readonly lines: string[] = [];
  drains = 0;
  private readonly cache = new Map<number, { raw: Buffer; index: MessageIndex }>();

  constructor(
    readonly store: UserMailStore,
    id = 'session-1',
  ) {
    this.id = id;
  }

  untagged(values: ResponseValue[]): void {
    this.values.push(values);
    this.lines.push(encodeLine('*', values, { utf8: true }).toString('latin1').replace(/\r\n$/, ''));
  }

  async drain(): Promise<void> {
    this.drains++;
  }

  decodeMailbox(wire: string): string {
    try {
      return decodeMailboxName(wire);
    } catch (err) {
      throw new MailboxNameError((err as Error).message);
    }
  }

  encodeMailbox(name: string): string {
    return name;
  }

  resolve(set: SequenceSet, uid: boolean): number[] {
    const sel = this.selected;
    if (!sel) return [];
    if (set.kind === 'saved') return expandSequenceSet(set, sel.uids, sel.savedResult);
    if (uid) return expandSequenceSet(set, sel.uids);
    const seqs = expandSequenceSet(set, sel.uids.map((_, i) => i + 1));
    return seqs.map((s) => sel.uids[s - 1]);
  }

  seqOf(uid: number): number {
    return (this.selected?.uids.indexOf(uid) ?? -1) + 1;
  }

  async message(uid: number): Promise<{ raw: Buffer; index: MessageIndex } | null> {
    const hit = this.cache.get(uid);
    if (hit) return hit;
    const raw = await this.selected?.handle.read(uid);
    if (!raw) return null;
    const m = { raw, index: indexMessage(raw) };
    this.cache.set(uid, m);
    return m;
  }

  /** Clears captured output. */
  clear(): void {
    this.values.length = 0;
    this.lines.length = 0;
  }
}

/** Builds a NewMessage from a TestMessage; text gets CRLF line ends. */
export function toNewMessage(m: TestMessage): NewMessage {
  const crlf = (s: string): Buffer => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');
  if (typeof m === 'string') return { data: crlf(m) };
  if (Buffer.isBuffer(m)) return { data: m };
  return { data: typeof m.data === 'string' ? crlf(m.data) : m.data, flags: m.flags, internalDate: m.date };
}

/** A memory store holding `messages` in INBOX (plus any other mailboxes), with INBOX selected. */
export async function openSession(
  messages: TestMessage[],
  opts: { readOnly?: boolean; mailboxes?: string[]; enable?: string[]; store?: MemoryStore } = {},
): Promise<TestSession> {
  const store = opts.store ?? new MemoryStore({ scryptLn: 1 });
  const user = await store.openUser('test');
  for (const name of opts.mailboxes ?? []) await user.createMailbox(name);
  if (messages.length > 0) await user.append('INBOX', messages.map(toNewMessage));
  const ctx = new FakeContext(user);
  for (const e of opts.enable ?? []) ctx.enabled.add(e);
  if (ctx.enabled.has('QRESYNC') || ctx.enabled.has('CONDSTORE')) ctx.condstoreActive = true;
  const sel = await selectMailbox(ctx, 'INBOX', opts.readOnly ?? false);
  return { ctx, store, user, handle: sel.handle, sel };
}

/** Opens a mailbox into ctx.selected the way SELECT/EXAMINE would. */
export async function selectMailbox(ctx: FakeContext, name: string, readOnly: boolean): Promise<SelectedMailbox> {
  const handle = await ctx.store.open(name);
  const list = await handle.list();
  const status = await handle.status();
  const sel: SelectedMailbox = {
    handle,
    name,
    readOnly,
    uids: list.map((m) => m.uid),
    meta: new Map(list.map((m) => [m.uid, m])),
    syncedModSeq: status.highestModSeq,
    savedResult: [],
    recent: new Set(),
    recentKey: `test\0${name}`,
  };
  ctx.selected = sel;
  return sel;
}

/** A sequence set from text such as "1:3,5,*" or "$" (tests only; no validation). */
export function seqSet(text: string): SequenceSet {
  if (text === '$') return { kind: 'saved' };
  const ranges: SeqRange[] = text.split(',').map((part) => {
    const [a, b] = part.split(':');
    const n = (s: string): number | '*' => (s === '*' ? '*' : Number(s));
    return { start: n(a), end: n(b ?? a) };
  });
  return { kind: 'ranges', ranges };
}

/** Formats a tagged result the way the writer would, for readable assertions. */
export function tagged(r: CommandResult): string {
  return `${r.status}${r.code ? ` [${r.code}]` : ''} ${r.text}`;
}

/** A plain RFC 5322 message with the given headers and body. */
export function mail(headers: Record<string, string>, body = 'Hello.\n'): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `${lines.join('\n')}\n\n${body}`;
}
