import { NotFoundError } from '@backstage/errors';
import { mockCredentials } from '@backstage/backend-test-utils';
import { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import {
  FakeMeshState,
  OK,
  memberSnapshot,
  threeClusters,
} from '../testUtils/fakeMeshState';
import { MeshAuditor } from './MeshAuditor';
import {
  MeshStatusService,
  placementOf,
  serviceRoutes,
} from './MeshStatusService';

const now = () => new Date('2026-11-26T12:00:00.000Z');

function entity(annotations: Record<string, string>): Entity {
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'web', namespace: 'default', annotations },
    spec: {},
  };
}

function serviceFor(state: FakeMeshState, entities: Entity[] = []) {
  const catalog = catalogServiceMock({ entities });
  const getEntityByRef = jest.spyOn(catalog, 'getEntityByRef');
  return {
    getEntityByRef,
    service: new MeshStatusService({
      state,
      audit: new MeshAuditor({ state }),
      catalog,
      configured: new Map([['cluster3', { region: 'region3', zone: 'z3' }]]),
      now,
    }),
  };
}

describe('MeshStatusService', () => {
  it('describes every cluster from the cache', () => {
    const { service } = serviceFor(new FakeMeshState(threeClusters()));
    const res = service.clusters();
    expect(res.generatedAt).toBe('2026-11-26T12:00:00.000Z');
    expect(res.clusters.map(c => c.name)).toEqual([
      'cluster1',
      'cluster2',
      'cluster3',
    ]);
    expect(res.clusters[0]).toEqual({
      name: 'cluster1',
      member: true,
      network: 'network1',
      region: 'region1',
      zone: 'region1-a',
      istiod: {
        installed: true,
        ready: true,
        version: '1.27.1',
        replicas: { ready: 2, desired: 2 },
      },
      gateway: { address: '100.64.0.1', ready: true },
      operator: { installed: true, ready: true },
      rootFingerprint: expect.stringMatching(/^AA:BB/),
      meshId: 'mesh1',
      knownPeers: ['cluster2'],
      sync: OK,
    });
    expect(res.clusters[2]).toMatchObject({
      name: 'cluster3',
      member: false,
      network: '',
      region: 'region3',
      zone: 'z3',
      istiod: {
        installed: false,
        ready: false,
        replicas: { ready: 0, desired: 0 },
      },
      gateway: { ready: false },
      operator: { installed: false, ready: false },
      knownPeers: [],
    });
  });

  it("reports istiod's replica counts as watched, not as readiness implies", () => {
    const clusters = threeClusters();
    clusters[0].snapshot = {
      ...clusters[0].snapshot,
      istiod: {
        ready: false,
        version: '1.27.1',
        replicas: { ready: 1, desired: 3 },
      },
    };
    const { service } = serviceFor(new FakeMeshState(clusters));
    expect(service.clusters().clusters[0].istiod).toEqual({
      installed: true,
      ready: false,
      version: '1.27.1',
      replicas: { ready: 1, desired: 3 },
    });
  });

  it('keeps the last known values of a cluster that cannot be read', () => {
    const clusters = threeClusters();
    const error = { kind: 'timeout' as const, message: 'cluster2: timed out' };
    clusters[1].health = { state: 'error', error, lastSyncAt: OK.lastSyncAt };
    const { service } = serviceFor(new FakeMeshState(clusters));
    expect(service.clusters().clusters[1]).toMatchObject({
      name: 'cluster2',
      member: true,
      gateway: { address: '100.64.0.2' },
      sync: { state: 'error', error },
    });
  });

  it('builds the membership matrix and the findings', () => {
    const clusters = threeClusters();
    clusters[1].snapshot = { ...memberSnapshot('cluster2', 2, []) };
    const { service } = serviceFor(new FakeMeshState(clusters));
    const res = service.membership();
    expect(res.clusters).toEqual(['cluster1', 'cluster2']);
    expect(res.matrix[1][0]).toEqual({
      from: 'cluster2',
      to: 'cluster1',
      remoteSecret: 'missing',
      gatewayInMeshNetworks: 'not-applicable',
      // No istiod view was read for these snapshots.
      istiodSync: 'unknown',
    });
    expect(res.findings.map(f => f.kind)).toContain('one-way-remote-secret');
    expect(res.generatedAt).toBe('2026-11-26T12:00:00.000Z');
    expect(res.tailnetPolicy).toBeUndefined();
  });

  it('reports grant-missing, grant-too-broad and how reading the policy file goes, without auditing per request', () => {
    const state = new FakeMeshState(threeClusters());
    const policy = {
      policy: () => ({ grants: [{ src: ['*'], dst: ['*'], ip: ['*'] }] }),
      status: () => ({
        state: 'error' as const,
        lastReadAt: '2026-11-26T11:00:00.000Z',
        error: 'Reading the tailnet policy file failed: HTTP 503',
      }),
      onChange: () => () => undefined,
    };
    const audit = new MeshAuditor({ state, policy });
    const service = new MeshStatusService({
      state,
      audit,
      policy,
      catalog: catalogServiceMock(),
      now,
    });
    const res = service.membership();
    // "*" → "*" on every port opens the network but grants no Kubernetes capability.
    expect(res.findings).toEqual([
      expect.objectContaining({
        kind: 'grant-missing',
        severity: 'error',
        clusters: ['cluster1', 'cluster2'],
      }),
      expect.objectContaining({
        kind: 'grant-too-broad',
        severity: 'warning',
        clusters: ['cluster1', 'cluster2'],
      }),
    ]);
    expect(res.tailnetPolicy).toEqual(policy.status());
    for (let i = 0; i < 5; i++) service.membership();
    expect(audit.auditCount).toBe(1);
  });

  it('lists a Service in every cluster with routes and a summary', () => {
    const { service } = serviceFor(new FakeMeshState(threeClusters()));
    const res = service.service('shop', 'web');
    expect(res.clusters.map(c => [c.cluster, c.serving])).toEqual([
      ['cluster1', true],
      ['cluster2', false],
      ['cluster3', false],
    ]);
    expect(res.clusters[0].zones).toHaveLength(2);
    expect(res.routes).toEqual([
      {
        fromCluster: 'cluster1',
        via: 'local',
        destinations: [{ cluster: 'cluster1', via: 'local', endpoints: 2 }],
      },
      {
        fromCluster: 'cluster2',
        via: 'gateway',
        gateway: { cluster: 'cluster1', address: '100.64.0.1' },
        destinations: [
          {
            cluster: 'cluster1',
            via: 'gateway',
            address: '100.64.0.1',
            endpoints: 2,
          },
        ],
      },
      // Not a member: no remote secret, no meshNetworks, so no way to cluster1's endpoints.
      { fromCluster: 'cluster3', via: 'unreachable', destinations: [] },
    ]);
    expect(res.summary).toEqual({
      servingClusters: 1,
      totalClusters: 3,
      readyEndpoints: 2,
      totalEndpoints: 3,
    });
  });

  it("gives every destination istiod would: local endpoints, then each reachable member's gateway by name, weighted by its endpoints", () => {
    const networks = {
      networks: Object.fromEntries(
        ['a', 'b', 'c'].map((c, i) => [
          `network${i + 1}`,
          {
            endpoints: [{ fromRegistry: c }],
            gateways: [{ address: `${c}-gw.ts.net`, port: 15443 }],
          },
        ]),
      ),
    };
    const snapshots = [
      { ...memberSnapshot('b', 2, ['a', 'c']), meshNetworks: networks },
      { ...memberSnapshot('a', 1, ['b', 'c']), meshNetworks: networks },
      // c holds no remote secret for b: its istiod knows only a's endpoints.
      { ...memberSnapshot('c', 3, ['a']), meshNetworks: networks },
    ];
    const row = (cluster: string, ready: number) => ({
      cluster,
      reachable: true,
      serving: ready > 0,
      endpoints: { ready, notReady: 0 },
      zones: [],
      network: '',
    });
    expect(
      serviceRoutes([row('c', 0), row('b', 3), row('a', 1)], snapshots),
    ).toEqual([
      {
        fromCluster: 'c',
        via: 'gateway',
        gateway: { cluster: 'a', address: 'a-gw.ts.net' },
        destinations: [
          {
            cluster: 'a',
            via: 'gateway',
            address: 'a-gw.ts.net',
            endpoints: 1,
          },
        ],
      },
      {
        fromCluster: 'b',
        via: 'local',
        destinations: [
          { cluster: 'b', via: 'local', endpoints: 3 },
          {
            cluster: 'a',
            via: 'gateway',
            address: 'a-gw.ts.net',
            endpoints: 1,
          },
        ],
      },
      {
        fromCluster: 'a',
        via: 'local',
        destinations: [
          { cluster: 'a', via: 'local', endpoints: 1 },
          {
            cluster: 'b',
            via: 'gateway',
            address: 'b-gw.ts.net',
            endpoints: 3,
          },
        ],
      },
    ]);
  });

  it('leaves out a member whose network has no gateway in meshNetworks, as istiod drops it', () => {
    const snapshots = [
      memberSnapshot('a', 1, ['b']),
      memberSnapshot('b', 2, ['a']),
    ];
    const row = (cluster: string, ready: number) => ({
      cluster,
      reachable: true,
      serving: ready > 0,
      endpoints: { ready, notReady: 0 },
      zones: [],
      network: '',
    });
    expect(serviceRoutes([row('a', 0), row('b', 2)], snapshots)[0]).toEqual({
      fromCluster: 'a',
      via: 'unreachable',
      destinations: [],
    });
  });

  it('answers a Service by name only to a caller who can see an entity standing for it', async () => {
    const credentials = mockCredentials.user();
    const { service } = serviceFor(new FakeMeshState(threeClusters()), [
      entity({ 'tailmesh.dev/service': 'shop/web' }),
      {
        ...entity({ 'backstage.io/kubernetes-id': 'echo' }),
        metadata: {
          name: 'echo',
          namespace: 'default',
          annotations: { 'backstage.io/kubernetes-id': 'echo' },
        },
      },
    ]);
    await expect(
      service.visibleService('shop', 'web', credentials),
    ).resolves.toMatchObject({ namespace: 'shop', name: 'web' });
    // backstage.io/kubernetes-id without a namespace annotation stands for default/<id>.
    await expect(
      service.visibleService('default', 'echo', credentials),
    ).resolves.toMatchObject({ namespace: 'default', name: 'echo' });
    for (const [ns, name] of [
      ['shop', 'echo'],
      ['default', 'web'],
      ['kube-system', 'kube-dns'],
    ]) {
      await expect(
        service.visibleService(ns, name, credentials),
      ).rejects.toThrow(
        new NotFoundError(
          `No catalog entity you can see stands for Service ${ns}/${name}`,
        ),
      );
    }
  });

  it('resolves an entity to its Service with the caller credentials', async () => {
    const credentials = mockCredentials.user();
    const { service, getEntityByRef } = serviceFor(
      new FakeMeshState(threeClusters()),
      [entity({ 'tailmesh.dev/service': 'shop/web' })],
    );
    const res = await service.entity('component:default/web', credentials);
    expect(res).toMatchObject({ namespace: 'shop', name: 'web' });
    expect(getEntityByRef).toHaveBeenCalledWith('component:default/web', {
      credentials,
    });
  });

  it('says NotFound for a missing entity or annotation', async () => {
    const { service } = serviceFor(new FakeMeshState(threeClusters()), [
      entity({}),
    ]);
    await expect(
      service.entity('component:default/nope', mockCredentials.user()),
    ).rejects.toThrow(NotFoundError);
    await expect(
      service.entity('component:default/web', mockCredentials.user()),
    ).rejects.toThrow(/names no mesh Service/);
  });

  it('reads the supplied placement', () => {
    const placement = placementOf([
      {
        name: 'c1',
        url: 'https://x',
        skipTLSVerify: false,
        network: 'n1',
        region: 'r1',
      },
    ]);
    expect(placement.get('c1')).toEqual({
      network: 'n1',
      region: 'r1',
      zone: undefined,
    });
  });
});
