import { mockServices } from '@backstage/backend-test-utils';
import { MESH_SIGNAL_CHANNEL } from '@tailmesh/plugin-mesh-common';
import { MeshStateListener } from './cache/MeshStateCache';
import { MeshSignalPublisher } from './MeshSignalPublisher';

function setup() {
  const listeners = new Set<MeshStateListener>();
  const policyListeners = new Set<() => void>();
  const published: unknown[] = [];
  const publisher = new MeshSignalPublisher({
    state: {
      onChange: l => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
    },
    policy: {
      onChange: l => {
        policyListeners.add(l);
        return () => policyListeners.delete(l);
      },
    },
    signals: {
      publish: async m => {
        published.push(m);
      },
    },
    logger: mockServices.logger.mock(),
    intervalMs: 250,
  });
  const change = (mesh: boolean) => {
    for (const l of listeners)
      l({ clusters: ['c1'], meshClusters: mesh ? ['c1'] : [] });
  };
  const policyChange = () => {
    for (const l of policyListeners) l();
  };
  return { publisher, change, policyChange, published, listeners };
}

describe('MeshSignalPublisher', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('broadcasts the first change at once and gathers the ones that follow within the interval', async () => {
    const { publisher, change, policyChange, published } = setup();
    publisher.start();
    change(false);
    await jest.advanceTimersByTimeAsync(0);
    expect(published).toEqual([
      {
        recipients: { type: 'broadcast' },
        channel: MESH_SIGNAL_CHANNEL,
        message: { mesh: false },
      },
    ]);
    // A burst: endpoints, then a snapshot, then the policy: one signal, which says mesh.
    change(false);
    change(true);
    policyChange();
    change(false);
    await jest.advanceTimersByTimeAsync(200);
    expect(published).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(50);
    expect(published).toHaveLength(2);
    expect(published[1]).toMatchObject({ message: { mesh: true } });
    // Quiet: nothing more.
    await jest.advanceTimersByTimeAsync(10_000);
    expect(published).toHaveLength(2);
    publisher.stop();
  });

  it('publishes nothing once stopped, and unsubscribes', async () => {
    const { publisher, change, published, listeners } = setup();
    publisher.start();
    change(true);
    publisher.stop();
    await jest.advanceTimersByTimeAsync(1000);
    expect(published).toEqual([]);
    expect(listeners.size).toBe(0);
  });
});
