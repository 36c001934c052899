import { InputError, NotAllowedError } from '@backstage/errors';
import { setTimeout as sleep } from 'node:timers/promises';
import { LoggerService } from '@backstage/backend-plugin-api';

export interface WaitOptions {
  /** What is awaited, for the log and the timeout error ("istiod Available on east"). */
  what: string;
  /**
   * Undefined means the default: the scaffolder validates input against the JSON schema but
   * does not fill in the schema's defaults, so an omitted `timeoutSeconds` arrives undefined.
   */
  timeoutSeconds: number | undefined;
  logger: LoggerService;
  signal?: AbortSignal;
  intervalMs?: number;
  progressEveryMs?: number;
}

/** The wait when an action's `timeoutSeconds` input is left out. */
export const DEFAULT_TIMEOUT_SECONDS = 300;

/**
 * Polls `check` until it reports done. Logs what it is still waiting for every few seconds, and
 * on timeout fails with the last progress line, so a stuck wait says what was missing.
 */
export async function waitUntil<T>(
  check: () => Promise<
    { done: true; value: T } | { done: false; progress: string }
  >,
  {
    what,
    timeoutSeconds = DEFAULT_TIMEOUT_SECONDS,
    logger,
    signal,
    intervalMs = 500,
    progressEveryMs = 5000,
  }: WaitOptions,
): Promise<T> {
  const started = Date.now();
  let lastLog = started;
  let progress = 'not checked yet';
  for (;;) {
    signal?.throwIfAborted();
    try {
      const result = await check();
      if (result.done) return result.value;
      progress = result.progress;
    } catch (e) {
      // A refusal (bad data that waiting will not mend) ends the wait at once.
      if (e instanceof NotAllowedError || e instanceof InputError) throw e;
      progress = e instanceof Error ? e.message.split('\n')[0] : String(e);
    }
    const elapsed = Date.now() - started;
    if (elapsed > timeoutSeconds * 1000) {
      throw new Error(
        `Timed out after ${timeoutSeconds}s waiting for ${what}: ${progress}`,
      );
    }
    if (Date.now() - lastLog >= progressEveryMs) {
      logger.info(
        `still waiting for ${what} (${Math.round(elapsed / 1000)}s): ${progress}`,
      );
      lastLog = Date.now();
    }
    await sleep(intervalMs, undefined, { signal });
  }
}
