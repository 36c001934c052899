import {
  DependencyList,
  useCallback,
  useEffect,
  useRef,
  useState,
} from 'react';

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
  // Duck-typed, so an error from another realm keeps its class and fields (ResponseError's status).
  return typeof (e as { message?: unknown } | undefined)?.message === 'string'
    ? (e as Error)
    : new Error(String(e));
}

function pageHidden(): boolean {
  return (
    typeof document !== 'undefined' && document.visibilityState === 'hidden'
  );
}

/**
 * Runs `load` now and then every `intervalMs` after the previous run settled (so slow answers
 * never pile up), pauses while the browser tab is hidden and catches up as soon as it is visible
 * again. Changing `deps` starts over with an empty state; `retry` asks again at once, showing
 * loading only when there is no earlier answer to keep showing.
 */
export function usePolledAsync<T>(
  load: () => Promise<T>,
  deps: DependencyList,
  intervalMs: number = DEFAULT_POLL_INTERVAL_MS,
): PolledAsyncState<T> & { retry: () => void } {
  const [state, setState] = useState<PolledAsyncState<T>>({ loading: true });
  const runNow = useRef<() => void>();
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

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(() => {
        // A hidden tab is caught up by the visibility listener instead.
        if (!pageHidden()) run();
      }, intervalMs);
    }

    async function run() {
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
          setState(previous => ({
            ...previous,
            loading: false,
            error: toError(e),
          }));
        }
      } finally {
        inFlight = false;
        if (!stopped) schedule();
      }
    }

    const onVisibilityChange = () => {
      if (!pageHidden()) run();
    };

    document.addEventListener('visibilitychange', onVisibilityChange);
    runNow.current = run;
    run();
    return () => {
      stopped = true;
      runNow.current = undefined;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibilityChange);
    };
    // `deps` stands for everything `load` reads, like the dependency list of useAsync.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, intervalMs]);

  const retry = useCallback(() => {
    setState(previous => (previous.value ? previous : { loading: true }));
    runNow.current?.();
  }, []);
  return { ...state, retry };
}
