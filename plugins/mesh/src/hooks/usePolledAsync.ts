import {
  DependencyList,
  useCallback,
  useEffect,
  useRef,
  useState,
} from 'react';
import { useSignal } from '@backstage/plugin-signals-react';
import { MESH_SIGNAL_CHANNEL, MeshSignal } from '@tailmesh/plugin-mesh-common';

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

/** What makes a view ask again when the mesh backend signals a change. */
export interface PushedRefresh {
  /** Whether a change of this kind can change what the view shows. */
  refreshOn(signal: MeshSignal): boolean;
  /**
   * Ask once more this long after a signal, for views of what is written only after the change
   * that signals it.
   */
  settleMs?: number;
}

/** For views of services: endpoints and Services matter too. */
export const REFRESH_ON_ANY_CHANGE: PushedRefresh = { refreshOn: () => true };

/** For views of the mesh as a whole: the audit's inputs (snapshots, sync states, policy). */
export const REFRESH_ON_MESH_CHANGE: PushedRefresh = {
  refreshOn: signal => signal.mesh,
};

/**
 * For the membership history: its events are stored after the audit that raises them, by
 * whichever backend replica records (not necessarily the one that signalled), so the view asks
 * once more shortly after.
 */
export const REFRESH_ON_HISTORY_CHANGE: PushedRefresh = {
  refreshOn: signal => signal.mesh,
  settleMs: 1500,
};

/**
 * Runs `load` now and then every `intervalMs` after the previous run settled (so slow answers
 * never pile up), pauses while the browser tab is hidden and catches up as soon as it is visible
 * again. Changing `deps` starts over with an empty state; `retry` asks again at once, showing
 * loading only when there is no earlier answer to keep showing.
 *
 * With `pushed`, and where the app has Backstage's signals (`@backstage/plugin-signals`), it does
 * not poll: it asks again when the mesh backend signals a change `refreshOn` accepts (a signal
 * that arrives while a request is running makes one more run after it), and after a failed
 * request every `intervalMs` until one succeeds. Without signals it polls as above.
 */
export function usePolledAsync<T>(
  load: () => Promise<T>,
  deps: DependencyList,
  intervalMs: number = DEFAULT_POLL_INTERVAL_MS,
  pushed?: PushedRefresh,
): PolledAsyncState<T> & { retry: () => void } {
  const [state, setState] = useState<PolledAsyncState<T>>({ loading: true });
  const runNow = useRef<() => void>();
  // The latest `load` closure, so that a re-render with a new closure does not restart polling.
  const loadRef = useRef(load);
  loadRef.current = load;
  const pushedRef = useRef(pushed);
  pushedRef.current = pushed;
  const { lastSignal, isSignalsAvailable } =
    useSignal<MeshSignal>(MESH_SIGNAL_CHANNEL);
  const polling = !(pushed && isSignalsAvailable);

  useEffect(() => {
    let stopped = false;
    let inFlight = false;
    let again = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    setState(previous =>
      previous.loading && !previous.value && !previous.error
        ? previous
        : { loading: true },
    );

    // With signals, only a failed request is asked again on the timer: no signal announces that
    // the backend is back.
    function schedule(failed: boolean) {
      clearTimeout(timer);
      if (!polling && !failed) return;
      timer = setTimeout(() => {
        // A hidden tab is caught up by the visibility listener instead.
        if (!pageHidden()) run();
      }, intervalMs);
    }

    async function run() {
      if (stopped) return;
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      clearTimeout(timer);
      let failed = false;
      try {
        const value = await loadRef.current();
        if (!stopped) {
          setState({ loading: false, value, receivedAt: new Date() });
        }
      } catch (e) {
        failed = true;
        if (!stopped) {
          setState(previous => ({
            ...previous,
            loading: false,
            error: toError(e),
          }));
        }
      } finally {
        inFlight = false;
        if (!stopped) {
          schedule(failed);
          if (again) {
            again = false;
            run();
          }
        }
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
  }, [...deps, intervalMs, polling]);

  useEffect(() => {
    if (!lastSignal || !pushedRef.current?.refreshOn(lastSignal))
      return undefined;
    // A hidden tab catches up when it is shown again.
    if (pageHidden()) return undefined;
    runNow.current?.();
    const settleMs = pushedRef.current.settleMs;
    if (settleMs === undefined) return undefined;
    const settle = setTimeout(() => runNow.current?.(), settleMs);
    return () => clearTimeout(settle);
  }, [lastSignal]);

  const retry = useCallback(() => {
    setState(previous => (previous.value ? previous : { loading: true }));
    runNow.current?.();
  }, []);
  return { ...state, retry };
}
