import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
// Hoisted from the backend's dependencies; the test package does not declare it (yet).
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import meshPlugin from '@tailmesh/plugin-mesh-backend';
import {
  ClustersResponse,
  HistoryResponse,
  MembershipResponse,
  ServiceStatusResponse,
} from '@tailmesh/plugin-mesh-common';
import request from 'supertest';
import { testbedAppConfig, testbedSecrets } from '../../support/meshConfig';
import { kubeConfig } from '../../support/testbed';
import { eventually } from '../../support/eventually';

// cluster13 and cluster14 belong to the backend's files (see support/clusterOwners.ts); this file
// keeps to its own namespace there, and accepts whatever the watch cache test left installed.
const clusters = ['cluster13', 'cluster14'];
const namespace = 'mesh-backend-demo';

describe('the mesh backend plugin, against real apiservers', () => {
  let deny = false;
  // Decides per request, so one backend (and one set of watches) serves both cases.
  const permissions = mockServices.permissions.mock({
    authorize: async requests =>
      requests.map(() => ({
        result: deny ? AuthorizeResult.DENY : AuthorizeResult.ALLOW,
      })),
  });
  const core13 = kubeConfig('cluster13').makeApiClient(CoreV1Api);
  const apps13 = kubeConfig('cluster13').makeApiClient(AppsV1Api);
  let backend: Awaited<ReturnType<typeof startTestBackend>>;
  const bodies: string[] = [];

  async function get(path: string) {
    const res = await request(backend.server).get(`/api/mesh${path}`);
    bodies.push(res.text);
    return res;
  }

  beforeAll(async () => {
    backend = await startTestBackend({
      features: [
        meshPlugin,
        mockServices.rootConfig.factory({ data: testbedAppConfig(clusters) }),
        permissions.factory,
        // The catalog says which Services a caller may ask about by name: the one entity here
        // stands for mesh-backend-demo/api.
        catalogServiceMock.factory({
          entities: [
            {
              apiVersion: 'backstage.io/v1alpha1',
              kind: 'Component',
              metadata: {
                name: 'api',
                namespace: 'default',
                annotations: { 'tailmesh.dev/service': `${namespace}/api` },
              },
              spec: {
                type: 'service',
                owner: 'team-a',
                lifecycle: 'production',
              },
            },
          ],
        }),
      ],
    });
  });

  afterAll(async () => {
    await backend?.stop();
    await core13.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it('shows both clusters ok', async () => {
    const body = await eventually(
      'both clusters ok',
      async () => {
        const res = await get('/clusters');
        expect(res.status).toBe(200);
        const b = res.body as ClustersResponse;
        return b.clusters.every(c => c.sync.state === 'ok') ? b : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(body.clusters.map(c => c.name)).toEqual(clusters);
    for (const c of body.clusters) {
      expect(c).toMatchObject({
        istiod: { installed: expect.any(Boolean) },
        gateway: { ready: expect.any(Boolean) },
        operator: { installed: expect.any(Boolean) },
        knownPeers: expect.any(Array),
        sync: { state: 'ok', lastSyncAt: expect.any(String) },
      });
      expect(c.region).toBe(`region${c.name.slice('cluster'.length)}`);
    }
  });

  it('lists a Service of cluster13 in both clusters, with routes', async () => {
    await core13.createNamespace({ body: { metadata: { name: namespace } } });
    const labels = { app: 'api' };
    await apps13.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'api' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: 'api', image: 'nginx:1.27' }] },
          },
        },
      },
    });
    await core13.createNamespacedService({
      namespace,
      body: {
        metadata: { name: 'api' },
        spec: { selector: labels, ports: [{ port: 80 }] },
      },
    });
    const body = await eventually(
      '2 ready endpoints in cluster13',
      async () => {
        const res = await get(`/services/${namespace}/api`);
        expect(res.status).toBe(200);
        const b = res.body as ServiceStatusResponse;
        return b.clusters.find(c => c.cluster === 'cluster13')?.endpoints
          .ready === 2
          ? b
          : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(body).toMatchObject({ namespace, name: 'api' });
    expect(body.clusters.map(c => [c.cluster, c.serving])).toEqual([
      ['cluster13', true],
      ['cluster14', false],
    ]);
    expect(body.clusters[1]).toMatchObject({
      reachable: true,
      endpoints: { ready: 0, notReady: 0 },
      zones: [],
    });
    expect(body.routes[0]).toMatchObject({
      fromCluster: 'cluster13',
      via: 'local',
      destinations: [
        { cluster: 'cluster13', via: 'local', endpoints: expect.any(Number) },
      ],
    });
    expect(body.routes[1].fromCluster).toBe('cluster14');
    // Gateway only if both joined the mesh and cluster13's gateway has an address.
    if (body.routes[1].via === 'gateway') {
      expect(body.routes[1].gateway?.cluster).toBe('cluster13');
    } else {
      expect(body.routes[1].via).toBe('unreachable');
    }
    expect(body.summary).toEqual({
      servingClusters: 1,
      totalClusters: 2,
      readyEndpoints: 2,
      totalEndpoints: 2,
    });
  });

  it('answers nothing about a Service no catalog entity the caller sees stands for', async () => {
    // kube-dns runs in every cluster, but no entity names it.
    const res = await get('/services/kube-system/kube-dns');
    expect(res.status).toBe(404);
    expect(res.body.error.message).toBe(
      'No catalog entity you can see stands for Service kube-system/kube-dns',
    );
    expect(res.body.clusters).toBeUndefined();
  });

  it('answers /membership and /history', async () => {
    const membership = await get('/membership');
    expect(membership.status).toBe(200);
    const m = membership.body as MembershipResponse;
    expect(Array.isArray(m.clusters)).toBe(true);
    expect(m.matrix).toHaveLength(m.clusters.length);
    expect(Array.isArray(m.findings)).toBe(true);
    expect(typeof m.generatedAt).toBe('string');

    const history = await get('/history?limit=5');
    expect(history.status).toBe(200);
    const h = history.body as HistoryResponse;
    expect(h.events.length).toBeLessThanOrEqual(5);
    for (const e of h.events) {
      expect(e).toMatchObject({
        id: expect.any(String),
        at: expect.any(String),
        kind: expect.stringMatching(
          /^(joined|left|finding-raised|finding-cleared)$/,
        ),
        message: expect.any(String),
      });
    }
    expect((await get('/history?limit=x')).status).toBe(400);
  });

  it('refuses callers the permissions deny, without data', async () => {
    deny = true;
    try {
      for (const path of [
        '/clusters',
        `/services/${namespace}/api`,
        '/membership',
        '/history',
      ]) {
        const res = await get(path);
        expect(res.status).toBe(403);
        expect(res.body.clusters).toBeUndefined();
        expect(res.body.events).toBeUndefined();
      }
    } finally {
      deny = false;
    }
  });

  it('never puts a secret in a response', () => {
    const all = bodies.join('\n');
    for (const secret of testbedSecrets()) expect(all).not.toContain(secret);
  });
});
