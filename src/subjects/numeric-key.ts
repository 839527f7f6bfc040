// Keys for Maps of many small texts that are mostly numbers (sids, subject tokens such as device or
// order ids): a number held in a Map costs nothing beside the entry, a string about 50 B (its cell
// and its character storage), and one per subscription adds up at a million subscriptions.

// Digits without a leading zero that a double holds exactly read back as the same text.
const MAX_DIGITS = 15;

/**
 * `text` as a number when `String(number)` gives the same text back (`1`, `42`), else `text` itself
 * (`01`, `a1`, `-1`, `1.5`, ``), so the two never collide as keys.
 */
export function numericKey(text: string): number | string {
  const n = text.length;
  if (n === 0 || n > MAX_DIGITS) return text;
  const first = text.charCodeAt(0);
  if (first < 48 || first > 57 || (first === 48 && n > 1)) return text;
  let value = first - 48;
  for (let i = 1; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return text;
    value = value * 10 + (c - 48);
  }
  return value;
}
