/**
 * Modified UTF-7 for mailbox names (RFC 3501 5.1.3). The decoder is strict: every mailbox name has
 * exactly one valid spelling, and anything else is rejected rather than guessed at, so two different
 * wire names can never map to the same Unicode name.
 */

/** Thrown by decodeMailboxName (and by encodeMailboxName for unpaired surrogates). */
export class Utf7Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Utf7Error';
  }
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

// Reverse table indexed by char code; -1 for characters outside modified BASE64.
const B64_INDEX: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < B64.length; i++) t[B64.charCodeAt(i)] = i;
  return t;
})();

/** True for the characters that must represent themselves (printable US-ASCII; '&' is special-cased). */
function isDirect(c: number): boolean {
  return c >= 0x20 && c <= 0x7e;
}

/** Unicode -> modified UTF-7. Throws Utf7Error for a string holding an unpaired surrogate. */
export function encodeMailboxName(name: string): string {
  let out = '';
  let i = 0;
  const n = name.length;
  while (i < n) {
    const c = name.charCodeAt(i);
    if (c === 0x26) {
      out += '&-';
      i++;
      continue;
    }
    if (isDirect(c)) {
      // Copy the whole run of direct characters at once.
      let j = i + 1;
      while (j < n) {
        const d = name.charCodeAt(j);
        if (d === 0x26 || !isDirect(d)) break;
        j++;
      }
      out += name.slice(i, j);
      i = j;
      continue;
    }
    // One shifted run covers every consecutive non-direct UTF-16 unit: adjacent runs are invalid.
    let bits = 0;
    let nbits = 0;
    out += '&';
    while (i < n) {
      const u = name.charCodeAt(i);
      if (isDirect(u)) break;
      if (u >= 0xd800 && u <= 0xdbff) {
        const lo = i + 1 < n ? name.charCodeAt(i + 1) : 0;
        if (!(lo >= 0xdc00 && lo <= 0xdfff)) throw new Utf7Error(`unpaired surrogate at index ${i}`);
      } else if (u >= 0xdc00 && u <= 0xdfff) {
        const hi = i > 0 ? name.charCodeAt(i - 1) : 0;
        if (!(hi >= 0xd800 && hi <= 0xdbff)) throw new Utf7Error(`unpaired surrogate at index ${i}`);
      }
      bits = ((bits << 16) | u) >>> 0;
      nbits += 16;
      while (nbits >= 6) {
        nbits -= 6;
        out += B64[(bits >>> nbits) & 0x3f];
      }
      // Keep only the unread bits so the accumulator never overflows 32 bits.
      bits &= (1 << nbits) - 1;
      i++;
    }
    if (nbits > 0) out += B64[(bits << (6 - nbits)) & 0x3f];
    out += '-';
  }
  return out;
}

/** Modified UTF-7 -> Unicode. Throws Utf7Error for any spelling that is not the one canonical encoding. */
export function decodeMailboxName(wire: string): string {
  let out = '';
  let i = 0;
  const n = wire.length;
  // Index just past the last shifted run's '-', to detect two runs back to back.
  let runEnd = -1;
  while (i < n) {
    const c = wire.charCodeAt(i);
    if (c !== 0x26) {
      if (!isDirect(c)) {
        throw new Utf7Error(`character U+${c.toString(16).padStart(4, '0')} at ${i} must be encoded`);
      }
      let j = i + 1;
      while (j < n) {
        const d = wire.charCodeAt(j);
        if (d === 0x26 || !isDirect(d)) break;
        j++;
      }
      out += wire.slice(i, j);
      i = j;
      continue;
    }
    // '&'
    if (i + 1 >= n) throw new Utf7Error(`"&" at ${i} is not closed`);
    if (wire.charCodeAt(i + 1) === 0x2d) {
      out += '&';
      i += 2;
      continue;
    }
    if (runEnd === i) throw new Utf7Error(`adjacent encoded runs at ${i} must be one run`);
    const start = i;
    i++;
    let bits = 0;
    let nbits = 0;
    let units = '';
    let pendingHigh = -1;
    let closed = false;
    while (i < n) {
      const d = wire.charCodeAt(i);
      if (d === 0x2d) {
        closed = true;
        i++;
        break;
      }
      const v = d < 128 ? B64_INDEX[d] : -1;
      if (v < 0) throw new Utf7Error(`invalid modified BASE64 character ${JSON.stringify(wire[i])} at ${i}`);
      bits = ((bits << 6) | v) >>> 0;
      nbits += 6;
      if (nbits >= 16) {
        nbits -= 16;
        const u = (bits >>> nbits) & 0xffff;
        bits &= (1 << nbits) - 1;
        if (pendingHigh >= 0) {
          if (u < 0xdc00 || u > 0xdfff) throw new Utf7Error(`unpaired surrogate in run at ${start}`);
          units += String.fromCharCode(pendingHigh, u);
          pendingHigh = -1;
        } else if (u >= 0xd800 && u <= 0xdbff) {
          pendingHigh = u;
        } else if (u >= 0xdc00 && u <= 0xdfff) {
          throw new Utf7Error(`unpaired surrogate in run at ${start}`);
        } else if (isDirect(u)) {
          throw new Utf7Error(`encoded run at ${start} holds U+${u.toString(16).padStart(4, '0')}, which must be written directly`);
        } else {
          units += String.fromCharCode(u);
        }
      }
      i++;
    }
    if (!closed) throw new Utf7Error(`"&" at ${start} is not closed`);
    if (pendingHigh >= 0) throw new Utf7Error(`unpaired surrogate in run at ${start}`);
    // Six or more leftover bits mean a superfluous character; any set leftover bit means a non-canonical spelling.
    if (nbits >= 6) throw new Utf7Error(`encoded run at ${start} has a superfluous BASE64 character`);
    if (bits !== 0) throw new Utf7Error(`encoded run at ${start} has non-zero padding bits`);
    if (units === '') throw new Utf7Error(`encoded run at ${start} is empty`);
    out += units;
    runEnd = i;
  }
  return out;
}
