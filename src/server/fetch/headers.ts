/**
 * Header-only message loading for FETCH items that need nothing past the top-level header
 * (ENVELOPE, RFC822.HEADER, BODY[HEADER], BODY[HEADER.FIELDS (...)]), as Dovecot parses headers
 * only: the body is never indexed, and with a store that can read the start of a message
 * (PrefixReadable) it is never read either.
 */
import type { MailboxHandle } from '../../store/contract.js';
import { indexHeader, type MessageIndex } from '../../mime/index.js';
import type { BodyReader } from './bodies.js';

/** A handle with the optional MailboxHandle.readPrefix capability (store/contract.ts). */
export type PrefixReadable = Required<Pick<MailboxHandle, 'readPrefix'>>;

/** First read: headers of ordinary mail fit in a few KB (the 10,000-message bench: under 1 KB). */
export const HEADER_CHUNK = 8192;
/** Past this a header is pathological: read the whole message instead of growing further. */
const HEADER_MAX_PREFIX = 1 << 20;

/** A message's bytes (maybe only a prefix holding the whole header) and its header-only index. */
export interface HeaderSource {
  raw: Buffer;
  index: MessageIndex;
}

/** True when the handle offers readPrefix. */
export function canReadPrefix(handle: MailboxHandle): handle is MailboxHandle & PrefixReadable {
  return typeof handle.readPrefix === 'function';
}

/** Loads top-level headers, by prefix reads when the store can, else from whole messages (batched by `bodies`). */
export class HeaderReader {
  constructor(
    private readonly handle: MailboxHandle,
    private readonly bodies: BodyReader,
    private readonly chunk: number = HEADER_CHUNK,
  ) {}

  /** The header of a message, or null when it is gone. Call in ascending UID order (as BodyReader). */
  async read(uid: number): Promise<HeaderSource | null> {
    const handle = this.handle;
    if (canReadPrefix(handle)) {
      // Read a chunk; if the blank line is not in it, read a longer prefix (never re-parse the body).
      for (let want = this.chunk; want <= HEADER_MAX_PREFIX; want *= 4) {
        const got = await handle.readPrefix(uid, want);
        if (!got) return null;
        const { index, complete } = indexHeader(got.data);
        if (complete || got.whole) return { raw: got.data, index };
      }
    }
    const raw = await this.bodies.read(uid);
    return raw ? { raw, index: indexHeader(raw).index } : null;
  }
}
