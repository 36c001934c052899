import { compareStrings } from './compareStrings';

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
