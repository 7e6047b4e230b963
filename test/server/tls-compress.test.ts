/** STARTTLS, implicit TLS (self-signed certificate from openssl) and COMPRESS=DEFLATE. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { constants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSelfSigned } from '../../src/server/tls.js';
import { TestClient, loggedIn, startTestServer, type TestServer } from './helpers.js';

let dir: string;
let srv: TestServer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imapkit-tls-'));
  const material = await generateSelfSigned(dir);
  srv = await startTestServer({ tls: { cert: material.cert, key: material.key, implicitPort: 0 }, loopbackIsRemote: true });
});
afterAll(async () => {
  await srv.close();
  await rm(dir, { recursive: true, force: true });
});

/** Upgrade a test client's socket to TLS after STARTTLS's OK. */
async function upgrade(client: TestClient): Promise<void> {
  client.unlisten();
  const secure = tlsConnect({ socket: client.socket, rejectUnauthorized: false, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  client.listen(secure);
}

describe('generateSelfSigned', () => {
  it('reuses the pair it made before', async () => {
    const again = await generateSelfSigned(dir);
    expect(again.cert.toString()).toMatch(/BEGIN CERTIFICATE/);
    const third = await generateSelfSigned(dir);
    expect(third.cert.equals(again.cert)).toBe(true);
  });
});

describe('STARTTLS', () => {
  it('upgrades, then offers authentication instead of LOGINDISABLED', async () => {
    const { client, greeting } = await TestClient.connect(srv.port);
    expect(greeting).toContain(' STARTTLS');
    expect(greeting).toContain(' LOGINDISABLED');
    expect((await client.command('STARTTLS')).tagged).toMatch(/^OK/);
    await upgrade(client);
    const caps = await client.command('CAPABILITY');
    expect(caps.untagged[0]).not.toContain('STARTTLS');
    expect(caps.untagged[0]).not.toContain('LOGINDISABLED');
    expect(caps.untagged[0]).toContain('AUTH=PLAIN');
    expect((await client.command('LOGIN test1 pass')).tagged).toMatch(/^OK/);
    expect((await client.command('STARTTLS')).tagged).toMatch(/^BAD/);
    client.close();
  });

  it('discards commands sent in plaintext after STARTTLS (no command injection)', async () => {
    const { client } = await TestClient.connect(srv.port);
    client.sendRaw('T1 STARTTLS\r\nT2 CAPABILITY\r\n');
    expect(await client.readLine()).toMatch(/^T1 OK/);
    await upgrade(client);
    const r = await client.command('NOOP');
    expect(r.untagged).toEqual([]);
    expect(r.tagged).toMatch(/^OK/);
    client.close();
  });

  it('is answered NO when no certificate is configured', async () => {
    const plain = await startTestServer();
    const { client, greeting } = await TestClient.connect(plain.port);
    expect(greeting).not.toContain('STARTTLS');
    expect((await client.command('STARTTLS')).tagged).toMatch(/^NO/);
    client.close();
    await plain.close();
  });
});

describe('implicit TLS', () => {
  it('greets over TLS and allows login at once', async () => {
    const { client, greeting } = await TestClient.connect(srv.tlsPort!, { tls: true });
    expect(greeting).toMatch(/^\* OK \[CAPABILITY /);
    expect(greeting).not.toContain('STARTTLS');
    expect(greeting).not.toContain('LOGINDISABLED');
    expect((await client.command('LOGIN test1 pass')).tagged).toMatch(/^OK/);
    client.close();
  });
});

describe('COMPRESS=DEFLATE', () => {
  it('compresses both directions after the OK', async () => {
    const plain = await startTestServer();
    const client = await loggedIn(plain.port);
    expect((await client.command('COMPRESS DEFLATE')).tagged).toMatch(/^OK/);
    const socket = client.socket;
    client.unlisten();
    const inflate = createInflateRaw();
    const deflate = createDeflateRaw();
    let compressedIn = 0;
    socket.on('data', (chunk: Buffer) => {
      compressedIn += chunk.length;
      inflate.write(chunk);
    });
    inflate.on('data', (d: Buffer) => client.feed(d));
    deflate.on('data', (d: Buffer) => socket.write(d));
    client.write = (buf) => {
      deflate.write(buf);
      deflate.flush(constants.Z_SYNC_FLUSH);
    };
    const noop = await client.command('NOOP');
    expect(noop.tagged).toMatch(/^OK/);
    await client.command('CREATE Zipped');
    const list = await client.command('LIST "" "*"');
    expect(list.untagged).toContain('* LIST (\\HasNoChildren) "/" Zipped');
    const caps = await client.command('CAPABILITY');
    expect(caps.untagged[0]).not.toContain('COMPRESS=DEFLATE');
    expect((await client.command('COMPRESS DEFLATE')).tagged).toMatch(/^NO \[COMPRESSIONACTIVE\]/);
    // Everything since the OK arrived as DEFLATE data that inflated to valid responses.
    expect(compressedIn).toBeGreaterThan(0);
    const bye = await client.command('LOGOUT');
    expect(bye.untagged).toEqual(['* BYE Logging out.']);
    client.close();
    await plain.close();
  });

  it('refuses unknown mechanisms and unauthenticated use', async () => {
    const plain = await startTestServer();
    const { client } = await TestClient.connect(plain.port);
    expect((await client.command('COMPRESS DEFLATE')).tagged).toMatch(/^BAD/);
    await client.login();
    expect((await client.command('COMPRESS LZMA')).tagged).toMatch(/^BAD/);
    client.close();
    await plain.close();
  });
});
