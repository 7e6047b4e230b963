/** LOGIN (RFC 9051 6.2.3): plaintext user name and password, refused without TLS where LOGINDISABLED. */
import type { CommandResult } from '../context.js';
import type { CommandNamed, ServerSession } from '../session.js';

/** Wait out the failed-login slowdown for (address, user), then build the NO. */
export async function loginFailed(ctx: ServerSession, user: string, text = 'Authentication failed.'): Promise<CommandResult> {
  const delay = ctx.config.throttle.fail(ctx.remoteAddress, user);
  ctx.log.info({ user, remote: ctx.remoteAddress }, 'login failed');
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  return { status: 'NO', code: 'AUTHENTICATIONFAILED', text };
}

/** Finish a successful login: open the user's mail and answer with the new capabilities. */
export async function loginSucceeded(ctx: ServerSession, user: string): Promise<CommandResult> {
  try {
    await ctx.authenticated(user);
  } catch (err) {
    ctx.log.error({ err, user }, 'cannot open mail store for user');
    return { status: 'NO', code: 'UNAVAILABLE', text: 'Mail store unavailable, try again later.' };
  }
  ctx.config.throttle.succeed(ctx.remoteAddress, user);
  return { status: 'OK', code: `CAPABILITY ${ctx.capabilities().join(' ')}`, text: 'Logged in.' };
}

/** The refusal for plaintext authentication on an insecure connection (RFC 5530 PRIVACYREQUIRED). */
export const PRIVACY_REQUIRED: CommandResult = {
  status: 'NO',
  code: 'PRIVACYREQUIRED',
  text: 'Plaintext authentication disallowed on non-secure connections; use STARTTLS.',
};

/** LOGIN user password. */
export async function loginCommand(ctx: ServerSession, cmd: CommandNamed<'LOGIN'>): Promise<CommandResult> {
  if (ctx.loginDisabled()) return PRIVACY_REQUIRED;
  let ok: boolean;
  try {
    ok = await ctx.config.users.verify(cmd.user, cmd.password);
  } catch (err) {
    ctx.log.error({ err }, 'user database failure');
    return { status: 'NO', code: 'UNAVAILABLE', text: 'Authentication temporarily unavailable.' };
  }
  if (!ok) return loginFailed(ctx, cmd.user);
  return loginSucceeded(ctx, cmd.user);
}
