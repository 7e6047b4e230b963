/** ENABLE (RFC 5161): CONDSTORE, QRESYNC (RFC 7162), UTF8=ACCEPT (RFC 6855), IMAP4rev2 (RFC 9051). */
import type { ResponseValue } from '../../protocol/values.js';
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

const ENABLEABLE = new Map([
  ['CONDSTORE', 'CONDSTORE'],
  ['QRESYNC', 'QRESYNC'],
  ['UTF8=ACCEPT', 'UTF8=ACCEPT'],
  ['IMAP4REV2', 'IMAP4rev2'],
]);

/** ENABLE capability...: answers `* ENABLED` with those newly turned on. */
export async function enableCommand(ctx: ServerSession, cmd: CommandNamed<'ENABLE'>): Promise<CommandResult> {
  const turnedOn: ResponseValue[] = [];
  const before = new Set(ctx.enabled);
  const listed = new Set<string>();
  for (const raw of cmd.capabilities) {
    const key = raw.toUpperCase();
    const spelled = ENABLEABLE.get(key);
    // Unknown names are ignored (RFC 5161 3.1); ones enabled by an earlier command are not listed again.
    if (!spelled || before.has(key) || listed.has(key)) continue;
    listed.add(key);
    ctx.enable(key);
    // QRESYNC implies CONDSTORE (RFC 7162 3.2.3); ctx.enable records both, only the asked one is listed.
    turnedOn.push({ atom: spelled });
  }
  ctx.untagged([{ atom: 'ENABLED' }, ...turnedOn]);
  return { status: 'OK', text: 'Enabled.' };
}
