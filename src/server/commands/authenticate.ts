/**
 * AUTHENTICATE (RFC 9051 6.2.2, RFC 4959 SASL-IR): drives a SASL mechanism from sasl/ through
 * base64 continuations. The mechanisms only see bytes; this module does the IMAP framing.
 */
import type { UserDb } from '../../store/contract.js';
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';
import { plainMechanism } from '../sasl/plain.js';
import { loginMechanism } from '../sasl/login.js';
import { scramSha256Mechanism } from '../sasl/scram-sha-256.js';
import { loginFailed, loginSucceeded, PRIVACY_REQUIRED } from './login.js';

/** One step of a SASL exchange, as a mechanism reports it. */
export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; user: string }
  /** `bad`: the client broke the protocol (tagged BAD, no slowdown) rather than failing to authenticate. */
  | { kind: 'failure'; user?: string; reason: string; bad?: boolean };

/** A server-side SASL mechanism: fed decoded client responses, answers with the next step. */
export interface SaslMechanism {
  readonly name: string;
  /** Begin, with the SASL-IR initial response when the client sent one. */
  start(initial?: Buffer): Promise<SaslStep>;
  /** Continue with the client's next response. */
  step(response: Buffer): Promise<SaslStep>;
}

/** What mechanisms need of the user database. */
export type SaslUsers = Pick<UserDb, 'verify' | 'scramCredentials'>;

const MECHANISMS: Record<string, (users: SaslUsers) => SaslMechanism> = {
  PLAIN: plainMechanism,
  LOGIN: loginMechanism,
  'SCRAM-SHA-256': scramSha256Mechanism,
};

/** Strict base64 (RFC 4648 4) so garbage is refused instead of silently decoded. */
export function decodeBase64(text: string): Buffer | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  return Buffer.from(text, 'base64');
}

/** AUTHENTICATE mechanism [initial-response]. */
export async function authenticateCommand(ctx: ServerSession, cmd: CommandNamed<'AUTHENTICATE'>): Promise<CommandResult> {
  if (ctx.loginDisabled()) return PRIVACY_REQUIRED;
  const factory = MECHANISMS[cmd.mechanism.toUpperCase()];
  if (!factory) return { status: 'NO', text: `Unsupported authentication mechanism ${cmd.mechanism}.` };
  const mech = factory(ctx.config.users);

  let initial: Buffer | undefined;
  if (cmd.initialResponse !== undefined) {
    // RFC 4959: "=" is an empty initial response.
    const decoded = cmd.initialResponse === '=' ? Buffer.alloc(0) : decodeBase64(cmd.initialResponse);
    if (!decoded) return { status: 'BAD', text: 'Invalid base64 in initial response.' };
    initial = decoded;
  }

  let step: SaslStep;
  try {
    step = await mech.start(initial);
    while (step.kind === 'challenge') {
      ctx.continuation(step.data.toString('base64'));
      const line = await ctx.readLine({ secret: true });
      if (line === null) return { status: 'BAD', text: 'Connection closed during authentication.' };
      if (line === '*') return { status: 'BAD', text: 'Authentication cancelled.' };
      const response = decodeBase64(line);
      if (!response) return { status: 'BAD', text: 'Invalid base64 in authentication response.' };
      step = await mech.step(response);
    }
  } catch (err) {
    ctx.log.error({ err }, 'user database failure');
    return { status: 'NO', code: 'UNAVAILABLE', text: 'Authentication temporarily unavailable.' };
  }
  if (step.kind === 'success') return loginSucceeded(ctx, step.user);
  if (step.bad) return { status: 'BAD', text: step.reason };
  return loginFailed(ctx, step.user ?? '', `${step.reason}.`);
}
