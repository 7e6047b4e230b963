/** `imapkit serve --lmtp`: the option, the start-up line, and the listener's life inside startServe(). */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register, startServe } from '../../src/cli/serve.js';
import { silentLogger } from '../../src/log/logger.js';
import { TestClient } from '../server/helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imapkit-serve-lmtp-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function output(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

/** Does anything accept connections on 127.0.0.1:port? */
function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('imapkit serve --lmtp', () => {
  it('is listed by serve --help', () => {
    const program = new Command();
    register(program);
    const help = program.commands.find((c) => c.name() === 'serve')!.helpInformation();
    expect(help).toMatch(/--lmtp <address>/);
    expect(help).toMatch(/HOST:PORT/);
  });

  it('starts the LMTP listener with the server, names it in the start-up line, delivers, and stops it', async () => {
    const out = output();
    const running = await startServe({ host: '127.0.0.1', port: 0, store: 'memory', lmtp: '127.0.0.1:0', users: 'store' }, { stdout: out.stream, env: { XDG_DATA_HOME: dir } }, silentLogger());
    const info = running.lmtp!.address;
    expect(info.kind).toBe('tcp');
    const port = info.kind === 'tcp' ? info.port : 0;
    expect(out.text()).toMatch(new RegExp(`^imapkit serving memory on 127\\.0\\.0\\.1:\\d+; LMTP on 127\\.0\\.0\\.1:${port}\\n$`));
    await running.store.users!.addUser('dana', 'pw');
    const { client, greeting } = await TestClient.connect(port);
    expect(greeting).toMatch(/^220 /);
    client.sendRaw('LHLO t\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<dana@example.org>\r\nDATA\r\n');
    const codes: string[] = [];
    for (;;) {
      const line = await client.readLine();
      if (line[3] === ' ') codes.push(line.slice(0, 3));
      if (codes.length === 4) break;
    }
    expect(codes).toEqual(['250', '250', '250', '354']);
    client.sendRaw('Subject: hi\r\n\r\nhi\r\n.\r\n');
    expect(await client.readLine()).toBe('250 2.0.0 <dana@example.org> Saved');
    const u = await running.store.openUser('dana');
    expect((await u.status('INBOX')).messages).toBe(1);
    await u.close();
    client.close();
    await running.stop();
    expect(await accepting(port)).toBe(false);
  });

  it('fails to start, naming LMTP, when its address is taken, and leaves no IMAP listener behind', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as AddressInfo).port;
    const imapPort = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    try {
      await expect(
        startServe({ host: '127.0.0.1', port: imapPort, store: 'memory', lmtp: String(taken), users: 'store' }, { stdout: new PassThrough(), env: { XDG_DATA_HOME: dir } }, silentLogger()),
      ).rejects.toThrow(new RegExp(`LMTP on 127\\.0\\.0\\.1:${taken}: .*EADDRINUSE`));
      expect(await accepting(imapPort)).toBe(false);
    } finally {
      blocker.close();
    }
  });
});
