import { DependencyList, useCallback, useEffect, useRef, useState } from 'react';

/** How often views of live mesh state ask the backend again. */
export const DEFAULT_POLL_INTERVAL_MS = 10_000;

/**
 * State of a polled request. `value` is the latest successful answer and survives both later
 * refreshes and later failures, so a view never blanks out while it refreshes; `error` is the
 * latest failure, cleared by the next success.
 */
export interface PolledAsyncState<T> {
  /** True only until the first answer (or failure) for the current dependencies. */
  loading: boolean;
  value?: T;
  error?: Error;
  /** When `value` was received. */
  receivedAt?: Date;
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function pageHidden(): boolean {
  return typeof document !== 'undefined' && document.visibilityState === 'hidden';
}

/**
 * Runs `load` now and then every `intervalMs` after the previous run settled (so slow answers
 * never pile up), pauses while the browser tab is hidden and catches up as soon as it is visible
 * again. Changing `deps` starts over with an empty state; `retry` does the same for the current
 * dependencies, for an error panel's retry button.
 */
export function usePolledAsync<T>(
  load: () => Promise<T>,
  deps: DependencyList,
  intervalMs: number = DEFAULT_POLL_INTERVAL_MS,
): PolledAsyncState<T> & { retry: () => void } {
  const [state, setState] = useState<PolledAsyncState<T>>({ loading: true });
  const [attempt, setAttempt] = useState(0);
  // The latest `load` closure, so that a re-render with a new closure does not restart polling.
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    let stopped = false;
    let inFlight = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    setState(previous =>
      previous.loading && !previous.value && !previous.error
        ? previous
        : { loading: true },
    );

    const schedule = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        // A hidden tab is caught up by the visibility listener instead.
        if (!pageHidden()) run();
      }, intervalMs);
    };

    const run = async () => {
      if (inFlight || stopped) return;
      inFlight = true;
      clearTimeout(timer);
      try {
        const value = await loadRef.current();
        if (!stopped) {
          setState({ loading: false, value, receivedAt: new Date() });
        }
      } catch (e) {
        if (!stopped) {
          setState(previous => ({ ...previous, loading: false, error: toError(e) }));
        }
      } finally {
        inFlight = false;
        if (!stopped) schedule();
      }
    };

    const onVisibilityChange = () => {
      if (!pageHidden()) run();
    };

    document.addEventListener('visibilitychange', onVisibilityChange);
    run();
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibilityChange);
    };
    // `deps` stands for everything `load` reads, like the dependency list of useAsync.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, intervalMs, attempt]);

  const retry = useCallback(() => setAttempt(n => n + 1), []);
  return { ...state, retry };
}
