/** SASL LOGIN (draft-murchison-sasl-login): user name and password as two separate answers. */
import type { SaslMechanism, SaslStep, SaslUsers } from '../commands/authenticate.js';

const USERNAME = Buffer.from('Username:');
const PASSWORD = Buffer.from('Password:');

/** Start a LOGIN exchange against a user database. */
export function loginMechanism(users: SaslUsers): SaslMechanism {
  let user: string | undefined;
  const takeUser = (data: Buffer): SaslStep => {
    user = data.toString('utf8');
    if (!user) return { kind: 'failure', reason: 'Empty user name', bad: true };
    return { kind: 'challenge', data: PASSWORD };
  };
  return {
    name: 'LOGIN',
    async start(initial?: Buffer): Promise<SaslStep> {
      // With SASL-IR the initial response is the user name.
      return initial === undefined ? { kind: 'challenge', data: USERNAME } : takeUser(initial);
    },
    async step(response: Buffer): Promise<SaslStep> {
      if (user === undefined) return takeUser(response);
      const ok = await users.verify(user, response.toString('utf8'));
      return ok ? { kind: 'success', user } : { kind: 'failure', user, reason: 'Authentication failed' };
    },
  };
}
