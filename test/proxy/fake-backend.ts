/**
 * A small scripted IMAP server for in-process proxy tests: users with passwords or OAuth2 tokens,
 * SELECT/EXAMINE/UNSELECT state, an XWHO command that reveals who owns the connection, FETCH of
 * sized literals, APPEND with literals. It records every command line per connection.
 */
import net from 'node:net';
import tls from 'node:tls';

/** Options of the fake server. */
export interface FakeBackendOptions {
  users?: Record<string, string>;
  /** Accepts an OAuth2 bearer token for a user (XOAUTH2/OAUTHBEARER). */
  tokenOk?: (user: string, token: string) => boolean;
  /** Advertise UNSELECT (default true). */
  unselect?: boolean;
  /** Advertise and do STARTTLS with this certificate. */
  starttls?: { cert: string; key: string };
  /** Implicit TLS with this certificate. */
  tls?: { cert: string; key: string };
  /** Size of each message FETCH returns. */
  messageSize?: number;
}

/** One accepted connection, as the fake server sees it. */
export interface FakeConnection {
  id: number;
  user: string | undefined;
  selected: string | undefined;
  /** Command lines received (literal bodies elided). */
  commands: string[];
  socket: net.Socket;
  authAttempts: Array<{ mechanism: string; user: string; secret: string }>;
}

/** The fake IMAP server. */
export class FakeBackend {
  port = 0;
  readonly connections: FakeConnection[] = [];
  private server: net.Server | undefined;
  private seq = 0;

  constructor(readonly opts: FakeBackendOptions = {}) {}

  /** Capabilities before / after login. */
  caps(authed: boolean, secure: boolean): string {
    const c = ['IMAP4rev1', 'LITERAL+', 'SASL-IR', 'AUTH=PLAIN', 'AUTH=XOAUTH2', 'AUTH=OAUTHBEARER'];
    if (!authed && this.opts.starttls && !secure) c.push('STARTTLS');
    if (authed) {
      c.push('ENABLE', 'IDLE', 'CONDSTORE');
      if (this.opts.unselect !== false) c.push('UNSELECT');
    }
    return c.join(' ');
  }

  /** Start listening on a free loopback port. */
  async start(): Promise<void> {
    const handler = (s: net.Socket, secure: boolean): void => this.accept(s, secure);
    this.server = this.opts.tls
      ? tls.createServer({ cert: this.opts.tls.cert, key: this.opts.tls.key }, (s) => handler(s, true))
      : net.createServer((s) => handler(s, false));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Stop and drop every connection. */
  async stop(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  /** Connections still open. */
  open(): FakeConnection[] {
    return this.connections.filter((c) => !c.socket.destroyed);
  }

  private accept(socket: net.Socket, secure: boolean): void {
    const conn: FakeConnection = { id: ++this.seq, user: undefined, selected: undefined, commands: [], socket, authAttempts: [] };
    this.connections.push(conn);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.write(`* OK [CAPABILITY ${this.caps(false, secure)}] fake ready\r\n`);
    this.readLoop(conn, socket, secure);
  }

  private readLoop(conn: FakeConnection, socket: net.Socket, secure: boolean): void {
    let buf = Buffer.alloc(0);
    let parts: Array<string | Buffer> = [];
    let literal = 0;
    let sasl: ((line: string) => void) | undefined;
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (literal > 0) {
          if (buf.length < literal) return;
          parts.push(Buffer.from(buf.subarray(0, literal)));
          buf = buf.subarray(literal);
          literal = 0;
          continue;
        }
        const lf = buf.indexOf(0x0a);
        if (lf === -1) return;
        const line = buf.subarray(0, lf + 1).toString('latin1');
        buf = buf.subarray(lf + 1);
        if (sasl) {
          const f = sasl;
          sasl = undefined;
          f(line.replace(/\r?\n$/, ''));
          continue;
        }
        const m = /\{(\d+)(\+?)\}\r\n$/.exec(line);
        if (m) {
          parts.push(line.slice(0, line.length - m[0].length));
          literal = Number(m[1]);
          if (m[2] === '') socket.write('+ go ahead\r\n');
          continue;
        }
        parts.push(line.replace(/\r?\n$/, ''));
        const cmd = parts;
        parts = [];
        const result = this.handle(conn, socket, secure, cmd, (f) => (sasl = f));
        if (result === 'starttls') {
          socket.off('data', onData);
          const t = new tls.TLSSocket(socket, { isServer: true, secureContext: tls.createSecureContext(this.opts.starttls!) });
          conn.socket = t;
          t.on('error', () => undefined);
          this.readLoop(conn, t, true);
          return;
        }
      }
    };
    socket.on('data', onData);
  }

  private handle(
    conn: FakeConnection,
    socket: net.Socket,
    secure: boolean,
    parts: Array<string | Buffer>,
    setSasl: (f: (line: string) => void) => void,
  ): 'starttls' | undefined {
    const text = parts.map((p) => (typeof p === 'string' ? p : `{literal ${p.length}}`)).join('');
    conn.commands.push(text);
    const args = tokenize(parts);
    const tag = args[0] ?? '*';
    const name = (args[1] ?? '').toUpperCase();
    const ok = (t = 'done'): void => void socket.write(`${tag} OK ${t}\r\n`);
    switch (name) {
      case 'CAPABILITY':
        socket.write(`* CAPABILITY ${this.caps(conn.user !== undefined, secure)}\r\n`);
        ok();
        return;
      case 'NOOP':
        ok('NOOP done');
        return;
      case 'STARTTLS':
        ok('begin TLS');
        return 'starttls';
      case 'LOGIN': {
        const user = args[2] ?? '';
        const pass = args[3] ?? '';
        conn.authAttempts.push({ mechanism: 'LOGIN', user, secret: pass });
        if (this.opts.users?.[user] !== undefined && this.opts.users[user] === pass) {
          conn.user = user;
          socket.write(`${tag} OK [CAPABILITY ${this.caps(true, secure)}] Logged in\r\n`);
        } else socket.write(`${tag} NO [AUTHENTICATIONFAILED] bad credentials\r\n`);
        return;
      }
      case 'AUTHENTICATE': {
        const mech = (args[2] ?? '').toUpperCase();
        const finish = (b64: string): void => {
          const raw = Buffer.from(b64, 'base64').toString('utf8');
          let user = '';
          let secret = '';
          let good = false;
          if (mech === 'PLAIN') {
            const [, u, p] = raw.split('\0');
            user = u ?? '';
            secret = p ?? '';
            good = this.opts.users?.[user] !== undefined && this.opts.users[user] === secret;
          } else {
            const kv = raw.split('\x01');
            const head = kv[0];
            user = mech === 'XOAUTH2' ? head.replace(/^user=/, '') : (/a=([^,]*)/.exec(head)?.[1] ?? '');
            secret = (kv.find((x) => x.startsWith('auth=Bearer ')) ?? '').slice(12);
            good = this.opts.tokenOk?.(user, secret) ?? false;
          }
          conn.authAttempts.push({ mechanism: mech, user, secret });
          if (good) {
            conn.user = user;
            socket.write(`${tag} OK [CAPABILITY ${this.caps(true, secure)}] Logged in\r\n`);
          } else if (mech === 'PLAIN') {
            socket.write(`${tag} NO [AUTHENTICATIONFAILED] bad credentials\r\n`);
          } else {
            // RFC 7628 style: an error challenge, then NO once the client answers it.
            socket.write(`+ ${Buffer.from('{"status":"401"}').toString('base64')}\r\n`);
            setSasl(() => socket.write(`${tag} NO [AUTHENTICATIONFAILED] token rejected\r\n`));
          }
        };
        if (args[3] !== undefined) finish(args[3]);
        else {
          socket.write('+ \r\n');
          setSasl(finish);
        }
        return;
      }
      case 'XWHO':
        socket.write(`* XWHO ${conn.user ?? '-'} ${conn.id} ${conn.selected ?? '-'}\r\n`);
        ok();
        return;
      case 'SELECT':
      case 'EXAMINE': {
        conn.selected = undefined;
        const box = args[2] ?? '';
        if (box.startsWith('imapkit-reset-') || box === 'missing') {
          socket.write(`${tag} NO [NONEXISTENT] no such mailbox\r\n`);
          return;
        }
        conn.selected = box;
        socket.write(`* 3 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n`);
        ok(`[${name === 'SELECT' ? 'READ-WRITE' : 'READ-ONLY'}] selected`);
        return;
      }
      case 'UNSELECT':
        if (!conn.selected) socket.write(`${tag} BAD no mailbox selected\r\n`);
        else {
          conn.selected = undefined;
          ok();
        }
        return;
      case 'FETCH': {
        const n = Number((args[2] ?? '1').split(':')[1] ?? args[2]) || 1;
        const size = this.opts.messageSize ?? 100;
        const body = Buffer.alloc(size, 'x');
        for (let i = 1; i <= n; i++) {
          socket.write(`* ${i} FETCH (BODY[] {${size}}\r\n`);
          socket.write(body);
          socket.write(')\r\n');
        }
        ok();
        return;
      }
      case 'APPEND':
        ok('[APPENDUID 1 1] appended');
        return;
      case 'ENABLE':
        socket.write(`* ENABLED ${args.slice(2).join(' ')}\r\n`);
        ok();
        return;
      case 'IDLE':
        socket.write('+ idling\r\n');
        setSasl(() => ok('IDLE done'));
        return;
      case 'LOGOUT':
        socket.end(`* BYE bye\r\n${tag} OK logged out\r\n`);
        return;
      default:
        socket.write(`${tag} BAD unknown command\r\n`);
    }
  }
}

/** Atoms, quoted strings and literals of a command, as strings. */
function tokenize(parts: Array<string | Buffer>): string[] {
  const out: string[] = [];
  for (const p of parts) {
    if (typeof p !== 'string') {
      out.push(p.toString('utf8'));
      continue;
    }
    let i = 0;
    while (i < p.length) {
      if (p[i] === ' ') {
        i++;
        continue;
      }
      if (p[i] === '"') {
        let s = '';
        i++;
        while (i < p.length && p[i] !== '"') {
          if (p[i] === '\\') i++;
          s += p[i++];
        }
        i++;
        out.push(s);
        continue;
      }
      let j = i;
      while (j < p.length && p[j] !== ' ') j++;
      out.push(p.slice(i, j));
      i = j;
    }
  }
  return out;
}
