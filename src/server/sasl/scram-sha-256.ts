/**
 * SASL SCRAM-SHA-256 (RFC 5802, RFC 7677), server side, without channel binding.
 * The server keeps only StoredKey/ServerKey (UserDb.scramCredentials); the password never
 * reaches it. Unknown users get a deterministic fake salt so they cannot be told apart from
 * known ones until the proof fails.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SaslMechanism, SaslStep, SaslUsers } from '../commands/authenticate.js';
import type { ScramCredentials } from '../../store/contract.js';

/** Per-process secret for fake salts of unknown users (stable within a run, as a real salt is). */
const FAKE_SALT_SECRET = randomBytes(32);
const DEFAULT_ITERATIONS = 4096;

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Decode a SCRAM saslname: "=2C" is ',' and "=3D" is '='; any other '=' is malformed (RFC 5802 5.1). */
export function decodeSaslName(name: string): string | null {
  if (/=(?!2C|3D)/.test(name)) return null;
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** Split "a=x,b=y" into attributes; values may contain '=' but not ','. */
function attributes(text: string): Array<[string, string]> | null {
  const out: Array<[string, string]> = [];
  for (const part of text.split(',')) {
    if (part.length < 2 || part[1] !== '=') return null;
    out.push([part[0]!, part.slice(2)]);
  }
  return out;
}

const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** Start a SCRAM-SHA-256 exchange against a user database. */
export function scramSha256Mechanism(users: SaslUsers): SaslMechanism {
  let stage: 'first' | 'final' | 'ack' | 'done' = 'first';
  let gs2Header = '';
  let clientFirstBare = '';
  let serverFirst = '';
  let nonce = '';
  let user = '';
  let creds: ScramCredentials | null = null;
  let serverSignature: Buffer | undefined;

  const clientFirst = async (data: Buffer): Promise<SaslStep> => {
    const text = data.toString('utf8');
    // gs2-header: cbind flag, optional authzid, then the bare message.
    const m = /^([ny]|p=[^,]*),(a=[^,]*)?,(.*)$/s.exec(text);
    if (!m) return { kind: 'failure', reason: 'Malformed SCRAM client-first message', bad: true };
    if (m[1]!.startsWith('p=')) return { kind: 'failure', reason: 'Channel binding is not supported' };
    gs2Header = `${m[1]},${m[2] ?? ''},`;
    clientFirstBare = m[3]!;
    const attrs = attributes(clientFirstBare);
    if (!attrs) return { kind: 'failure', reason: 'Malformed SCRAM client-first message', bad: true };
    // An 'm' (reserved mandatory extension) first means a feature we do not know: fail (RFC 5802 5.1).
    if (attrs[0]?.[0] === 'm') return { kind: 'failure', reason: 'Unsupported SCRAM extension' };
    const n = attrs[0];
    const r = attrs[1];
    if (!n || n[0] !== 'n' || !r || r[0] !== 'r' || !PRINTABLE_NONCE.test(r[1])) {
      return { kind: 'failure', reason: 'Malformed SCRAM client-first message', bad: true };
    }
    const decoded = decodeSaslName(n[1]);
    if (!decoded) return { kind: 'failure', reason: 'Malformed SCRAM user name', bad: true };
    user = decoded;
    if (m[2]) {
      const authzid = decodeSaslName(m[2].slice(2));
      if (authzid !== user) return { kind: 'failure', user, reason: 'Authorization identity not permitted' };
    }
    creds = await users.scramCredentials(user);
    const salt = creds?.salt ?? hmac(FAKE_SALT_SECRET, user).subarray(0, 16);
    const iterations = creds?.iterations ?? DEFAULT_ITERATIONS;
    nonce = r[1] + randomBytes(18).toString('base64');
    serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
    stage = 'final';
    return { kind: 'challenge', data: Buffer.from(serverFirst) };
  };

  const clientFinal = async (data: Buffer): Promise<SaslStep> => {
    const text = data.toString('utf8');
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) return { kind: 'failure', user, reason: 'Malformed SCRAM client-final message', bad: true };
    const withoutProof = text.slice(0, proofAt);
    const proof = Buffer.from(text.slice(proofAt + 3), 'base64');
    const attrs = attributes(withoutProof);
    if (!attrs || attrs[0]?.[0] !== 'c' || attrs[1]?.[0] !== 'r') {
      return { kind: 'failure', user, reason: 'Malformed SCRAM client-final message', bad: true };
    }
    if (attrs[1][1] !== nonce) return { kind: 'failure', user, reason: 'SCRAM nonce mismatch' };
    if (Buffer.from(attrs[0][1], 'base64').toString('utf8') !== gs2Header) {
      return { kind: 'failure', user, reason: 'SCRAM channel binding mismatch' };
    }
    if (!creds || proof.length !== 32) return { kind: 'failure', user, reason: 'Authentication failed' };
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = hmac(creds.storedKey, authMessage);
    const clientKey = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
    const computedStored = sha256(clientKey);
    if (computedStored.length !== creds.storedKey.length || !timingSafeEqual(computedStored, creds.storedKey)) {
      return { kind: 'failure', user, reason: 'Authentication failed' };
    }
    serverSignature = hmac(creds.serverKey, authMessage);
    stage = 'ack';
    // The server-final message goes out as a last challenge; the client answers with an empty line.
    return { kind: 'challenge', data: Buffer.from(`v=${serverSignature.toString('base64')}`) };
  };

  return {
    name: 'SCRAM-SHA-256',
    async start(initial?: Buffer): Promise<SaslStep> {
      if (initial === undefined) return { kind: 'challenge', data: Buffer.alloc(0) };
      return clientFirst(initial);
    },
    async step(response: Buffer): Promise<SaslStep> {
      switch (stage) {
        case 'first':
          return clientFirst(response);
        case 'final':
          return clientFinal(response);
        case 'ack':
          stage = 'done';
          if (response.length !== 0) return { kind: 'failure', user, reason: 'Unexpected data after SCRAM exchange', bad: true };
          return { kind: 'success', user };
        default:
          return { kind: 'failure', user, reason: 'SCRAM exchange already finished', bad: true };
      }
    },
  };
}
