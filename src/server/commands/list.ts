/**
 * LIST (RFC 9051 6.3.9) with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE
 * (RFC 6154) and CHILDREN (RFC 3348). The hierarchy separator is '/'. Patterns are matched by
 * simulating the pattern as an automaton, so the cost is O(name × pattern) for any pattern.
 */
import type { StatusItem } from '../../protocol/ast.js';
import type { ResponseValue } from '../../protocol/values.js';
import type { MailboxInfo } from '../../store/contract.js';
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';
import { mailboxValue, sendStatus } from './status.js';

/** Hierarchy separator of every store. */
export const SEPARATOR = '/';

/**
 * Compile a LIST pattern: `*` matches anything, `%` anything but the separator (RFC 9051 6.3.9).
 * The "INBOX" at the start of a name matches case-insensitively (RFC 9051 5.1).
 */
export function compilePattern(pattern: string): (name: string) => boolean {
  const p = [...pattern];
  const m = p.length;
  return (name: string): boolean => {
    const n = [...name];
    const inboxLen = /^INBOX(\/|$)/.test(name) ? 5 : 0;
    // states[i]: the automaton can be at pattern position i after the characters read so far.
    let states = new Uint8Array(m + 1);
    let next = new Uint8Array(m + 1);
    states[0] = 1;
    closure(states);
    for (let k = 0; k < n.length; k++) {
      const c = n[k]!;
      next.fill(0);
      let any = false;
      for (let i = 0; i < m; i++) {
        if (!states[i]) continue;
        const t = p[i]!;
        if (t === '*' || (t === '%' && c !== SEPARATOR)) {
          next[i] = 1;
          any = true;
        } else if (t === c || (k < inboxLen && t.toUpperCase() === c)) {
          next[i + 1] = 1;
          any = true;
        }
      }
      if (!any) return false;
      closure(next);
      [states, next] = [next, states];
    }
    return states[m] === 1;
  };

  function closure(states: Uint8Array): void {
    // A wildcard may match nothing: from position i the automaton may also be at i + 1.
    for (let i = 0; i < m; i++) if (states[i] && (p[i] === '*' || p[i] === '%')) states[i + 1] = 1;
  }
}

/** Every proper ancestor of a name: "a/b/c" → ["a", "a/b"]. */
function ancestors(name: string): string[] {
  const out: string[] = [];
  let i = name.indexOf(SEPARATOR);
  while (i > 0) {
    out.push(name.slice(0, i));
    i = name.indexOf(SEPARATOR, i + 1);
  }
  return out;
}

/** What one LIST/LSUB run asks for. */
export interface ListRequest {
  /** Decoded reference + pattern(s). */
  patterns: string[];
  /** Only subscribed mailboxes (LSUB, SUBSCRIBED selection). */
  subscribedOnly: boolean;
  /** Only mailboxes with a special-use attribute (RFC 6154 SPECIAL-USE selection). */
  specialUseOnly: boolean;
  /** RECURSIVEMATCH: report parents whose children match the selection (CHILDINFO). */
  recursiveMatch: boolean;
  /** Add \Subscribed. */
  returnSubscribed: boolean;
  /** LIST-EXTENDED answers use \NonExistent; basic LIST and LSUB use \Noselect. */
  extended: boolean;
}

/** One line of the answer. */
export interface ListEntry {
  name: string;
  attributes: string[];
  /** Mailbox exists and can be selected (LIST-STATUS is sent for these). */
  selectable: boolean;
  childInfo: boolean;
}

/** Compute the LIST answer (pure, exported for tests). */
export function listEntries(all: MailboxInfo[], req: ListRequest): ListEntry[] {
  const byName = new Map(all.map((m) => [m.name, m]));
  const matchers = req.patterns.map(compilePattern);
  const matches = (name: string): boolean => matchers.some((f) => f(name));
  // RFC 3501 6.3.8: only a pattern ending in '%' also returns the levels above hidden matches.
  const levelMatchers = req.patterns.filter((p) => p.endsWith('%')).map(compilePattern);
  const hasChildren = new Set<string>();
  for (const m of all) for (const a of ancestors(m.name)) hasChildren.add(a);

  const meets = (m: MailboxInfo | undefined): boolean =>
    m !== undefined && (!req.subscribedOnly || m.subscribed) && (!req.specialUseOnly || m.specialUse !== undefined);
  /** Names meeting the selection criteria. */
  const chosen = all.filter(meets).map((m) => m.name);
  /** Ancestor → some descendant meets the criteria; and → some such descendant is hidden by the pattern. */
  const chosenBelow = new Set<string>();
  const hiddenBelow = new Set<string>();
  for (const name of chosen) {
    const visible = matches(name);
    for (const a of ancestors(name)) {
      chosenBelow.add(a);
      if (!visible) hiddenBelow.add(a);
    }
  }

  const candidates = new Set<string>(chosen);
  for (const a of chosenBelow) candidates.add(a);
  const names = [...candidates].filter(matches).sort((a, b) => (a === 'INBOX' ? -1 : b === 'INBOX' ? 1 : a < b ? -1 : a > b ? 1 : 0));

  const out: ListEntry[] = [];
  for (const name of names) {
    const info = byName.get(name);
    const isChosen = meets(info);
    // RFC 5258 3.5: CHILDINFO for a name whose children meet the selection but are not otherwise shown.
    const childInfo =
      req.recursiveMatch && req.subscribedOnly && chosenBelow.has(name) && (!isChosen || hiddenBelow.has(name));
    // A parent that does not meet the criteria itself is shown where the pattern hides the
    // children that do (RFC 3501 6.3.8-9 for '%', LSUB included), or with CHILDINFO under
    // RECURSIVEMATCH; an extended LIST with selection options shows it only in the latter case.
    const selecting = req.extended && (req.subscribedOnly || req.specialUseOnly);
    const shownLevel = !selecting && hiddenBelow.has(name) && levelMatchers.some((f) => f(name));
    if (!isChosen && !childInfo && !shownLevel) continue;
    const attributes: string[] = [];
    if (!info) attributes.push(req.extended ? '\\NonExistent' : '\\Noselect');
    else if (!isChosen && !req.extended) attributes.push('\\Noselect');
    // LSUB implies it by its verb; LIST (SUBSCRIBED) and RETURN (SUBSCRIBED) spell it out (RFC 5258 3.4).
    if (info?.subscribed && (req.returnSubscribed || (req.subscribedOnly && req.extended))) attributes.push('\\Subscribed');
    attributes.push(hasChildren.has(name) ? '\\HasChildren' : '\\HasNoChildren');
    if (info?.specialUse) attributes.push(info.specialUse);
    out.push({ name, attributes, selectable: info !== undefined, childInfo });
  }
  return out;
}

/** Reference + pattern as one decoded pattern (RFC 9051 6.3.9: the reference is a prefix). */
export function canonicalPattern(ctx: ServerSession, reference: string, pattern: string): string {
  return ctx.decodeMailbox(reference + pattern);
}

/** Write LIST or LSUB lines for the entries. */
export function sendEntries(ctx: ServerSession, verb: 'LIST' | 'LSUB', entries: ListEntry[]): void {
  for (const e of entries) {
    const values: ResponseValue[] = [{ atom: verb }, e.attributes.map((a) => ({ atom: a })), SEPARATOR, mailboxValue(ctx.encodeMailbox(e.name))];
    if (e.childInfo) values.push(['CHILDINFO', ['SUBSCRIBED']]);
    ctx.untagged(values);
  }
}

/** LIST [(selection)] reference pattern(s) [RETURN (...)]. */
export async function listCommand(ctx: ServerSession, cmd: CommandNamed<'LIST'>): Promise<CommandResult> {
  const selection = new Set(cmd.selection.map((s) => s.toUpperCase()));
  if (selection.has('RECURSIVEMATCH') && !selection.has('SUBSCRIBED') && !selection.has('SPECIAL-USE')) {
    // RFC 5258 3: RECURSIVEMATCH alone is a syntax error.
    return { status: 'BAD', text: 'RECURSIVEMATCH needs another selection option.' };
  }
  // LIST "" "": the hierarchy delimiter and root (RFC 9051 6.3.9).
  if (cmd.patterns.length === 1 && cmd.patterns[0] === '' && !cmd.extended) {
    ctx.untagged([{ atom: 'LIST' }, [{ atom: '\\Noselect' }], SEPARATOR, '']);
    return { status: 'OK', text: 'List completed.' };
  }
  const patterns = cmd.patterns.filter((p) => p !== '').map((p) => canonicalPattern(ctx, cmd.reference, p));
  const all = await ctx.store.listMailboxes();
  const entries = listEntries(all, {
    patterns,
    subscribedOnly: selection.has('SUBSCRIBED'),
    specialUseOnly: selection.has('SPECIAL-USE'),
    recursiveMatch: selection.has('RECURSIVEMATCH'),
    returnSubscribed: cmd.returnSubscribed,
    extended: cmd.extended,
  });
  const statusItems: StatusItem[] | undefined = cmd.returnStatus;
  for (const e of entries) {
    sendEntries(ctx, 'LIST', [e]);
    if (statusItems && statusItems.length && e.selectable) {
      try {
        await sendStatus(ctx, e.name, statusItems);
      } catch (err) {
        // RFC 5819: a mailbox whose status cannot be had is listed without STATUS.
        ctx.log.debug({ err, mailbox: e.name }, 'LIST-STATUS skipped');
      }
    }
    await ctx.drain();
  }
  return { status: 'OK', text: 'List completed.' };
}
