import { describeClusterError } from '@tailmesh/plugin-mesh-node';
import {
  TestServer,
  kubeConfigFor,
  silentServer,
  stallingServer,
} from '../../testUtils/silentServers';
import { ACCEPT_JSON, KubeRequests } from './KubeRequests';

const TIMEOUT_MS = 300;

async function failure(run: () => Promise<unknown>) {
  const started = Date.now();
  try {
    await run();
  } catch (e) {
    return { error: e as Error, ms: Date.now() - started };
  }
  throw new Error('expected the request to fail');
}

describe('KubeRequests timeouts, against sockets that never answer', () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map(s => s.close()));
  });
  async function server(make: () => Promise<TestServer>) {
    const s = await make();
    servers.push(s);
    return s;
  }

  it.each(['http', 'https'] as const)(
    'fails a GET to a %s server that accepts and never answers as a timeout, in time',
    async scheme => {
      const silent = await server(() => silentServer(scheme));
      const http = new KubeRequests(kubeConfigFor('hung', silent), TIMEOUT_MS);
      const { error, ms } = await failure(() =>
        http.getJson(
          '/api/v1/nodes',
          ACCEPT_JSON,
          new AbortController().signal,
        ),
      );
      expect(error.name).toBe('TimeoutError');
      expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
      expect(ms).toBeLessThan(TIMEOUT_MS + 1_000);
      expect(describeClusterError('hung', silent.url, error).kind).toBe(
        'timeout',
      );
    },
  );

  it('fails a GET whose answer stops after the headers', async () => {
    const stalling = await server(stallingServer);
    const http = new KubeRequests(kubeConfigFor('slow', stalling), TIMEOUT_MS);
    const { error, ms } = await failure(() =>
      http.getJson('/api/v1/nodes', ACCEPT_JSON, new AbortController().signal),
    );
    expect(error.name).toBe('TimeoutError');
    expect(ms).toBeLessThan(TIMEOUT_MS + 1_000);
  });

  it('fails a watch that is never accepted within the request timeout', async () => {
    const silent = await server(() => silentServer('https'));
    const http = new KubeRequests(kubeConfigFor('hung', silent), TIMEOUT_MS);
    const onOpen = jest.fn();
    const { error, ms } = await failure(() =>
      http.stream(
        '/api/v1/nodes?watch=true',
        ACCEPT_JSON,
        new AbortController().signal,
        60_000,
        onOpen,
        () => undefined,
      ),
    );
    expect(error.name).toBe('TimeoutError');
    expect(ms).toBeLessThan(TIMEOUT_MS + 1_000);
    expect(onOpen).not.toHaveBeenCalled();
  });

  it('keeps an accepted watch past the request timeout, until its idle timeout', async () => {
    const stalling = await server(stallingServer);
    const http = new KubeRequests(kubeConfigFor('quiet', stalling), TIMEOUT_MS);
    const onOpen = jest.fn();
    const idleMs = TIMEOUT_MS * 3;
    const { error, ms } = await failure(() =>
      http.stream(
        '/api/v1/nodes?watch=true',
        ACCEPT_JSON,
        new AbortController().signal,
        idleMs,
        onOpen,
        () => undefined,
      ),
    );
    expect(onOpen).toHaveBeenCalledTimes(1);
    expect(error.name).toBe('TimeoutError');
    expect(ms).toBeGreaterThanOrEqual(idleMs - 20);
  });

  it("reports the caller's own abort as an abort, not a timeout", async () => {
    const silent = await server(() => silentServer('http'));
    const http = new KubeRequests(kubeConfigFor('hung', silent), 60_000);
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 50);
    const { error, ms } = await failure(() =>
      http.getJson('/api/v1/nodes', ACCEPT_JSON, stop.signal),
    );
    expect(error.name).toBe('AbortError');
    expect(ms).toBeLessThan(1_000);
  });
});
