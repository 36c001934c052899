// Code-unit order rather than localeCompare: the same on every server and browser, so that sorted
// output (and anything derived from it, like IDs and diffs) never depends on the locale.
export function compareStrings(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}
