import { formatAge } from './formatAge';

const NOW = new Date('2025-11-26T12:00:00.000Z');

function ago(ms: number): string {
  return new Date(NOW.getTime() - ms).toISOString();
}

describe('formatAge', () => {
  it.each([
    [0, 'just now'],
    [4_999, 'just now'],
    [12_000, '12 s ago'],
    [5 * 60_000, '5 min ago'],
    [3 * 3_600_000, '3 h ago'],
    [47 * 3_600_000, '47 h ago'],
    [3 * 86_400_000, '3 d ago'],
  ])('%i ms ago reads as "%s"', (ms, text) => {
    expect(formatAge(ago(ms), NOW)).toBe(text);
  });

  it('reads a time ahead of the browser clock as just now', () => {
    expect(formatAge(ago(-30_000), NOW)).toBe('just now');
  });

  it('says so when the time cannot be read', () => {
    expect(formatAge('yesterday', NOW)).toBe('at an unknown time');
  });
});
