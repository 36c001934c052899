import v8 from 'node:v8';
import vm from 'node:vm';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import meshPlugin from '@tailmesh/plugin-mesh-backend';
import {
  ClustersResponse,
  MembershipResponse,
} from '@tailmesh/plugin-mesh-common';
import request from 'supertest';
import { eventually } from '../../support/eventually';
import { testbedAppConfig } from '../../support/meshConfig';

// A hundred configured clusters (issue 16, point 6). The test bed runs 25 apiservers on two
// cores, so the hundred entries are the backend files' two clusters (cluster13 and cluster14, only
// read here) under fifty names each: every entry is a cluster of its own to the backend, with its
// own watches, cache and row, as it would be with a hundred real clusters.
const SOURCES = ['cluster13', 'cluster14'];
const COUNT = 100;

// In-process memory figures need a collection first; Jest runs without --expose-gc.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function heapUsedMb(): number {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** TLS sockets open in this process (Node lists them as TCPSocketWrap); each watch holds one. */
function sockets(): number {
  return process.getActiveResourcesInfo().filter(r => r === 'TCPSocketWrap')
    .length;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

describe('the mesh backend with a hundred configured clusters', () => {
  const base = testbedAppConfig(SOURCES);
  const clusters = Array.from({ length: COUNT }, (_, i) => {
    const source = base.mesh.clusters[i % SOURCES.length];
    return { ...source, name: `fleet-${String(i).padStart(3, '0')}` };
  });
  let backend: Awaited<ReturnType<typeof startTestBackend>>;
  let heapBefore: number;
  let socketsBefore: number;
  let startedAt: number;

  beforeAll(async () => {
    heapBefore = heapUsedMb();
    socketsBefore = sockets();
    startedAt = Date.now();
    backend = await startTestBackend({
      features: [
        meshPlugin,
        mockServices.rootConfig.factory({
          data: { ...base, mesh: { ...base.mesh, clusters } },
        }),
        catalogServiceMock.factory({ entities: [] }),
      ],
    });
  });

  afterAll(async () => {
    await backend?.stop();
  });

  async function get<T>(path: string): Promise<{ body: T; ms: number }> {
    const started = performance.now();
    const res = await request(backend.server)
      .get(`/api/mesh${path}`)
      .set('authorization', mockCredentials.user.header());
    expect(res.status).toBe(200);
    return { body: res.body as T, ms: performance.now() - started };
  }

  it('syncs every one of them, each with its own row', async () => {
    const { body } = await eventually(
      'all hundred clusters ok',
      async () => {
        const r = await get<ClustersResponse>('/clusters');
        return r.body.clusters.length === COUNT &&
          r.body.clusters.every(c => c.sync.state === 'ok')
          ? r
          : undefined;
      },
      { timeoutMs: 150_000 },
    );
    const syncedMs = Date.now() - startedAt;
    expect(body.clusters.map(c => c.name)).toEqual(clusters.map(c => c.name));
    const heapPerCluster = (heapUsedMb() - heapBefore) / COUNT;
    const socketsPerCluster = (sockets() - socketsBefore) / COUNT;
    console.log(
      `${COUNT} clusters: first full sync ${(syncedMs / 1000).toFixed(1)} s; ` +
        `${socketsPerCluster.toFixed(1)} watch sockets and ${heapPerCluster.toFixed(2)} MB of heap per cluster`,
    );
    // One socket per watched resource kind, nothing per request: a dozen or so per cluster.
    expect(socketsPerCluster).toBeGreaterThanOrEqual(8);
    expect(socketsPerCluster).toBeLessThan(20);
    expect(heapPerCluster).toBeLessThan(5);
  });

  it('answers the cluster list and the membership from memory, quickly, at that size', async () => {
    const times = { clusters: [] as number[], membership: [] as number[] };
    let membership: MembershipResponse | undefined;
    for (let i = 0; i < 20; i++) {
      times.clusters.push((await get<ClustersResponse>('/clusters')).ms);
      const m = await get<MembershipResponse>('/membership');
      times.membership.push(m.ms);
      membership = m.body;
    }
    const p50 = (xs: number[]) =>
      percentile(
        [...xs].sort((a, b) => a - b),
        0.5,
      );
    console.log(
      `${COUNT} clusters: GET /clusters p50 ${p50(times.clusters).toFixed(1)} ms, ` +
        `GET /membership p50 ${p50(times.membership).toFixed(1)} ms ` +
        `(${membership!.clusters.length} members, ${membership!.findings.length} findings)`,
    );
    expect(p50(times.clusters)).toBeLessThan(250);
    expect(p50(times.membership)).toBeLessThan(250);
  });
});
