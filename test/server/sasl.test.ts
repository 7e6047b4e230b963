/** AUTHENTICATE: PLAIN (with and without SASL-IR), LOGIN, SCRAM-SHA-256 (client computed here), LOGINDISABLED. */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSaslName, scramSha256Mechanism } from '../../src/server/sasl/scram-sha-256.js';
import { plainMechanism } from '../../src/server/sasl/plain.js';
import { scramCredentials } from '../../src/auth/password.js';
import { TestClient, startTestServer, type TestServer } from './helpers.js';

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

async function connect(): Promise<TestClient> {
  return (await TestClient.connect(srv.port)).client;
}

describe('PLAIN', () => {
  it('accepts an initial response (SASL-IR) and answers with capabilities', async () => {
    const c = await connect();
    const r = await c.command(`AUTHENTICATE PLAIN ${b64('\0test1\0pass')}`);
    expect(r.tagged).toMatch(/^OK \[CAPABILITY IMAP4rev1 .*\] Logged in/);
    expect((await c.command('SELECT INBOX')).tagged).toMatch(/^OK/);
    c.close();
  });

  it('sends an empty challenge without an initial response', async () => {
    const c = await connect();
    c.send('P1 AUTHENTICATE PLAIN');
    expect(await c.readLine()).toBe('+ ');
    c.send(b64('test1\0test1\0pass'));
    expect(await c.readLine()).toMatch(/^P1 OK/);
    c.close();
  });

  it('fails a wrong password with NO and refuses another authorization identity', async () => {
    const c = await connect();
    expect((await c.command(`AUTHENTICATE PLAIN ${b64('\0test1\0nope')}`)).tagged).toMatch(/^NO \[AUTHENTICATIONFAILED\]/);
    expect((await c.command(`AUTHENTICATE PLAIN ${b64('test2\0test1\0pass')}`)).tagged).toMatch(/^NO/);
    expect((await c.command('AUTHENTICATE PLAIN !!notbase64')).tagged).toMatch(/^BAD/);
    expect((await c.command(`AUTHENTICATE PLAIN ${b64('no-nuls')}`)).tagged).toMatch(/^BAD/);
    c.close();
  });

  it('is cancelled by "*" with BAD', async () => {
    const c = await connect();
    c.send('P2 AUTHENTICATE PLAIN');
    expect(await c.readLine()).toBe('+ ');
    c.send('*');
    expect(await c.readLine()).toMatch(/^P2 BAD .*cancel/i);
    expect((await c.command('NOOP')).tagged).toMatch(/^OK/);
    c.close();
  });

  it('answers NO for an unknown mechanism', async () => {
    const c = await connect();
    expect((await c.command('AUTHENTICATE CRAM-MD5')).tagged).toMatch(/^NO/);
    c.close();
  });

  it('the mechanism refuses a wrong password without the server', async () => {
    const mech = plainMechanism({ verify: async (u, p) => u === 'x' && p === 'y', scramCredentials: async () => null });
    expect(await mech.start(Buffer.from('\0x\0y'))).toEqual({ kind: 'success', user: 'x' });
    expect((await mech.start(Buffer.from('\0x\0z'))).kind).toBe('failure');
  });
});

describe('LOGIN mechanism', () => {
  it('asks for user name and password', async () => {
    const c = await connect();
    c.send('L1 AUTHENTICATE LOGIN');
    expect(unb64((await c.readLine()).slice(2))).toBe('Username:');
    c.send(b64('test1'));
    expect(unb64((await c.readLine()).slice(2))).toBe('Password:');
    c.send(b64('pass'));
    expect(await c.readLine()).toMatch(/^L1 OK/);
    c.close();
  });

  it('takes the user name as initial response', async () => {
    const c = await connect();
    c.send(`L2 AUTHENTICATE LOGIN ${b64('test1')}`);
    expect(unb64((await c.readLine()).slice(2))).toBe('Password:');
    c.send(b64('wrong'));
    expect(await c.readLine()).toMatch(/^L2 NO/);
    c.close();
  });
});

/** A SCRAM-SHA-256 client (RFC 5802 section 3), computed from the password. */
function scramClient(user: string, password: string) {
  const nonce = randomBytes(12).toString('base64');
  const bare = `n=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${nonce}`;
  return {
    first: `n,,${bare}`,
    final(serverFirst: string): { message: string; expectedServerSignature: string } {
      const attrs = Object.fromEntries(serverFirst.split(',').map((p) => [p[0], p.slice(2)]));
      expect(attrs.r!.startsWith(nonce)).toBe(true);
      const salted = pbkdf2Sync(password, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), 32, 'sha256');
      const clientKey = createHmac('sha256', salted).update('Client Key').digest();
      const storedKey = createHash('sha256').update(clientKey).digest();
      const withoutProof = `c=${b64('n,,')},r=${attrs.r}`;
      const authMessage = `${bare},${serverFirst},${withoutProof}`;
      const signature = createHmac('sha256', storedKey).update(authMessage).digest();
      const proof = Buffer.alloc(32);
      for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ signature[i]!;
      const serverKey = createHmac('sha256', salted).update('Server Key').digest();
      const serverSignature = createHmac('sha256', serverKey).update(authMessage).digest('base64');
      return { message: `${withoutProof},p=${proof.toString('base64')}`, expectedServerSignature: serverSignature };
    },
  };
}

describe('SCRAM-SHA-256', () => {
  async function run(user: string, password: string, withIr: boolean): Promise<{ tagged: string; verifier?: string; expected?: string }> {
    const c = await connect();
    const client = scramClient(user, password);
    c.send(withIr ? `S1 AUTHENTICATE SCRAM-SHA-256 ${b64(client.first)}` : 'S1 AUTHENTICATE SCRAM-SHA-256');
    if (!withIr) {
      expect(await c.readLine()).toBe('+ ');
      c.send(b64(client.first));
    }
    const challenge = await c.readLine();
    expect(challenge.startsWith('+ ')).toBe(true);
    const { message, expectedServerSignature } = client.final(unb64(challenge.slice(2)));
    c.send(b64(message));
    const next = await c.readLine();
    if (!next.startsWith('+ ')) {
      c.close();
      return { tagged: next };
    }
    const verifier = unb64(next.slice(2));
    c.send('');
    const tagged = await c.readLine();
    c.close();
    return { tagged, verifier, expected: `v=${expectedServerSignature}` };
  }

  it('authenticates and proves the server knows the key', async () => {
    const r = await run('test1', 'pass', true);
    expect(r.verifier).toBe(r.expected);
    expect(r.tagged).toMatch(/^S1 OK \[CAPABILITY/);
  });

  it('works without an initial response too', async () => {
    const r = await run('test2', 'pass', false);
    expect(r.tagged).toMatch(/^S1 OK/);
  });

  it('fails a wrong password, and an unknown user the same way', async () => {
    expect((await run('test1', 'bad', true)).tagged).toMatch(/^S1 NO \[AUTHENTICATIONFAILED\]/);
    expect((await run('ghost', 'pass', true)).tagged).toMatch(/^S1 NO \[AUTHENTICATIONFAILED\]/);
  });

  it('gives an unknown user a stable salt, so probing cannot tell it apart', async () => {
    const users = { verify: async () => false, scramCredentials: async () => null };
    const salts: string[] = [];
    for (let i = 0; i < 2; i++) {
      const step = await scramSha256Mechanism(users).start(Buffer.from('n,,n=ghost,r=abc'));
      expect(step.kind).toBe('challenge');
      salts.push(/s=([^,]+)/.exec((step as { data: Buffer }).data.toString())![1]!);
    }
    expect(salts[0]).toBe(salts[1]);
  });

  it('rejects channel binding, a changed nonce and malformed messages', async () => {
    const creds = scramCredentials('pw', 4096);
    const users = { verify: async () => false, scramCredentials: async () => creds };
    expect((await scramSha256Mechanism(users).start(Buffer.from('p=tls-unique,,n=u,r=abc'))).kind).toBe('failure');
    expect((await scramSha256Mechanism(users).start(Buffer.from('garbage'))).kind).toBe('failure');
    const mech = scramSha256Mechanism(users);
    await mech.start(Buffer.from('n,,n=u,r=abc'));
    const step = await mech.step(Buffer.from(`c=${b64('n,,')},r=abcOTHER,p=${b64(Buffer.alloc(32))}`));
    expect(step).toMatchObject({ kind: 'failure', reason: 'SCRAM nonce mismatch' });
  });

  it('decodes =2C and =3D in names and refuses other escapes', () => {
    expect(decodeSaslName('a=2Cb=3Dc')).toBe('a,b=c');
    expect(decodeSaslName('a=41')).toBeNull();
  });
});

describe('LOGINDISABLED', () => {
  it('refuses plaintext LOGIN and AUTHENTICATE from a "remote" client without TLS', async () => {
    const remote = await startTestServer({ loopbackIsRemote: true });
    const { client, greeting } = await TestClient.connect(remote.port);
    expect(greeting).toContain('LOGINDISABLED');
    expect(greeting).not.toContain('AUTH=PLAIN');
    expect((await client.command('LOGIN test1 pass')).tagged).toMatch(/^NO \[PRIVACYREQUIRED\]/);
    expect((await client.command(`AUTHENTICATE PLAIN ${b64('\0test1\0pass')}`)).tagged).toMatch(/^NO \[PRIVACYREQUIRED\]/);
    client.close();
    await remote.close();
  });

  it('allows it when the configuration says so', async () => {
    const remote = await startTestServer({ loopbackIsRemote: true, allowPlaintextLogin: true });
    const { client, greeting } = await TestClient.connect(remote.port);
    expect(greeting).not.toContain('LOGINDISABLED');
    expect((await client.command('LOGIN test1 pass')).tagged).toMatch(/^OK/);
    client.close();
    await remote.close();
  });
});
