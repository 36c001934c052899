import { compareStrings, mostCommon } from './compareStrings';

describe('compareStrings', () => {
  it('orders by code unit, independent of locale', () => {
    expect(['b', 'a', 'B', 'a-2', 'a1'].sort(compareStrings)).toEqual([
      'B',
      'a',
      'a-2',
      'a1',
      'b',
    ]);
    expect(compareStrings('x', 'x')).toBe(0);
  });
});

describe('mostCommon', () => {
  it('returns the most frequent value, ties in code-unit order', () => {
    expect(mostCommon(['b', 'a', 'b', 'a', 'c'])).toBe('a');
    expect(mostCommon(['z', 'y', 'z'])).toBe('z');
    expect(mostCommon([])).toBeUndefined();
  });
});
