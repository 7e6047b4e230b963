/**
 * The arguments of MAIL and RCPT (RFC 5321 4.1.2, RFC 2033 4.2): `FROM:<path> params` and
 * `TO:<path> params`. Pure functions: the session decides what to answer.
 */

/** A parsed MAIL FROM or RCPT TO argument. */
export interface EnvelopeArg {
  /** The address without angle brackets and source route; '' is the null sender `<>`. */
  address: string;
  /** ESMTP parameters, keys in upper case; a keyword without '=' has the value ''. */
  params: Map<string, string>;
}

/** Why an argument was refused (becomes a 501 reply). */
export class EnvelopeSyntaxError extends Error {}

/** Parse `FROM:<a@b> SIZE=10` (prefix 'FROM') or `TO:<a@b>` (prefix 'TO'). */
export function parseEnvelopeArg(args: string, prefix: 'FROM' | 'TO'): EnvelopeArg {
  const head = `${prefix}:`;
  if (args.slice(0, head.length).toUpperCase() !== head) throw new EnvelopeSyntaxError(`expected ${head}<address>`);
  // Some clients put a space after the colon; RFC 5321 does not, but nothing is lost by allowing it.
  let rest = args.slice(head.length).replace(/^ +/, '');
  if (!rest.startsWith('<')) throw new EnvelopeSyntaxError('the address must be in angle brackets');
  let i = 1;
  let quoted = false;
  for (; i < rest.length; i++) {
    const c = rest[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === '>') break;
  }
  if (i >= rest.length) throw new EnvelopeSyntaxError('missing ">" after the address');
  let address = rest.slice(1, i);
  rest = rest.slice(i + 1);
  // A source route (<@a,@b:user@c>) is obsolete and ignored (RFC 5321 4.1.1.3).
  if (address.startsWith('@')) {
    const colon = address.indexOf(':');
    if (colon < 0) throw new EnvelopeSyntaxError('bad source route');
    address = address.slice(colon + 1);
  }
  // Control characters and unquoted spaces are never part of an address.
  if (/[\x00-\x1f\x7f]/.test(address) || /\s/.test(address.replace(/"(?:[^"\\]|\\.)*"/g, ''))) throw new EnvelopeSyntaxError('invalid address');
  if (prefix === 'TO' && address === '') throw new EnvelopeSyntaxError('empty recipient');
  const params = new Map<string, string>();
  if (rest !== '' && !rest.startsWith(' ')) throw new EnvelopeSyntaxError('expected a space before parameters');
  for (const p of rest.split(' ')) {
    if (p === '') continue;
    const eq = p.indexOf('=');
    const key = (eq < 0 ? p : p.slice(0, eq)).toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(key)) throw new EnvelopeSyntaxError(`bad parameter ${JSON.stringify(p)}`);
    params.set(key, eq < 0 ? '' : p.slice(eq + 1));
  }
  return { address, params };
}

/** Split an address into local part (quotes removed) and domain ('' when there is none). */
export function splitAddress(address: string): { local: string; domain: string } {
  const at = address.lastIndexOf('@');
  const rawLocal = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? '' : address.slice(at + 1);
  const local = /^".*"$/.test(rawLocal) ? rawLocal.slice(1, -1).replace(/\\(.)/g, '$1') : rawLocal;
  return { local, domain };
}
