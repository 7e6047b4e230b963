/** Questions asked of a SearchKey tree before evaluating it. */
import type { SearchKey } from '../../protocol/ast.js';

/** True when the tree holds a MODSEQ key (RFC 7162 3.1.5: the response then carries MODSEQ). */
export function usesModSeq(key: SearchKey): boolean {
  switch (key.type) {
    case 'modseq':
      return true;
    case 'and':
      return key.keys.some(usesModSeq);
    case 'or':
      return usesModSeq(key.left) || usesModSeq(key.right);
    case 'not':
      return usesModSeq(key.key);
    default:
      return false;
  }
}
