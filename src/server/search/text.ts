/**
 * Case-insensitive substring matching for SEARCH (RFC 3501 6.4.4: "case-insensitive substring"),
 * on decoded text. Text is folded once per message and key: NFC (so composed and decomposed
 * accents agree) then lower case.
 */

/** Folds text for comparison; ASCII-only text skips normalisation, which is the costly part. */
export function fold(s: string): string {
  return /[^\x00-\x7f]/.test(s) ? s.normalize('NFC').toLowerCase() : s.toLowerCase();
}

/** True when folded haystack contains folded needle. */
export function contains(foldedHaystack: string, foldedNeedle: string): boolean {
  return foldedNeedle === '' || foldedHaystack.includes(foldedNeedle);
}
