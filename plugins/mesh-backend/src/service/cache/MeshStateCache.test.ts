import { mockServices } from '@backstage/backend-test-utils';
import { FakeApiServer } from '../../testUtils/fakeApiServer';
import {
  TestServer,
  kubeConfigFor,
  silentServer,
} from '../../testUtils/silentServers';
import { MeshStateCache } from './MeshStateCache';

// Long enough that a loaded CI machine (two cores running integration tests beside) still syncs
// the healthy cluster well within it: at 500 ms a fresh-clone run once saw the hung cluster time
// out first.
const TIMEOUT_MS = 1500;

async function until<T>(probe: () => T | undefined, timeoutMs: number) {
  const started = Date.now();
  for (;;) {
    const value = probe();
    if (value !== undefined) return { value, ms: Date.now() - started };
    if (Date.now() - started > timeoutMs) throw new Error('timed out');
    await new Promise(resolve => setTimeout(resolve, 10));
  }
}

describe('MeshStateCache with a cluster that accepts connections and never answers', () => {
  let healthy: FakeApiServer;
  let hung: TestServer;
  let cache: MeshStateCache;

  beforeAll(async () => {
    healthy = await FakeApiServer.start();
    hung = await silentServer('https');
    cache = new MeshStateCache({
      clusters: [
        { name: 'hung', kubeConfig: kubeConfigFor('hung', hung) },
        { name: 'healthy', kubeConfig: kubeConfigFor('healthy', healthy) },
      ],
      logger: mockServices.logger.mock(),
      requestTimeoutMs: TIMEOUT_MS,
      backoff: { initialMs: 50, maxMs: 200 },
    });
    cache.start();
  });

  afterAll(async () => {
    await cache.stop();
    await Promise.all([healthy.close(), hung.close()]);
  });

  it('syncs the other cluster at once, long before the timeout', async () => {
    const { ms } = await until(
      () => (cache.health('healthy').state === 'ok' ? true : undefined),
      TIMEOUT_MS * 4,
    );
    expect(ms).toBeLessThan(TIMEOUT_MS);
    expect(cache.health('hung').state).toBe('syncing');
  });

  it("turns the silent cluster's row into a timeout error within the request timeout", async () => {
    const { value, ms } = await until(() => {
      const h = cache.health('hung');
      return h.state === 'error' ? h : undefined;
    }, TIMEOUT_MS * 4);
    expect(ms).toBeLessThan(TIMEOUT_MS * 2);
    expect(value.error).toEqual({
      kind: 'timeout',
      // Readers get no address: the URL is only in the log.
      message: 'hung: its API server did not answer in time',
    });
    const [row] = cache.serviceEndpoints('shop', 'web');
    expect(row).toMatchObject({
      cluster: 'hung',
      reachable: false,
      error: { kind: 'timeout' },
    });
    expect(cache.snapshots()[0].error?.kind).toBe('timeout');
    expect(cache.health('healthy').state).toBe('ok');
  });
});
