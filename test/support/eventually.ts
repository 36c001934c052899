import { setTimeout as sleep } from 'node:timers/promises';

export interface EventuallyOptions {
  timeoutMs?: number;
  /** Appended to the timeout error, e.g. what the probe saw last. */
  describeLast?: () => string;
}

/**
 * Polls `probe` every 250 ms until it returns a value (not undefined), or fails naming `what`:
 * controllers, watches and operators in the test bed settle in their own time.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 30_000, describeLast = () => '' }: EventuallyOptions = {},
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${describeLast()}`,
      );
    }
    await sleep(250);
  }
}
