/**
 * Dates for SEARCH and SORT: day numbers to compare "disregarding time and timezone"
 * (RFC 3501 6.4.4), and a lenient RFC 5322 Date header parser that keeps the sender's offset.
 */

/** A calendar day as a comparable number yyyymmdd. */
export type DayNumber = number;

/** Day number of a SEARCH date ("YYYY-MM-DD"), or NaN when it is not one. */
export function searchDay(date: string): DayNumber {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return NaN;
  return Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3]);
}

/** The day of an instant in the server's time zone (how Dovecot compares INTERNALDATE and SAVEDATE). */
export function localDay(d: Date): DayNumber {
  return d.getFullYear() * 10000 + (d.getMonth() + 1) * 100 + d.getDate();
}

/** The day of an instant as seen at a UTC offset in minutes (the Date header's own zone). */
export function dayAtOffset(utcMs: number, offsetMinutes: number): DayNumber {
  const d = new Date(utcMs + offsetMinutes * 60_000);
  return d.getUTCFullYear() * 10000 + (d.getUTCMonth() + 1) * 100 + d.getUTCDate();
}

/** A parsed Date header: the instant and the offset it was written in. */
export interface HeaderDate {
  utcMs: number;
  offsetMinutes: number;
}

const MONTHS: Record<string, number> = {
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11,
};

// RFC 5322 4.3 obsolete zones; anything else alphabetic counts as -0000 (unknown).
const ZONES: Record<string, number> = {
  UT: 0, UTC: 0, GMT: 0, Z: 0, EST: -300, EDT: -240, CST: -360, CDT: -300, MST: -420, MDT: -360, PST: -480, PDT: -420,
};

/**
 * Parses an RFC 5322 date-time leniently: optional weekday, "d Mon yyyy hh:mm[:ss] zone",
 * two- and three-digit years per RFC 5322 4.3, comments ignored. Null when it cannot be read.
 */
export function parseHeaderDate(value: string): HeaderDate | null {
  const text = value.replace(/\([^()]*\)/g, ' ').replace(/\s+/g, ' ').trim();
  const m = /^(?:[A-Za-z]+,?\s*)?(\d{1,2})[\s-]+([A-Za-z]{3})[A-Za-z]*\.?[\s-]+(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([+-]\d{4}|[A-Za-z]+))?/.exec(text);
  if (!m) return null;
  const day = Number(m[1]);
  const month = MONTHS[m[2].toLowerCase()];
  if (month === undefined || day < 1 || day > 31) return null;
  let year = Number(m[3]);
  if (m[3].length === 2) year += year < 50 ? 2000 : 1900;
  else if (m[3].length === 3) year += 1900;
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] !== undefined ? Number(m[6]) : 0;
  if (hour > 23 || minute > 59 || second > 60) return null;
  let offset = 0;
  const zone = m[7];
  if (zone !== undefined) {
    if (zone[0] === '+' || zone[0] === '-') {
      const hh = Number(zone.slice(1, 3));
      const mm = Number(zone.slice(3, 5));
      offset = (zone[0] === '-' ? -1 : 1) * (hh * 60 + mm);
    } else {
      offset = ZONES[zone.toUpperCase()] ?? 0;
    }
  }
  const utcMs = Date.UTC(year, month, day, hour, minute, second) - offset * 60_000;
  if (!Number.isFinite(utcMs)) return null;
  return { utcMs, offsetMinutes: offset };
}
