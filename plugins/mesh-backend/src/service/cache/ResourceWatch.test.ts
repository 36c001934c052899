import { backoffDelay } from './ResourceWatch';

describe('backoffDelay', () => {
  const opts = { initialMs: 100, maxMs: 1_000 };

  it('doubles from the initial delay, with jitter in the upper half', () => {
    for (const [attempt, base] of [
      [0, 100],
      [1, 200],
      [2, 400],
    ]) {
      const d = backoffDelay(attempt, opts);
      expect(d).toBeGreaterThanOrEqual(base / 2);
      expect(d).toBeLessThanOrEqual(base);
    }
  });

  it('never exceeds the cap, however many attempts failed', () => {
    for (const attempt of [4, 10, 100, 10_000]) {
      expect(backoffDelay(attempt, opts)).toBeLessThanOrEqual(1_000);
      expect(backoffDelay(attempt, opts)).toBeGreaterThanOrEqual(500);
    }
  });
});
