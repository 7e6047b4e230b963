/** The session machine over real sockets: greeting, states, LOGIN, errors, pipelining, literals. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, startTestServer, sampleMessage, type TestServer } from './helpers.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer({ limits: { appendLimit: 4096 } });
});
afterAll(async () => {
  await srv.close();
});

describe('greeting and capabilities', () => {
  it('greets with OK and a CAPABILITY code listing both revisions and the SASL mechanisms', async () => {
    const { client, greeting } = await TestClient.connect(srv.port);
    expect(greeting).toMatch(/^\* OK \[CAPABILITY IMAP4rev1 IMAP4rev2 .*\] /);
    for (const cap of ['LITERAL+', 'SASL-IR', 'AUTH=PLAIN', 'AUTH=LOGIN', 'AUTH=SCRAM-SHA-256', 'IDLE', 'APPENDLIMIT=4096']) {
      expect(greeting).toContain(` ${cap}`);
    }
    // Loopback without TLS: login allowed, so no LOGINDISABLED; no certificate, so no STARTTLS.
    expect(greeting).not.toContain('LOGINDISABLED');
    expect(greeting).not.toContain('STARTTLS');
    client.close();
  });

  it('answers CAPABILITY in every state, and the list changes after login', async () => {
    const { client } = await TestClient.connect(srv.port);
    const before = await client.command('CAPABILITY');
    expect(before.tagged).toMatch(/^OK/);
    expect(before.untagged[0]).toMatch(/^\* CAPABILITY IMAP4rev1 /);
    expect(before.untagged[0]).toContain('AUTH=PLAIN');
    expect(before.untagged[0]).not.toContain('COMPRESS=DEFLATE');
    const login = await client.login();
    expect(login.tagged).toMatch(/^OK \[CAPABILITY IMAP4rev1 .*COMPRESS=DEFLATE.*\] Logged in/);
    const after = await client.command('CAPABILITY');
    expect(after.untagged[0]).not.toContain('AUTH=PLAIN');
    expect(after.untagged[0]).toContain('QRESYNC');
    client.close();
  });
});

describe('states', () => {
  it('refuses commands that need authentication, and LOGIN twice', async () => {
    const { client } = await TestClient.connect(srv.port);
    expect((await client.command('SELECT INBOX')).tagged).toMatch(/^BAD .*before authentication/);
    expect((await client.command('LIST "" "*"')).tagged).toMatch(/^BAD/);
    await client.login();
    expect((await client.command('LOGIN test1 pass')).tagged).toMatch(/^BAD .*already authenticated/);
    expect((await client.command('FETCH 1 FLAGS')).tagged).toMatch(/^BAD .*no mailbox selected/);
    client.close();
  });

  it('rejects a wrong password with NO [AUTHENTICATIONFAILED] and lets the client retry', async () => {
    const { client } = await TestClient.connect(srv.port);
    expect((await client.command('LOGIN test1 wrong')).tagged).toMatch(/^NO \[AUTHENTICATIONFAILED\]/);
    expect((await client.command('LOGIN nobody pass')).tagged).toMatch(/^NO \[AUTHENTICATIONFAILED\]/);
    expect((await client.command('LOGIN test1 pass')).tagged).toMatch(/^OK/);
    client.close();
  });

  it('LOGOUT sends BYE, then the tagged OK, then closes', async () => {
    const { client } = await TestClient.connect(srv.port);
    const r = await client.command('LOGOUT');
    expect(r.untagged).toEqual(['* BYE Logging out.']);
    expect(r.tagged).toMatch(/^OK/);
    await expect(client.readLine(5000)).rejects.toThrow(/closed/);
    expect(client.closed).toBe(true);
  });
});

describe('bad input', () => {
  it('answers unknown and malformed commands with BAD and a reason, and goes on', async () => {
    const { client } = await TestClient.connect(srv.port);
    const bad = [
      'FROBNICATE',
      'LOGIN onlyuser',
      'SELECT',
      'NOOP extra',
      'LOGIN "unterminated',
      'CAPABILITY (',
    ];
    for (const line of bad) {
      const r = await client.command(line);
      expect(r.tagged, line).toMatch(/^BAD \S/);
    }
    expect((await client.command('NOOP')).tagged).toMatch(/^OK/);
    await client.login();
    const more = ['FETCH', 'FETCH 1', 'STORE 1 +FLAGS', 'SEARCH FOO', 'UID FROB 1', 'LIST', 'STATUS INBOX', 'STATUS INBOX (BOGUS)', 'CREATE', 'APPEND'];
    for (const line of more) {
      const r = await client.command(line);
      expect(r.tagged, line).toMatch(/^BAD \S/);
    }
    expect((await client.command('NOOP')).tagged).toMatch(/^OK/);
    client.close();
  });

  it('answers each of 60 malformed commands with a tagged BAD and stays usable', async () => {
    const client = (await TestClient.connect(srv.port)).client;
    await client.login();
    await client.command('SELECT INBOX');
    const malformed = [
      'FROB', 'NOOP NOOP', 'CAPABILITY x', 'LOGOUT now', 'SELECT', 'SELECT a b', 'EXAMINE', 'CREATE', 'CREATE a b',
      'DELETE', 'RENAME a', 'RENAME', 'SUBSCRIBE', 'UNSUBSCRIBE', 'LIST', 'LIST ""', 'LIST (BOGUS) "" *', 'LSUB ""',
      'STATUS', 'STATUS INBOX', 'STATUS INBOX ()', 'STATUS INBOX (FOO)', 'STATUS INBOX MESSAGES', 'APPEND',
      'APPEND INBOX', 'APPEND INBOX (\\Seen', 'APPEND INBOX "not a date" {1+}\r\nx', 'ENABLE', 'ID', 'ID (', 'ID ("a")',
      'FETCH', 'FETCH 1', 'FETCH x FLAGS', 'FETCH 1 (FLAGS', 'FETCH 1 FROBS', 'FETCH 1 BODY[HEADER.FIELDS]',
      'FETCH 0:a FLAGS', 'FETCH 1 BODY[1.x]', 'FETCH 1 (FLAGS) (CHANGEDSINCE x)', 'STORE', 'STORE 1', 'STORE 1 FLAGS',
      'STORE 1 +FLAGS', 'STORE 1 BADOP (\\Seen)', 'STORE x +FLAGS (\\Seen)', 'SEARCH', 'SEARCH FOO', 'SEARCH (ALL',
      'SEARCH BEFORE notadate', 'SEARCH LARGER x', 'SEARCH OR ALL', 'COPY', 'COPY 1', 'MOVE 1', 'UID', 'UID FROB 1',
      'UID FETCH', 'UID STORE 1', 'SORT (DATE) UTF-8', 'THREAD REFERENCES', 'GETQUOTA', 'GETQUOTAROOT', 'COMPRESS',
      'AUTHENTICATE', 'LOGIN', 'EXPUNGE 1', 'IDLE now', '"quoted" NOOP', 'NOOP "unterminated',
    ];
    expect(malformed.length).toBeGreaterThanOrEqual(60);
    for (const line of malformed) {
      const r = await client.command(line);
      expect(r.tagged, line).toMatch(/^BAD \S/);
    }
    expect((await client.command('NOOP')).tagged).toMatch(/^OK/);
    client.close();
  });

  it('stores nothing when the client disconnects in the middle of an APPEND literal', async () => {
    const client = (await TestClient.connect(srv.port)).client;
    await client.login('test2');
    client.sendRaw('T1 APPEND INBOX {1000+}\r\nSubject: partial\r\n\r\nonly part of it');
    client.close();
    const other = (await TestClient.connect(srv.port)).client;
    await other.login('test2');
    expect((await other.command('STATUS INBOX (MESSAGES)')).untagged).toEqual(['* STATUS INBOX (MESSAGES 0)']);
    other.close();
  });

  it('a line without a tag gets an untagged BAD and the session continues', async () => {
    const { client } = await TestClient.connect(srv.port);
    client.send('');
    client.send('*');
    const line = await client.readLine();
    expect(line).toMatch(/^\* BAD/);
    expect((await client.command('NOOP')).tagged).toMatch(/^OK/);
    client.close();
  });

  it('refuses a synchronizing literal above APPENDLIMIT with NO [TOOBIG] before reading it', async () => {
    const client = (await TestClient.connect(srv.port)).client;
    await client.login();
    client.send('T1 APPEND INBOX {100000}');
    const line = await client.readLine();
    expect(line).toMatch(/^T1 NO \[TOOBIG\]/);
    expect((await client.command('NOOP')).tagged).toMatch(/^OK/);
    client.close();
  });

  it('skips a non-synchronizing literal above the limit and answers TOOBIG', async () => {
    const client = (await TestClient.connect(srv.port)).client;
    await client.login();
    const big = 'x'.repeat(5000);
    client.sendRaw(`T2 APPEND INBOX {${big.length}+}\r\n${big}\r\n`);
    const r = await client.readUntilTagged('T2');
    expect(r.tagged).toMatch(/^T2 (NO|BAD) \[TOOBIG\]/);
    expect((await client.command('NOOP')).tagged).toMatch(/^OK/);
    const status = await client.command('STATUS INBOX (MESSAGES)');
    expect(status.untagged).toContain('* STATUS INBOX (MESSAGES 0)');
    client.close();
  });
});

describe('literals and pipelining', () => {
  it('sends a continuation for a synchronizing literal', async () => {
    const { client } = await TestClient.connect(srv.port);
    client.send('L1 LOGIN {5}');
    expect(await client.readLine()).toMatch(/^\+ /);
    client.send('test1 pass');
    expect(await client.readLine()).toMatch(/^L1 OK/);
    client.close();
  });

  it('answers pipelined commands in order', async () => {
    const { client } = await TestClient.connect(srv.port);
    const msg = sampleMessage('Pipelined');
    client.sendRaw(
      'P1 LOGIN test1 pass\r\nP2 CREATE Pipe\r\n' +
        `P3 APPEND Pipe {${Buffer.byteLength(msg)}+}\r\n${msg}\r\n` +
        'P4 SELECT Pipe\r\nP5 NOOP\r\nP6 LOGOUT\r\n',
    );
    const tags: string[] = [];
    for (;;) {
      const line = await client.readLine();
      const m = /^(P\d) (OK|NO|BAD)/.exec(line);
      if (m) {
        expect(m[2], line).toBe('OK');
        tags.push(m[1]!);
        if (m[1] === 'P6') break;
      }
    }
    expect(tags).toEqual(['P1', 'P2', 'P3', 'P4', 'P5', 'P6']);
    client.close();
  });
});

describe('ID, NAMESPACE, ENABLE', () => {
  it('answers ID before login with the server name', async () => {
    const { client } = await TestClient.connect(srv.port);
    const r = await client.command('ID ("name" "test")');
    expect(r.untagged[0]).toMatch(/^\* ID \("name" "imapkit" "version" "[^"]+"/);
    client.close();
  });

  it('NAMESPACE gives one personal namespace with "/"', async () => {
    const { client } = await TestClient.connect(srv.port);
    await client.login();
    const r = await client.command('NAMESPACE');
    expect(r.untagged).toEqual(['* NAMESPACE (("" "/")) NIL NIL']);
    client.close();
  });

  it('ENABLE lists what it turned on and ignores unknown names, also once selected', async () => {
    const { client } = await TestClient.connect(srv.port);
    await client.login();
    const r = await client.command('ENABLE CONDSTORE X-UNKNOWN');
    expect(r.untagged).toEqual(['* ENABLED CONDSTORE']);
    const again = await client.command('ENABLE CONDSTORE QRESYNC');
    expect(again.untagged).toEqual(['* ENABLED QRESYNC']);
    await client.command('SELECT INBOX');
    const selected = await client.command('ENABLE UTF8=ACCEPT');
    expect(selected.untagged).toEqual(['* ENABLED UTF8=ACCEPT']);
    expect((await client.command('LOGOUT')).tagged).toMatch(/^OK/);
    expect((await client.command('ENABLE CONDSTORE').catch((e: Error) => ({ tagged: e.message }))).tagged).toMatch(/closed/);
    client.close();
  });
});
