import { act, renderHook, waitFor } from '@testing-library/react';
import { usePolledAsync } from './usePolledAsync';

const INTERVAL_MS = 20;

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
    const { result, unmount } = renderHook(() =>
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
    const { result, unmount } = renderHook(() =>
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
    const { unmount } = renderHook(() => usePolledAsync(load, [], INTERVAL_MS));
    await waitFor(() => expect(load).toHaveBeenCalledTimes(2), {
      timeout: 1000,
    });
    unmount();
    expect(maxInFlight).toBe(1);
  });

  it('pauses while the tab is hidden and catches up when it is shown', async () => {
    const load = jest.fn(async () => 'ok');
    const { unmount } = renderHook(() => usePolledAsync(load, [], INTERVAL_MS));
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
    const { result, rerender, unmount } = renderHook(
      ({ key }) => usePolledAsync(() => load(key), [key], 60_000),
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
    const { result, unmount } = renderHook(() =>
      usePolledAsync(load, [], 60_000),
    );
    await waitFor(() => expect(result.current.value).toBe('first'));
    act(() => result.current.retry());
    expect(result.current.loading).toBe(false);
    expect(result.current.value).toBe('first');
    await waitFor(() => expect(result.current.value).toBe('second'));
    unmount();
  });
});
