/**
 * dovecot-uidlist: the UID <-> file name map of one Maildir folder.
 *
 * Version 3 (Dovecot 1.1+):  header `3 V<uidvalidity> N<nextuid> G<mailbox guid hex> [other fields]`,
 * records `<uid> [<key><value> ...] :<base file name>` (the name without its `:2,` info). Known record
 * keys: W (virtual size), S (file size), G (message GUID). Version 1 (Courier's courierimapuiddb):
 * header `1 <uidvalidity> <nextuid>`, records `<uid> <file name>`.
 *
 * Writers either append complete lines in place (Dovecot does, without touching the header, so the
 * real next UID is max(N, last UID + 1)) or rewrite the whole file and rename it over; both only
 * while holding dovecot-uidlist.lock. A trailing line without its newline is an append in progress.
 */
import { randomBytes } from 'node:crypto';

/** One record: a UID and the base name of its file. */
export interface UidlistRecord {
  uid: number;
  /** File name without the `:2,...` info part. */
  base: string;
  /** Extension fields as written (`W1234`, `S1200`, `G...`), in file order. */
  ext: string[];
}

/** A parsed dovecot-uidlist. */
export interface Uidlist {
  version: number;
  uidValidity: number;
  /** Next UID to give: max(header N, highest record UID + 1). */
  nextUid: number;
  /** 128-bit mailbox GUID as 32 hex digits ('' when the file has none). */
  guid: string;
  /** Unknown header fields, kept when rewriting. */
  hdrExt: string[];
  records: UidlistRecord[];
}

/** Result of parsing: the list, or why the file is unusable. */
export type ParseResult = { ok: true; list: Uidlist; bytes: number } | { ok: false; reason: string };

/** A fresh random mailbox GUID (32 lower-case hex digits). */
export function newMailboxGuid(): string {
  return randomBytes(16).toString('hex');
}

/** Value of one extension key (`W`, `S`, `G`) of a record, or undefined. */
export function recordExt(rec: UidlistRecord, key: string): string | undefined {
  for (const e of rec.ext) if (e[0] === key) return e.slice(1);
  return undefined;
}

/**
 * Parse the file's text. Only complete lines count: `bytes` is how much of the text was consumed,
 * so a reader can tell a half-written trailing line from a finished file.
 */
export function parseUidlist(text: string): ParseResult {
  const end = text.lastIndexOf('\n');
  if (end < 0) return { ok: false, reason: text.length === 0 ? 'empty file' : 'no complete header line' };
  const body = text.slice(0, end);
  const lines = body.split('\n');
  const header = lines[0] ?? '';
  const hm = /^(\d) (.*)$/.exec(header);
  if (!hm) return { ok: false, reason: 'invalid version number' };
  const version = Number(hm[1]);
  let uidValidity = 0;
  let nextUid = 0;
  let guid = '';
  const hdrExt: string[] = [];
  if (version === 1) {
    const m = /^(\d+) (\d+)\s*$/.exec(hm[2] ?? '');
    if (!m) return { ok: false, reason: 'corrupted version 1 header' };
    uidValidity = Number(m[1]);
    nextUid = Number(m[2]);
  } else if (version === 3) {
    for (const field of (hm[2] ?? '').split(' ')) {
      if (field === '') continue;
      const key = field[0];
      const value = field.slice(1);
      if (key === 'V') uidValidity = /^\d+$/.test(value) ? Number(value) : NaN;
      else if (key === 'N') nextUid = /^\d+$/.test(value) ? Number(value) : NaN;
      else if (key === 'G') guid = /^[0-9a-fA-F]{32}$/.test(value) ? value.toLowerCase() : '';
      else hdrExt.push(field);
    }
  } else {
    return { ok: false, reason: `unsupported version ${version}` };
  }
  if (!(uidValidity > 0 && uidValidity <= 0xffffffff) || !(nextUid > 0)) {
    return { ok: false, reason: `broken header (uidvalidity=${uidValidity}, next uid=${nextUid})` };
  }
  const records: UidlistRecord[] = [];
  let prev = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line === '') continue;
    const sp = line.indexOf(' ');
    const uidText = sp < 0 ? line : line.slice(0, sp);
    if (!allDigits(uidText)) return { ok: false, reason: `line ${i + 1}: invalid data` };
    const uid = Number(uidText);
    if (uid === 0 || uid >= 0xffffffff) return { ok: false, reason: `line ${i + 1}: invalid uid ${uid}` };
    if (uid <= prev) return { ok: false, reason: `line ${i + 1}: UIDs not ordered (${uid} <= ${prev})` };
    prev = uid;
    const ext: string[] = [];
    let base: string;
    if (version === 3 && sp > 0 && line.charCodeAt(sp + 1) === 58 /* : */) {
      // The usual line "<uid> :<name>", without the field loop below (a large folder has tens of thousands).
      base = line.slice(sp + 2);
    } else if (version === 3) {
      let rest = line.slice(sp + 1);
      // Fields up to ':'; the file name follows it and may itself contain spaces.
      for (;;) {
        rest = rest.replace(/^ +/, '');
        if (rest.startsWith(':') || rest === '') break;
        const spc = rest.indexOf(' ');
        const field = spc < 0 ? rest : rest.slice(0, spc);
        // Dovecot's valid keys are upper-case letters; anything else is dropped on rewrite.
        if (/^[A-Z]/.test(field)) ext.push(field);
        rest = spc < 0 ? '' : rest.slice(spc);
      }
      if (!rest.startsWith(':')) return { ok: false, reason: `line ${i + 1}: missing file name` };
      base = rest.slice(1);
    } else {
      base = line.slice(sp + 1);
    }
    const colon = base.indexOf(':');
    if (colon >= 0) base = base.slice(0, colon);
    if (base === '' || base.includes('/')) return { ok: false, reason: `line ${i + 1}: broken file name` };
    records.push({ uid, base, ext });
  }
  if (prev >= nextUid) nextUid = prev + 1;
  return { ok: true, list: { version, uidValidity, nextUid, guid, hdrExt, records }, bytes: Buffer.byteLength(text.slice(0, end + 1)) };
}

function allDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** One record line (with newline) in version 3 format. */
export function formatRecord(rec: UidlistRecord): string {
  return `${rec.uid}${rec.ext.map((e) => ` ${e}`).join('')} :${rec.base}\n`;
}

/** The whole file in version 3 format. */
export function serializeUidlist(list: Uidlist): string {
  const parts = [`3 V${list.uidValidity} N${list.nextUid} G${list.guid}${list.hdrExt.map((e) => ` ${e}`).join('')}\n`];
  for (const rec of list.records) parts.push(formatRecord(rec));
  return parts.join('');
}

/**
 * The list after records were appended in place to a file whose earlier bytes were `list`
 * (header unchanged): only the new lines are parsed. `header` is the file's first line with its
 * newline, `tail` the text after the old bytes. Null when the tail does not continue the list
 * (UIDs not above the old ones, or a broken line): parse the whole file then.
 */
export function appendToUidlist(list: Uidlist, header: string, tail: string): { list: Uidlist; bytes: number } | null {
  const parsed = parseUidlist(header + tail);
  if (!parsed.ok) return null;
  const added = parsed.list.records;
  const last = list.records[list.records.length - 1];
  if (last && added.length > 0 && (added[0] as UidlistRecord).uid <= last.uid) return null;
  const records = added.length > 0 ? list.records.concat(added) : list.records;
  return {
    list: { ...list, records, nextUid: Math.max(list.nextUid, parsed.list.nextUid) },
    bytes: parsed.bytes - Buffer.byteLength(header),
  };
}
