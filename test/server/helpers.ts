/**
 * Test helpers for the server: a server on 127.0.0.1 with a random port over the memory store
 * (users test1/pass and test2/pass), and a small raw IMAP client that understands literals.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { MemoryStore } from '../../src/store/memory/store.js';
import type { MailStore } from '../../src/store/contract.js';
import { ImapServer, type ImapServerOptions } from '../../src/server/server.js';

/** A running test server. */
export interface TestServer {
  port: number;
  tlsPort?: number;
  server: ImapServer;
  store: MailStore;
  close(): Promise<void>;
}

/** Low scrypt cost: tests create users often. */
const TEST_SCRYPT_LN = 4;

/** A memory store with users test1/pass and test2/pass. */
export async function testStore(): Promise<MemoryStore> {
  const store = new MemoryStore({ scryptLn: TEST_SCRYPT_LN });
  await store.users.addUser('test1', 'pass');
  await store.users.addUser('test2', 'pass');
  return store;
}

/**
 * Start a server on 127.0.0.1 with a random port. Without `store`, a memory store with users
 * test1/pass and test2/pass. Failed logins are not slowed down unless `limits` says so.
 */
export async function startTestServer(
  opts: { store?: MailStore } & Partial<Omit<ImapServerOptions, 'store' | 'host' | 'port'>> = {},
): Promise<TestServer> {
  const store = opts.store ?? (await testStore());
  const server = new ImapServer({
    ...opts,
    store,
    host: '127.0.0.1',
    port: 0,
    limits: { failedLoginDelayMs: 0, ...opts.limits },
  });
  const info = await server.listen();
  return {
    port: info.port,
    tlsPort: info.tlsPort,
    server,
    store,
    close: async () => {
      await server.close();
      if (!opts.store) await store.close();
    },
  };
}

/** Result of one tagged command. */
export interface Reply {
  /** The tagged line, e.g. "A1 OK [READ-WRITE] SELECT completed." */
  tagged: string;
  /** Untagged and continuation lines before it, literals inlined. */
  untagged: string[];
}

/** A raw IMAP client for tests: lines in, lines out; literal bodies are inlined into their line. */
export class TestClient {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;
  private tagNo = 0;
  /** Replaced by tests that layer compression on the connection. */
  write: (data: Buffer) => void;

  constructor(public socket: Socket | TLSSocket) {
    this.write = (data) => {
      this.socket.write(data);
    };
    this.listen(socket);
  }

  /** Connect to 127.0.0.1:port (TLS when `tls`), and read the greeting. */
  static async connect(port: number, opts: { tls?: boolean } = {}): Promise<{ client: TestClient; greeting: string }> {
    const socket = opts.tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : netConnect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const client = new TestClient(socket);
    const greeting = await client.readLine();
    return { client, greeting };
  }

  /** Start reading from a (new) socket, e.g. after STARTTLS. */
  listen(socket: Socket | TLSSocket): void {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.feed(chunk));
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  /** Stop reading from the current socket (before STARTTLS takes it over). */
  unlisten(): void {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
  }

  /** Hand received bytes to the line reader (used by compression layers in tests). */
  feed(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    this.wake?.();
  }

  /** True once the server closed the connection. */
  get closed(): boolean {
    return this.ended;
  }

  /** Bytes received but not read yet. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Send raw text (no CRLF added). */
  sendRaw(text: string | Buffer): void {
    this.write(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  }

  /** Send one line (CRLF added). */
  send(line: string): void {
    this.sendRaw(`${line}\r\n`);
  }

  /** Next response line with any literals inlined; rejects when the connection closes first. */
  async readLine(timeoutMs = 10_000): Promise<string> {
    let line = '';
    for (;;) {
      const crlf = await this.waitFor(() => {
        const i = this.buf.indexOf('\r\n');
        return i >= 0 ? i : undefined;
      }, timeoutMs);
      const part = this.buf.subarray(0, crlf).toString('utf8');
      this.buf = this.buf.subarray(crlf + 2);
      line += part;
      const lit = /~?\{(\d+)\}$/.exec(part);
      if (!lit) return line;
      const size = Number(lit[1]);
      await this.waitFor(() => (this.buf.length >= size ? size : undefined), timeoutMs);
      line += '\r\n' + this.buf.subarray(0, size).toString('utf8');
      this.buf = this.buf.subarray(size);
    }
  }

  private async waitFor<T>(check: () => T | undefined, timeoutMs: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      for (;;) {
        const v = check();
        if (v !== undefined) return v;
        if (this.ended) throw new Error(`connection closed; unread: ${JSON.stringify(this.buf.toString('utf8'))}`);
        await new Promise<void>((resolve, reject) => {
          this.wake = resolve;
          timer = setTimeout(() => reject(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
        });
        clearTimeout(timer);
        this.wake = undefined;
      }
    } finally {
      clearTimeout(timer);
      this.wake = undefined;
    }
  }

  /** Read lines until the tagged response for `tag`. */
  async readUntilTagged(tag: string): Promise<Reply> {
    const untagged: string[] = [];
    for (;;) {
      const line = await this.readLine();
      if (line.startsWith(`${tag} `)) return { tagged: line, untagged };
      untagged.push(line);
    }
  }

  /** A fresh tag. */
  nextTag(): string {
    return `A${++this.tagNo}`;
  }

  /** Send `TAG text` and collect the answer. */
  async command(text: string): Promise<Reply> {
    const tag = this.nextTag();
    this.send(`${tag} ${text}`);
    const reply = await this.readUntilTagged(tag);
    // Make assertions easy: strip the tag from the tagged line.
    return { tagged: reply.tagged.slice(tag.length + 1), untagged: reply.untagged };
  }

  /** LOGIN and assert OK. */
  async login(user = 'test1', password = 'pass'): Promise<Reply> {
    const r = await this.command(`LOGIN ${user} ${password}`);
    if (!r.tagged.startsWith('OK')) throw new Error(`login failed: ${r.tagged}`);
    return r;
  }

  /** Close the socket. */
  close(): void {
    this.socket.destroy();
  }
}

/** Connect and log in as `user`. */
export async function loggedIn(port: number, user = 'test1'): Promise<TestClient> {
  const { client } = await TestClient.connect(port);
  await client.login(user);
  return client;
}

/** A small RFC 5322 message. */
export function sampleMessage(subject = 'Hello', body = 'Hi there.'): string {
  return `From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\nSubject: ${subject}\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n\r\n${body}\r\n`;
}

/** APPEND a message with a non-synchronizing literal; returns the tagged line. */
export async function append(client: TestClient, mailbox: string, message: string, flags = ''): Promise<Reply> {
  const size = Buffer.byteLength(message);
  return client.command(`APPEND ${mailbox}${flags ? ` (${flags})` : ''} {${size}+}\r\n${message}`);
}
