/** SASL PLAIN (RFC 4616): one client message `authzid NUL authcid NUL passwd`. */
import type { SaslMechanism, SaslStep, SaslUsers } from '../commands/authenticate.js';

/** Start a PLAIN exchange against a user database. */
export function plainMechanism(users: SaslUsers): SaslMechanism {
  return {
    name: 'PLAIN',
    async start(initial?: Buffer): Promise<SaslStep> {
      // Without an initial response the client waits for an empty challenge (RFC 4616 2).
      if (initial === undefined) return { kind: 'challenge', data: Buffer.alloc(0) };
      return check(users, initial);
    },
    async step(response: Buffer): Promise<SaslStep> {
      return check(users, response);
    },
  };
}

async function check(users: SaslUsers, message: Buffer): Promise<SaslStep> {
  const parts = message.toString('utf8').split('\u0000');
  if (parts.length !== 3) return { kind: 'failure', reason: 'Malformed PLAIN message', bad: true };
  const [authzid, authcid, password] = parts as [string, string, string];
  if (!authcid) return { kind: 'failure', reason: 'Empty user name', bad: true };
  // Acting as another user (proxy authorization) is not supported: only the identity itself.
  if (authzid && authzid !== authcid) {
    return { kind: 'failure', user: authcid, reason: 'Authorization identity not permitted' };
  }
  const ok = await users.verify(authcid, password);
  return ok ? { kind: 'success', user: authcid } : { kind: 'failure', user: authcid, reason: 'Authentication failed' };
}
