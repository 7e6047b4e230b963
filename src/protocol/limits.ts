/**
 * Parser limits and their defaults. A violation yields a ParseError event, never a throw.
 */
import type { ParserLimits } from './ast.js';

/** Defaults: 64 KiB lines, 64 MiB literals, 64 levels of nesting, 100 000 items per command. */
export const DEFAULT_LIMITS: ParserLimits = Object.freeze({
  maxLineLength: 65536,
  maxLiteralSize: 64 * 1024 * 1024,
  maxDepth: 64,
  maxItems: 100000,
});

/** Limits after defaults are applied, plus the derived whole-command cap. */
export interface ResolvedLimits extends ParserLimits {
  /** Most bytes one command may hold in total (text and literals): 4 × maxLiteralSize unless given. */
  maxCommandSize: number;
}

/** Merge partial limits over the defaults; invalid values (NaN, negative) fall back to the default. */
export function resolveParserLimits(partial: Partial<ParserLimits> = {}): ResolvedLimits {
  const pick = (v: number | undefined, d: number): number => (typeof v === 'number' && v >= 0 && !Number.isNaN(v) ? v : d);
  const maxLineLength = pick(partial.maxLineLength, DEFAULT_LIMITS.maxLineLength);
  const maxLiteralSize = pick(partial.maxLiteralSize, DEFAULT_LIMITS.maxLiteralSize);
  const maxDepth = pick(partial.maxDepth, DEFAULT_LIMITS.maxDepth);
  const maxItems = pick(partial.maxItems, DEFAULT_LIMITS.maxItems);
  // A MULTIAPPEND may carry several messages, so the default leaves room for a few of the largest.
  const maxCommandSize = pick(partial.maxCommandSize, Math.max(4 * maxLiteralSize, 4 * maxLineLength));
  return { maxLineLength, maxLiteralSize, maxDepth, maxItems, maxCommandSize };
}
