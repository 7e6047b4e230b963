/** COMPRESS (RFC 4978): DEFLATE from the byte after the tagged OK, both ways. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** COMPRESS DEFLATE. */
export async function compressCommand(ctx: ServerSession, cmd: CommandNamed<'COMPRESS'>): Promise<CommandResult> {
  if (cmd.mechanism.toUpperCase() !== 'DEFLATE') return { status: 'BAD', text: `Unknown compression mechanism ${cmd.mechanism}.` };
  if (ctx.compressed) return { status: 'NO', code: 'COMPRESSIONACTIVE', text: 'Compression is already active.' };
  ctx.afterTagged(() => ctx.startCompression());
  return { status: 'OK', text: 'DEFLATE active.' };
}
