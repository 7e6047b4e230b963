/**
 * RFC 5322 / RFC 2045 lexical scanning of header values (byte strings), tuned to read malformed
 * input the way Dovecot 2.3 does, so that ENVELOPE and BODYSTRUCTURE match it: comments are
 * skipped (the last one remembered), atoms and MIME tokens, quoted strings, domains, parameters
 * with RFC 2231 continuations, and address lists with groups.
 *
 * Return codes follow one convention throughout: -1 syntax error, 0 end of input reached,
 * 1 more input follows.
 */

/** Character classes: bit 1 = atext, bit 2 = atext that is also a MIME token char. */
const CLASS = new Uint8Array(256);
(() => {
  for (let c = 0; c < 256; c++) {
    const ch = String.fromCharCode(c);
    let v = 0;
    if (c >= 128 || /[A-Za-z0-9]/.test(ch)) v = 3;
    else if ("!#$%&'*+-^_`{|}~".includes(ch)) v = 3;
    else if ('/=?'.includes(ch)) v = 1; // atext but MIME tspecials
    CLASS[c] = v;
  }
})();

/** NUL inside quoted strings and comments becomes U+FFFD (UTF-8 bytes), as in Dovecot. */
const NUL_REPLACEMENT = '\xef\xbf\xbd';

/** True for RFC 5322 atext (8-bit bytes count as atext, as in Dovecot). */
export function isAtext(c: number): boolean {
  return (CLASS[c & 255]! & 1) !== 0;
}

function isTokenChar(c: number): boolean {
  return (CLASS[c & 255]! & 2) !== 0 || c === 0x2e;
}

/** A cursor over one header value. `out` accumulates the text of the last successful parse. */
export class Scanner {
  pos = 0;
  out = '';
  /** Text of the last comment skipped, when tracking is on (null = not tracking). */
  lastComment: string | null;

  constructor(
    readonly s: string,
    trackComments = false,
  ) {
    this.lastComment = trackComments ? '' : null;
  }

  /** Char code at the cursor (NaN at the end). */
  cur(): number {
    return this.s.charCodeAt(this.pos);
  }

  /** True when the whole value has been read. */
  atEnd(): boolean {
    return this.pos >= this.s.length;
  }

  /** Skip a (nested) comment starting at "(". */
  skipComment(): number {
    const s = this.s;
    const n = s.length;
    if (this.lastComment !== null) this.lastComment = '';
    let start = ++this.pos;
    let level = 1;
    for (; this.pos < n; this.pos++) {
      const c = s.charCodeAt(this.pos);
      if (c === 0 && this.lastComment !== null) {
        this.lastComment += s.slice(start, this.pos) + NUL_REPLACEMENT;
        start = this.pos + 1;
      } else if (c === 0x28) level++;
      else if (c === 0x29) {
        if (--level === 0) {
          if (this.lastComment !== null) this.lastComment += s.slice(start, this.pos);
          this.pos++;
          return this.pos < n ? 1 : 0;
        }
      } else if (c === 0x5c) {
        if (this.lastComment !== null) this.lastComment += s.slice(start, this.pos);
        start = this.pos + 1;
        this.pos++;
        if (this.pos >= n) return -1;
      }
    }
    return -1;
  }

  /** Skip whitespace (CR and LF included) and comments. */
  skipLwsp(): number {
    const s = this.s;
    const n = s.length;
    while (this.pos < n) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) {
        this.pos++;
        continue;
      }
      if (c !== 0x28) break;
      if (this.skipComment() < 0) return -1;
    }
    return this.pos < this.s.length ? 1 : 0;
  }

  /** atom = 1*atext, appended to `out`. */
  atom(): number {
    const s = this.s;
    if (this.atEnd() || !isAtext(s.charCodeAt(this.pos))) return -1;
    const start = this.pos++;
    while (this.pos < s.length && isAtext(s.charCodeAt(this.pos))) this.pos++;
    this.out += s.slice(start, this.pos);
    return this.pos < s.length ? this.skipLwsp() : 0;
  }

  /** dot-atom (domains), whitespace allowed around dots (RFC 822 style). */
  dotAtom(): number {
    const s = this.s;
    if (this.atEnd() || !isAtext(s.charCodeAt(this.pos))) return -1;
    let start = this.pos++;
    while (this.pos < s.length) {
      if (isAtext(s.charCodeAt(this.pos))) {
        this.pos++;
        continue;
      }
      this.out += s.slice(start, this.pos);
      const ret = this.skipLwsp();
      if (ret <= 0) return ret;
      if (s.charCodeAt(this.pos) !== 0x2e) return 1;
      this.pos++;
      this.out += '.';
      // strict: a dot must be followed by more atext (no trailing or doubled dots)
      if (this.skipLwsp() <= 0 || !isAtext(s.charCodeAt(this.pos))) return -1;
      start = this.pos;
    }
    this.out += s.slice(start, this.pos);
    return 0;
  }

  /** Local part with dots anywhere (".a", "a.", "a..b"), as real mail has them. */
  looseDotAtom(): number {
    let ret = -1;
    do {
      while (this.cur() === 0x2e) {
        this.out += '.';
        this.pos++;
        if (this.atEnd()) return 0;
        ret = 1;
      }
      if (this.cur() === 0x40) break;
      ret = this.atom();
    } while (ret > 0 && this.cur() === 0x2e);
    return ret;
  }

  /** MIME token (RFC 2045), dots allowed; may be empty. */
  mimeToken(): number {
    const s = this.s;
    const start = this.pos;
    while (this.pos < s.length && isTokenChar(s.charCodeAt(this.pos))) this.pos++;
    this.out += s.slice(start, this.pos);
    return this.pos < s.length ? this.skipLwsp() : 0;
  }

  /** quoted-string starting at the quote: escapes removed, folding line breaks removed. */
  quotedString(): number {
    const s = this.s;
    const n = s.length;
    let start = ++this.pos;
    for (; this.pos < n; this.pos++) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x22) {
        this.out += s.slice(start, this.pos);
        this.pos++;
        return this.skipLwsp();
      }
      if (c === 0) {
        this.out += s.slice(start, this.pos) + NUL_REPLACEMENT;
        start = this.pos + 1;
      }
      if (c === 0x0a) {
        let end = this.pos;
        if (end > start && s.charCodeAt(end - 1) === 0x0d) end--;
        this.out += s.slice(start, end);
        start = this.pos + 1;
      } else if (c === 0x5c) {
        this.pos++;
        if (this.pos >= n) return -1;
        this.out += s.slice(start, this.pos - 1);
        start = this.pos;
      }
    }
    return -1;
  }

  /** Atoms and dots without skipping the whitespace between them (phrase words). */
  private atomOrDot(): number {
    const s = this.s;
    const start = this.pos;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (!isAtext(c) && c !== 0x2e) break;
      this.pos++;
    }
    this.out += s.slice(start, this.pos);
    return this.pos < s.length ? this.skipLwsp() : 0;
  }

  /** phrase / obs-phrase: words joined by one space. */
  phrase(): number {
    const s = this.s;
    if (this.atEnd()) return 0;
    if (s.charCodeAt(this.pos) === 0x2e) return -1;
    for (;;) {
      const ret = s.charCodeAt(this.pos) === 0x22 ? this.quotedString() : this.atomOrDot();
      if (ret <= 0) return ret;
      const c = s.charCodeAt(this.pos);
      if (!isAtext(c) && c !== 0x22 && c !== 0x2e) break;
      this.out += ' ';
    }
    return this.skipLwsp();
  }

  private domainLiteral(): number {
    const s = this.s;
    const start = this.pos;
    for (; this.pos < s.length; this.pos++) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x5c) {
        this.pos++;
        if (this.pos >= s.length) break;
      } else if (c === 0x5d) {
        this.pos++;
        this.out += s.slice(start, this.pos);
        return this.skipLwsp();
      }
    }
    return -1;
  }

  /** domain after "@" (the cursor is on the "@"). */
  domain(): number {
    this.pos++;
    if (this.skipLwsp() <= 0) return -1;
    return this.cur() === 0x5b ? this.domainLiteral() : this.dotAtom();
  }

  /**
   * "type/subtype" into `out`; -1 when broken. Like Dovecot 2.3: a lone type at the end is kept
   * ("text"), anything else malformed (empty subtype, junk after the subtype) leaves `out` empty.
   */
  contentType(): number {
    const base = this.out.length;
    if (this.skipLwsp() <= 0) return -1;
    if (this.mimeToken() <= 0 || this.out.length === base) return -1;
    const fail = (): number => {
      this.out = this.out.slice(0, base);
      return -1;
    };
    if (this.cur() !== 0x2f) return fail();
    this.pos++;
    if (this.skipLwsp() <= 0) return fail();
    this.out += '/';
    const sub = this.out.length;
    const ret = this.mimeToken();
    if (ret < 0 || this.out.length === sub || (!this.atEnd() && this.cur() !== 0x3b)) return fail();
    return ret;
  }

  /** One `; name=value` parameter. */
  contentParam(): { ret: number; key: string; value: string } {
    if (this.atEnd()) return { ret: 0, key: '', value: '' };
    if (this.cur() !== 0x3b) return { ret: -1, key: '', value: '' };
    this.pos++;
    if (this.skipLwsp() <= 0) return { ret: -1, key: '', value: '' };
    this.out = '';
    if (this.mimeToken() <= 0) return { ret: -1, key: '', value: '' };
    const key = this.out;
    if (this.cur() !== 0x3d) return { ret: -1, key: '', value: '' };
    this.pos++;
    this.out = '';
    let ret = this.skipLwsp();
    if (ret <= 0) {
      // no value
    } else if (this.cur() === 0x22) {
      ret = this.quotedString();
    } else if (this.cur() === 0x3d) {
      // broken encoded word without quotes: name==?utf-8?b?...?=
      const s = this.s;
      const start = this.pos;
      while (this.pos < s.length) {
        const c = s.charCodeAt(this.pos);
        if (c === 0x3b || c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) break;
        this.pos++;
      }
      this.out += s.slice(start, this.pos);
    } else {
      ret = this.mimeToken();
    }
    return { ret: ret < 0 ? -1 : 1, key, value: this.out };
  }
}

interface Rfc2231Piece {
  key: string;
  value: string;
  idx: number;
  extended: boolean;
}

function escapePercent(v: string): string {
  return v.includes('%') ? v.replace(/%/g, '%25') : v;
}

/**
 * Parse the parameters after a Content-Type or Content-Disposition value, merging RFC 2231
 * continuations (key*0, key*1*, ...) into one "key" or "key*" parameter. Values are not decoded:
 * BODYSTRUCTURE shows them as written. Broken parameters are skipped.
 */
export function parseParams(sc: Scanner): Array<{ name: string; value: string }> {
  const result: Array<{ name: string; value: string }> = [];
  const pieces: Rfc2231Piece[] = [];
  // Dovecot keeps the index of the previous piece for a bare "key*": mirror it
  let idx = 0;
  for (;;) {
    const p = sc.contentParam();
    if (p.ret === 0) break;
    if (p.ret < 0) {
      if (sc.atEnd()) break;
      sc.pos++;
      continue;
    }
    const key = p.key;
    const star = key.indexOf('*');
    if (star < 0) {
      result.push({ name: key, value: p.value });
      continue;
    }
    let q = star;
    if (q + 1 < key.length) {
      q++;
      idx = 0;
      while (q < key.length && key.charCodeAt(q) >= 0x30 && key.charCodeAt(q) <= 0x39) {
        idx = idx * 10 + (key.charCodeAt(q) - 0x30);
        q++;
      }
    }
    let extended = false;
    if (key.charCodeAt(q) === 0x2a) {
      extended = true;
      q++;
    }
    if (q !== key.length) result.push({ name: key, value: p.value });
    else pieces.push({ key: key.slice(0, star), value: p.value, idx, extended });
  }
  if (pieces.length === 0) return result;
  pieces.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.idx - b.idx));
  for (let i = 0; i < pieces.length; ) {
    const first = pieces[i]!;
    const lower = first.key.toLowerCase();
    let j = i;
    let ok = true;
    let haveExtended = false;
    for (let next = 0; j < pieces.length && pieces[j]!.key.toLowerCase() === lower; j++, next++) {
      if (pieces[j]!.idx !== next) ok = false;
      if (pieces[j]!.extended) haveExtended = true;
    }
    if (!ok) {
      for (let k = i; k < j; k++) {
        const pc = pieces[k]!;
        result.push({ name: `${pc.key}*${pc.idx}${pc.extended ? '*' : ''}`, value: pc.value });
      }
    } else {
      let value = !first.extended && haveExtended ? "''" : '';
      for (let k = i; k < j; k++) {
        const pc = pieces[k]!;
        value += !pc.extended && haveExtended ? escapePercent(pc.value) : pc.value;
      }
      result.push({ name: haveExtended ? `${first.key}*` : first.key, value });
    }
    i = j;
  }
  return result;
}

/** A parsed address: a mailbox, or a group start (mailbox = group name, domain null) / end (all null). */
export interface Address {
  name: string | null;
  route: string | null;
  mailbox: string | null;
  domain: string | null;
}

/**
 * Parse an address list (From, To, ...) the way Dovecot fills ENVELOPE: missing parts become
 * MISSING_MAILBOX / MISSING_DOMAIN, a comment after a bare addr-spec becomes the display name,
 * groups yield a start marker and an end marker.
 */
export function parseAddressList(value: string): Address[] {
  const sc = new Scanner(value, true);
  const list: Address[] = [];
  if (sc.skipLwsp() <= 0) return list;
  let addr: Address & { invalid: boolean } = { name: null, route: null, mailbox: null, domain: null, invalid: false };
  const push = (): void => {
    list.push({ name: addr.name, route: addr.route, mailbox: addr.mailbox, domain: addr.domain });
    addr = { name: null, route: null, mailbox: null, domain: null, invalid: false };
  };
  const pushFixed = (): void => {
    if (addr.mailbox === null) {
      addr.mailbox = 'MISSING_MAILBOX';
      addr.invalid = true;
    }
    if (addr.domain === null || addr.domain === '') {
      addr.domain = 'MISSING_DOMAIN';
      addr.invalid = true;
    }
    push();
  };
  const localPart = (): number => {
    sc.out = '';
    const ret = sc.cur() === 0x22 ? sc.quotedString() : sc.looseDotAtom();
    if (ret < 0) return -1;
    addr.mailbox = sc.out;
    return ret;
  };
  const domain = (): number => {
    sc.out = '';
    const ret = sc.domain();
    if (ret < 0) return -1;
    addr.domain = sc.out;
    return ret;
  };
  const domainList = (): number => {
    // obs-domain-list = "@" domain *(*(CFWS / ",") [CFWS] "@" domain)
    let route = '';
    for (;;) {
      if (sc.atEnd()) return 0;
      if (sc.cur() !== 0x40) break;
      if (route.length > 0) route += ',';
      route += '@';
      sc.out = '';
      const ret = sc.domain();
      route += sc.out;
      if (ret <= 0) return ret;
      while (sc.skipLwsp() > 0 && sc.cur() === 0x2c) sc.pos++;
    }
    addr.route = route;
    return 1;
  };
  const angleAddr = (): number => {
    sc.pos++;
    if (sc.skipLwsp() <= 0) return -1;
    if (sc.cur() === 0x40) {
      if (domainList() > 0 && sc.cur() === 0x3a) {
        sc.pos++;
      } else {
        addr.route = 'INVALID_ROUTE';
        if (sc.atEnd()) return -1;
      }
      if (sc.skipLwsp() <= 0) return -1;
    }
    if (sc.cur() !== 0x3e) {
      if (localPart() <= 0) return -1;
      if (sc.cur() === 0x40 && domain() <= 0) return -1;
    }
    if (sc.cur() !== 0x3e) return -1;
    sc.pos++;
    return sc.skipLwsp();
  };
  const nameAddr = (): number => {
    sc.out = '';
    if (sc.phrase() <= 0 || sc.cur() !== 0x3c) return -1;
    addr.name = sc.out === '' ? null : sc.out;
    if (angleAddr() < 0) {
      addr.domain = 'SYNTAX_ERROR';
      addr.invalid = true;
    }
    return sc.atEnd() ? 0 : 1;
  };
  const addrSpec = (): number => {
    sc.lastComment = '';
    const quoted = sc.cur() === 0x22;
    let ret = localPart();
    let ret2 = -2;
    if (ret <= 0) addr.invalid = true;
    if (ret !== 0 && !sc.atEnd() && sc.cur() === 0x40) {
      ret2 = domain();
      if (ret2 <= 0) ret = ret2;
    }
    if (sc.lastComment) {
      addr.name = sc.lastComment;
    } else if (ret2 === -2) {
      // a lone word is a mailbox, but more words make it a display name
      sc.out += ' ';
      const before = sc.out.length;
      sc.phrase();
      if (sc.out.length !== before) {
        addr.mailbox = null;
        addr.name = sc.out;
      } else if (!quoted) {
        addr.domain = '';
      }
      addr.invalid = true;
      ret = -1;
    }
    return ret;
  };
  const mailbox = (): number => {
    const start = sc.pos;
    let ret = nameAddr();
    if (ret < 0) {
      sc.pos = start;
      addr = { name: null, route: null, mailbox: null, domain: null, invalid: false };
      ret = addrSpec();
      if (addr.invalid && addr.name === null && addr.mailbox !== null && addr.domain === null) {
        addr.name = addr.mailbox;
        addr.mailbox = null;
      }
    }
    if (ret < 0) addr.invalid = true;
    pushFixed();
    return ret;
  };
  const group = (): number => {
    sc.out = '';
    if (sc.phrase() <= 0 || sc.cur() !== 0x3a) return -1;
    sc.pos++;
    let ret = sc.skipLwsp();
    addr.mailbox = sc.out;
    push();
    if (ret > 0 && sc.cur() !== 0x3b) {
      for (;;) {
        mailbox();
        if (sc.atEnd() || sc.cur() !== 0x2c) break;
        sc.pos++;
        if (sc.skipLwsp() <= 0) {
          ret = -1;
          break;
        }
      }
    }
    if (ret >= 0) {
      if (sc.atEnd() || sc.cur() !== 0x3b) ret = -1;
      else {
        sc.pos++;
        ret = sc.skipLwsp();
      }
    }
    push();
    return ret === 0 ? 0 : 1;
  };
  const address = (): number => {
    const start = sc.pos;
    const ret = group();
    if (ret >= 0) return ret;
    sc.pos = start;
    addr = { name: null, route: null, mailbox: null, domain: null, invalid: false };
    return mailbox();
  };
  for (;;) {
    if (address() === 0) break;
    if (sc.atEnd() || sc.cur() !== 0x2c) break;
    sc.pos++;
    const ret = sc.skipLwsp();
    if (ret <= 0) {
      if (ret < 0) pushFixed();
      break;
    }
  }
  return list;
}
