// Code-unit order rather than localeCompare: the same on every server and browser, so that sorted
// output (and anything derived from it, like IDs and diffs) never depends on the locale.
/**
 * Compares strings in code-unit order, for sorting that never depends on the locale.
 *
 * @public
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}

/**
 * The value that occurs most often; ties go to the first in {@link compareStrings} order.
 *
 * @public
 */
export function mostCommon(values: ReadonlyArray<string>): string | undefined {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort(
    (a, b) => b[1] - a[1] || compareStrings(a[0], b[0]),
  )[0]?.[0];
}
