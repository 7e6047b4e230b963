/**
 * Small formatters for FETCH data: INTERNALDATE, section names as they appear in responses,
 * flag lists and object ids.
 */
import type { Section } from '../../protocol/ast.js';
import { atom, type ResponseValue } from '../../protocol/values.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function two(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** Formats a date as IMAP date-time "dd-Mon-yyyy hh:mm:ss +zzzz" in the server's time zone (RFC 3501 9). */
export function formatInternalDate(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  const abs = Math.abs(off);
  return (
    `${two(d.getDate())}-${MONTHS[d.getMonth()]}-${d.getFullYear()} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ` +
    `${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`
  );
}

/** A header field name as it appears in a response section: upper case, quoted if not an atom. */
function fieldName(name: string): string {
  const up = name.toUpperCase();
  // astring atoms exclude SP, parentheses, braces, quotes, backslash, %, * and controls.
  if (up !== '' && /^[\x21\x23-\x24\x26-\x27\x2b-\x5b\x5e-\x7a\x7c\x7e]+$/.test(up)) return up;
  return '"' + up.replace(/[\r\n]/g, ' ').replace(/["\\]/g, '\\$&') + '"';
}

/** The text inside BODY[...] of a response: "1.2.HEADER.FIELDS (FROM SUBJECT)" (RFC 3501 7.4.2). */
export function sectionName(section: Section): string {
  let s = section.part.join('.');
  if (section.text !== undefined) s += (s === '' ? '' : '.') + section.text;
  if (section.fields !== undefined) s += ` (${section.fields.map(fieldName).join(' ')})`;
  return s;
}

/** A flag list as response atoms, with \Recent last when the message is recent in the session. */
export function flagValues(flags: readonly string[], recent = false): ResponseValue[] {
  const out: ResponseValue[] = new Array(flags.length);
  for (let i = 0; i < flags.length; i++) out[i] = atom(flags[i]);
  if (recent) out.push(atom('\\Recent'));
  return out;
}

/** An OBJECTID (RFC 8474) value: an atom when it is one (the usual case), else a quoted string. */
export function objectId(id: string): ResponseValue {
  return /^[A-Za-z0-9_-]{1,255}$/.test(id) ? atom(id) : id;
}
