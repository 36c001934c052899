import { createElement, ReactNode } from 'react';
import { act, configure, renderHook, waitFor } from '@testing-library/react';
import { TestApiProvider } from '@backstage/test-utils';
import { SignalApi, signalApiRef } from '@backstage/plugin-signals-react';
import { MESH_SIGNAL_CHANNEL, MeshSignal } from '@tailmesh/plugin-mesh-common';
import {
  REFRESH_ON_ANY_CHANGE,
  REFRESH_ON_MESH_CHANGE,
  usePolledAsync,
} from './usePolledAsync';

/** A signal API like the app's (`@backstage/plugin-signals`), fed by the test. */
class FakeSignals implements SignalApi {
  private readonly subscribers = new Map<
    string,
    Set<(m: MeshSignal) => void>
  >();

  subscribe<T>(channel: string, onMessage: (message: T) => void) {
    const set = this.subscribers.get(channel) ?? new Set();
    this.subscribers.set(channel, set);
    const f = onMessage as unknown as (m: MeshSignal) => void;
    set.add(f);
    return { unsubscribe: () => set.delete(f) };
  }

  send(message: MeshSignal) {
    for (const f of this.subscribers.get(MESH_SIGNAL_CHANNEL) ?? []) f(message);
  }
}

/** The hook needs the app's API holder; `signals` adds the signal API to it. */
function withApis(signals?: SignalApi) {
  return ({ children }: { children: ReactNode }) =>
    createElement(TestApiProvider, {
      apis: signals ? [[signalApiRef, signals]] : [],
      children,
    } as never);
}

function renderWithApis<P, R>(
  hook: (props: P) => R,
  options: { initialProps?: P; signals?: SignalApi } = {},
) {
  return renderHook(hook, {
    initialProps: options.initialProps,
    wrapper: withApis(options.signals),
  });
}

const INTERVAL_MS = 20;

// CI runs these beside every other package's tests and the adoption apps' installs on two cores:
// a condition that takes a few 20 ms intervals can then take longer than waitFor's default 1 s.
// Waiting longer costs nothing when the condition is met; the checks that nothing more happens
// sleep for fixed times and are unaffected.
configure({ asyncUtilTimeout: 10_000 });

function setVisibility(state: DocumentVisibilityState) {
  Object.defineProperty(document, 'visibilityState', {
    configurable: true,
    get: () => state,
  });
  document.dispatchEvent(new Event('visibilitychange'));
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

describe('usePolledAsync', () => {
  afterEach(() => setVisibility('visible'));

  it('loads, then asks again every interval', async () => {
    let n = 0;
    const load = jest.fn(async () => ++n);
    const { result, unmount } = renderWithApis(() =>
      usePolledAsync(load, [], INTERVAL_MS),
    );
    expect(result.current.loading).toBe(true);
    await waitFor(() => expect(result.current.value).toBeGreaterThanOrEqual(1));
    expect(result.current.loading).toBe(false);
    await waitFor(() => expect(result.current.value).toBeGreaterThanOrEqual(3));
    unmount();
    const calls = load.mock.calls.length;
    await act(() => sleep(INTERVAL_MS * 4));
    expect(load).toHaveBeenCalledTimes(calls);
  });

  it('keeps the last value when a refresh fails, and clears the error on success', async () => {
    let release: (value: string) => void = () => {};
    const load = jest
      .fn()
      .mockResolvedValueOnce('first')
      .mockRejectedValueOnce(new Error('backend down'))
      .mockImplementationOnce(() => new Promise(resolve => (release = resolve)))
      .mockImplementation(() => new Promise(() => {}));
    const { result, unmount } = renderWithApis(() =>
      usePolledAsync(load, [], INTERVAL_MS),
    );
    await waitFor(() =>
      expect(result.current.error?.message).toBe('backend down'),
    );
    expect(result.current.value).toBe('first');
    expect(result.current.loading).toBe(false);
    await waitFor(() => expect(load).toHaveBeenCalledTimes(3));
    act(() => release('second'));
    await waitFor(() => expect(result.current.value).toBe('second'));
    expect(result.current.error).toBeUndefined();
    unmount();
  });

  it('never overlaps requests when an answer is slower than the interval', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const load = jest.fn(async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(INTERVAL_MS * 3);
      inFlight--;
      return 'ok';
    });
    const { unmount } = renderWithApis(() =>
      usePolledAsync(load, [], INTERVAL_MS),
    );
    await waitFor(() => expect(load).toHaveBeenCalledTimes(2));
    unmount();
    expect(maxInFlight).toBe(1);
  });

  it('pauses while the tab is hidden and catches up when it is shown', async () => {
    const load = jest.fn(async () => 'ok');
    const { unmount } = renderWithApis(() =>
      usePolledAsync(load, [], INTERVAL_MS),
    );
    await waitFor(() => expect(load).toHaveBeenCalledTimes(1));
    setVisibility('hidden');
    await act(() => sleep(INTERVAL_MS * 5));
    const whileHidden = load.mock.calls.length;
    await act(() => sleep(INTERVAL_MS * 5));
    expect(load).toHaveBeenCalledTimes(whileHidden);

    act(() => setVisibility('visible'));
    await waitFor(() => expect(load).toHaveBeenCalledTimes(whileHidden + 1));
    unmount();
  });

  it('starts over when its dependencies change', async () => {
    const load = jest.fn(
      (key: string) =>
        new Promise<string>(resolve => setTimeout(() => resolve(key), 5)),
    );
    const { result, rerender, unmount } = renderWithApis(
      ({ key }: { key: string }) =>
        usePolledAsync(() => load(key), [key], 60_000),
      { initialProps: { key: 'a' } },
    );
    await waitFor(() => expect(result.current.value).toBe('a'));
    rerender({ key: 'b' });
    expect(result.current.loading).toBe(true);
    expect(result.current.value).toBeUndefined();
    await waitFor(() => expect(result.current.value).toBe('b'));
    unmount();
  });

  it('retries at once, keeping the value it has', async () => {
    const load = jest
      .fn()
      .mockResolvedValueOnce('first')
      .mockResolvedValueOnce('second');
    const { result, unmount } = renderWithApis(() =>
      usePolledAsync(load, [], 60_000),
    );
    await waitFor(() => expect(result.current.value).toBe('first'));
    act(() => result.current.retry());
    expect(result.current.loading).toBe(false);
    expect(result.current.value).toBe('first');
    await waitFor(() => expect(result.current.value).toBe('second'));
    unmount();
  });

  it('with signals, asks once and then only when a change it cares about is signalled', async () => {
    const signals = new FakeSignals();
    const load = jest.fn(async () => 'ok');
    const { unmount } = renderWithApis(
      () => usePolledAsync(load, [], INTERVAL_MS, REFRESH_ON_MESH_CHANGE),
      { signals },
    );
    await waitFor(() => expect(load).toHaveBeenCalledTimes(1));
    // Nothing changes: no request per interval.
    await act(() => sleep(INTERVAL_MS * 5));
    expect(load).toHaveBeenCalledTimes(1);
    // Endpoints only: not this view's business.
    act(() => signals.send({ mesh: false }));
    await act(() => sleep(INTERVAL_MS));
    expect(load).toHaveBeenCalledTimes(1);
    act(() => signals.send({ mesh: true }));
    await waitFor(() => expect(load).toHaveBeenCalledTimes(2));
    await act(() => sleep(INTERVAL_MS * 5));
    expect(load).toHaveBeenCalledTimes(2);
    unmount();
  });

  it('with signals, runs once more after a request that a signal arrived during', async () => {
    const signals = new FakeSignals();
    const releases: Array<() => void> = [];
    const load = jest.fn(
      () => new Promise<string>(resolve => releases.push(() => resolve('ok'))),
    );
    const { unmount } = renderWithApis(
      () => usePolledAsync(load, [], INTERVAL_MS, REFRESH_ON_ANY_CHANGE),
      { signals },
    );
    await waitFor(() => expect(load).toHaveBeenCalledTimes(1));
    act(() => signals.send({ mesh: false }));
    act(() => signals.send({ mesh: true }));
    expect(load).toHaveBeenCalledTimes(1);
    await act(async () => releases[0]());
    await waitFor(() => expect(load).toHaveBeenCalledTimes(2));
    await act(async () => releases[1]());
    await act(() => sleep(INTERVAL_MS * 3));
    expect(load).toHaveBeenCalledTimes(2);
    unmount();
  });

  it('asks once more after settleMs, for what is written after the change', async () => {
    const signals = new FakeSignals();
    const load = jest.fn(async () => 'ok');
    const { unmount } = renderWithApis(
      () =>
        usePolledAsync(load, [], INTERVAL_MS, {
          refreshOn: () => true,
          settleMs: INTERVAL_MS * 2,
        }),
      { signals },
    );
    await waitFor(() => expect(load).toHaveBeenCalledTimes(1));
    act(() => signals.send({ mesh: true }));
    await waitFor(() => expect(load).toHaveBeenCalledTimes(2));
    await waitFor(() => expect(load).toHaveBeenCalledTimes(3));
    await act(() => sleep(INTERVAL_MS * 5));
    expect(load).toHaveBeenCalledTimes(3);
    unmount();
  });

  it('with signals, asks again on the timer only while requests fail', async () => {
    const signals = new FakeSignals();
    const load = jest
      .fn()
      .mockRejectedValueOnce(new Error('backend restarting'))
      .mockRejectedValueOnce(new Error('backend restarting'))
      .mockResolvedValue('ok');
    const { result, unmount } = renderWithApis(
      () => usePolledAsync(load, [], INTERVAL_MS, REFRESH_ON_ANY_CHANGE),
      { signals },
    );
    await waitFor(() => expect(result.current.value).toBe('ok'));
    expect(load).toHaveBeenCalledTimes(3);
    await act(() => sleep(INTERVAL_MS * 5));
    expect(load).toHaveBeenCalledTimes(3);
    unmount();
  });

  it('polls as before where the app has no signals', async () => {
    const load = jest.fn(async () => 'ok');
    const { unmount } = renderWithApis(() =>
      usePolledAsync(load, [], INTERVAL_MS, REFRESH_ON_ANY_CHANGE),
    );
    await waitFor(() => expect(load).toHaveBeenCalledTimes(3));
    unmount();
  });
});
