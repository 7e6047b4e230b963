/**
 * A TCP relay that delays every byte by a fixed time in each direction: the round trips of a
 * distant server on loopback (the kernel here has no netem). 25 ms each way is a 50 ms round
 * trip. Order is kept (timers of equal delay fire in the order they were set); bandwidth is not
 * limited. Usable as a module (startDelayRelay) or on its own:
 *   node --import tsx bench/delay-relay.ts LISTEN_PORT TARGET_HOST TARGET_PORT [DELAY_MS]
 */
import net from 'node:net';
import { fileURLToPath } from 'node:url';

/** A running relay. */
export interface DelayRelay {
  port: number;
  close(): Promise<void>;
}

/** Start a relay on 127.0.0.1:listenPort (0: any free port) to target, delaying each direction by delayMs. */
export function startDelayRelay(target: { host: string; port: number }, delayMs: number, listenPort = 0): Promise<DelayRelay> {
  const sockets = new Set<net.Socket>();
  const pipe = (from: net.Socket, to: net.Socket) => {
    from.on('data', (d: Buffer) => {
      setTimeout(() => {
        if (!to.destroyed) to.write(d);
      }, delayMs);
    });
    from.on('end', () => setTimeout(() => to.end(), delayMs));
    from.on('error', () => setTimeout(() => to.destroy(), delayMs));
    from.on('close', () => setTimeout(() => to.destroy(), delayMs + 1));
  };
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const up = net.connect(target.port, target.host);
    up.setNoDelay(true);
    sockets.add(client);
    sockets.add(up);
    client.on('close', () => sockets.delete(client));
    up.on('close', () => sockets.delete(up));
    pipe(client, up);
    pipe(up, client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((res) => {
            for (const s of sockets) s.destroy();
            server.close(() => res());
          }),
      });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [listen, host, port, delay] = process.argv.slice(2);
  if (!listen || !host || !port) {
    console.error('usage: delay-relay.ts LISTEN_PORT TARGET_HOST TARGET_PORT [DELAY_MS]');
    process.exit(64);
  }
  const r = await startDelayRelay({ host, port: Number(port) }, Number(delay ?? 25), Number(listen));
  console.error(`delay-relay: 127.0.0.1:${r.port} -> ${host}:${port}, ${Number(delay ?? 25)} ms each way`);
}
