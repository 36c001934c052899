import { TestDatabases, mockServices } from '@backstage/backend-test-utils';
import {
  EAST_WEST_GATEWAY_SERVICE,
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
  LABEL_ISTIO_NETWORK,
  LABEL_MESH_ID,
  auditFindingId,
} from '@tailmesh/plugin-mesh-common';
import { MeshStateCache, MeshStateChange } from './cache/MeshStateCache';
import { FakeApiServer, FakeObject } from '../testUtils/fakeApiServer';
import { kubeConfigFor } from '../testUtils/silentServers';
import { HistoryRecorder } from './HistoryRecorder';
import { HistoryStore } from './HistoryStore';
import { MeshAuditor } from './MeshAuditor';

// The audit runs on changes of what it reads, not on the EndpointSlice and Service churn of a
// busy cluster: proven against the real watch cache over a socket, with the history recorder on.

const SLICES = '/apis/discovery.k8s.io/v1/endpointslices';
const SERVICES = '/api/v1/services';
const NODES = '/api/v1/nodes';
const NAMESPACES = '/api/v1/namespaces';
const ISTIO_DEPLOYMENTS = `/apis/apps/v1/namespaces/${ISTIO_NAMESPACE}/deployments`;

const istiod = (ready: boolean): FakeObject => ({
  metadata: { name: ISTIOD_DEPLOYMENT, namespace: ISTIO_NAMESPACE },
  spec: {
    replicas: 1,
    selector: {},
    template: {
      spec: {
        containers: [
          { name: 'discovery', image: 'docker.io/istio/pilot:1.28.0' },
        ],
      },
    },
  },
  status: {
    readyReplicas: ready ? 1 : 0,
    conditions: [{ type: 'Available', status: ready ? 'True' : 'False' }],
  },
});

const gateway = (ip: string): FakeObject => ({
  metadata: { name: EAST_WEST_GATEWAY_SERVICE, namespace: ISTIO_NAMESPACE },
  status: { loadBalancer: { ingress: [{ ip }] } },
});

const slice = (service: string, i: number, ready: number): FakeObject => ({
  metadata: {
    name: `${service}-${i}`,
    namespace: 'shop',
    labels: { 'kubernetes.io/service-name': service },
  },
  addressType: 'IPv4',
  endpoints: Array.from({ length: ready }, (_, n) => ({
    addresses: [`10.1.${i % 250}.${n}`],
    zone: 'region1-a',
    conditions: { ready: true },
  })),
});

async function until<T>(
  what: string,
  probe: () => T | undefined,
  describeLast: () => unknown = () => '',
) {
  const started = Date.now();
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() - started > 3_000) {
      throw new Error(
        `timed out: ${what}; last seen ${JSON.stringify(describeLast())}`,
      );
    }
    await new Promise(resolve => setTimeout(resolve, 10));
  }
}

describe('audit cost: the audit follows mesh changes only', () => {
  const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
  let api: FakeApiServer;
  let cache: MeshStateCache;
  let auditor: MeshAuditor;
  let recorder: HistoryRecorder;
  let store: HistoryStore;
  const coalesced: MeshStateChange[] = [];

  beforeAll(async () => {
    api = await FakeApiServer.start();
    api.apply(NAMESPACES, {
      metadata: {
        name: ISTIO_NAMESPACE,
        labels: { [LABEL_ISTIO_NETWORK]: 'network1', [LABEL_MESH_ID]: 'mesh1' },
      },
    });
    api.apply(ISTIO_DEPLOYMENTS, istiod(true));
    api.apply(SERVICES, gateway('100.64.0.1'));
    for (const name of ['web', 'api'])
      api.apply(SERVICES, { metadata: { name, namespace: 'shop' } });
    api.apply(NODES, {
      metadata: {
        name: 'node-a',
        labels: { 'topology.kubernetes.io/zone': 'region1-a' },
      },
    });
    cache = new MeshStateCache({
      clusters: [{ name: 'c1', kubeConfig: kubeConfigFor('c1', api) }],
      logger: mockServices.logger.mock(),
      changeDelayMs: 20,
    });
    auditor = new MeshAuditor({ state: cache });
    store = await HistoryStore.create({
      database: mockServices.database({
        knex: await databases.init('SQLITE_3'),
        migrations: { skip: false },
      }),
    });
    recorder = new HistoryRecorder({
      audit: auditor,
      store,
      logger: mockServices.logger.mock(),
    });
    cache.onChange(change => coalesced.push(change));
    auditor.start();
    recorder.start();
    cache.start();
    await until('c1 joined', () =>
      cache.health('c1').state === 'ok' &&
      auditor.current().snapshots[0].istiod?.ready
        ? true
        : undefined,
    );
    await recorder.observe();
    // Let the startup's coalesced notifications pass, so the tests see only their own.
    await new Promise(resolve => setTimeout(resolve, 100));
  });

  afterAll(async () => {
    await cache.stop();
    await recorder.stop();
    auditor.stop();
    await api.close();
  });

  it('runs no audit for 1,000 EndpointSlice changes, Service churn and node labels', async () => {
    const before = auditor.auditCount;
    const audited = auditor.current();
    const notified = coalesced.length;
    for (let i = 0; i < 500; i++) api.apply(SLICES, slice('web', i, 1));
    for (let i = 0; i < 500; i++) api.apply(SLICES, slice('web', i, 2));
    for (let i = 0; i < 50; i++) {
      api.apply(SERVICES, {
        metadata: { name: `svc-${i}`, namespace: 'shop' },
      });
    }
    api.apply(NODES, {
      metadata: {
        name: 'node-a',
        labels: { 'topology.kubernetes.io/zone': 'region1-b' },
      },
    });
    await until(
      '1,000 ready endpoints of shop/web',
      () =>
        cache.serviceEndpoints('shop', 'web')[0].endpoints.ready === 1000
          ? true
          : undefined,
      () => [cache.serviceEndpoints('shop', 'web')[0], cache.health('c1')],
    );
    await until('the node label change', () =>
      cache.nodeLocalities('c1')[0].zone === 'region1-b' ? true : undefined,
    );
    await until('the last Service', () =>
      cache.serviceEndpoints('shop', 'svc-49')[0].reachable ? true : undefined,
    );
    expect(auditor.auditCount).toBe(before);
    expect(auditor.current()).toBe(audited);
    // The service view's listeners still hear of it, as a change of no mesh cluster.
    await until('a coalesced notification', () =>
      coalesced.length > notified ? true : undefined,
    );
    for (const change of coalesced.slice(notified)) {
      expect(change).toEqual({ clusters: ['c1'], meshClusters: [] });
    }
  });

  it("audits on a change of the gateway's address, a Service the audit reads", async () => {
    const before = auditor.auditCount;
    api.apply(SERVICES, gateway('100.64.0.2'));
    await until('the new gateway address', () =>
      auditor.current().snapshots[0].gateway?.ip === '100.64.0.2'
        ? true
        : undefined,
    );
    expect(auditor.auditCount).toBe(before + 1);
  });

  it('still records a finding raised and cleared within one burst of changes', async () => {
    const before = auditor.auditCount;
    const id = auditFindingId('istiod-not-ready', ['c1']);
    // Both changes leave in one write burst, far within the cache's coalescing window.
    api.apply(ISTIO_DEPLOYMENTS, istiod(false));
    api.apply(ISTIO_DEPLOYMENTS, istiod(true));
    for (let i = 0; i < 100; i++) api.apply(SLICES, slice('api', i, 1));
    await until('istiod ready again and the slices in', () =>
      cache.serviceEndpoints('shop', 'api')[0].endpoints.ready === 100
        ? true
        : undefined,
    );
    await recorder.observe();
    const { events } = await store.list({ limit: 10 });
    expect(events.slice(0, 2).map(e => [e.kind, e.findingId])).toEqual([
      ['finding-cleared', id],
      ['finding-raised', id],
    ]);
    expect(auditor.auditCount).toBe(before + 2);
  });
});
