/** Shutting down listeners: clients get a moment to read their goodbye, then connections are cut. */
import type { Socket } from 'node:net';

/** How long a closing server waits for clients to hang up by themselves. */
export const CLOSE_GRACE_MS = 2_000;

/** Resolves when `allClosed` does or, after `ms`, once every socket still in `sockets` is destroyed. */
export async function closeWithGrace(sockets: Iterable<Socket>, allClosed: Promise<unknown>, ms = CLOSE_GRACE_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      for (const s of sockets) s.destroy();
      resolve();
    }, ms);
  });
  await Promise.race([allClosed, grace]);
  clearTimeout(timer);
}
