import {
  ClusterSyncHealth,
  MeshClusterSnapshot,
  ServiceEndpointsInCluster,
} from '@tailmesh/plugin-mesh-common';
import { MeshStateChange } from '../service/cache/MeshStateCache';
import { MeshStateSource } from '../service/cache/MeshStateSource';

export interface FakeCluster {
  snapshot: MeshClusterSnapshot;
  health: ClusterSyncHealth;
  nodes?: Array<{ region?: string; zone?: string }>;
  /** Endpoints by `namespace/name`; absent Services are not served. */
  services?: Record<string, Omit<ServiceEndpointsInCluster, 'cluster'>>;
}

/**
 * A stand-in for the watch cache built from fixed state, for tests of what is built on it. Tests
 * change `clusters` and call `emit` as the cache would after a watch event.
 */
export class FakeMeshState implements MeshStateSource {
  private readonly listeners = new Set<(change: MeshStateChange) => void>();

  constructor(public fixture: FakeCluster[]) {}

  clusters(): string[] {
    return this.fixture.map(c => c.snapshot.cluster);
  }

  snapshots(): MeshClusterSnapshot[] {
    return this.fixture.map(c =>
      c.health.state === 'ok'
        ? c.snapshot
        : {
            ...c.snapshot,
            error: c.health.error ?? { kind: 'unknown', message: 'syncing' },
          },
    );
  }

  health(cluster: string): ClusterSyncHealth {
    return this.find(cluster).health;
  }

  nodeLocalities(cluster: string): Array<{ region?: string; zone?: string }> {
    return this.find(cluster).nodes ?? [];
  }

  serviceEndpoints(
    namespace: string,
    name: string,
  ): ServiceEndpointsInCluster[] {
    return this.fixture.map(c => {
      const found = c.services?.[`${namespace}/${name}`];
      const error = c.health.state === 'ok' ? undefined : c.health.error;
      return found
        ? { cluster: c.snapshot.cluster, ...found }
        : {
            cluster: c.snapshot.cluster,
            reachable: c.health.state === 'ok',
            ...(error ? { error } : {}),
            serving: false,
            endpoints: { ready: 0, notReady: 0 },
            zones: [],
            network: c.snapshot.network ?? '',
          };
    });
  }

  onChange(listener: (change: MeshStateChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** A change of every cluster, of what the audit reads unless `mesh` is false. */
  emit(mesh = true): void {
    const clusters = this.clusters();
    for (const l of this.listeners)
      l({ clusters, meshClusters: mesh ? clusters : [] });
  }

  listenerCount(): number {
    return this.listeners.size;
  }

  private find(cluster: string): FakeCluster {
    const c = this.fixture.find(x => x.snapshot.cluster === cluster);
    if (!c) throw new Error(`unknown cluster ${cluster}`);
    return c;
  }
}

const ROOT =
  'AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99';

/** A synced member with istiod, the operator, a gateway and remote secrets for `peers`. */
export function memberSnapshot(
  cluster: string,
  n: number,
  peers: string[],
): MeshClusterSnapshot {
  return {
    cluster,
    network: `network${n}`,
    meshId: 'mesh1',
    istiod: {
      ready: true,
      version: '1.27.1',
      replicas: { ready: 2, desired: 2 },
    },
    operator: { ready: true },
    gateway: { ip: `100.64.0.${n}` },
    rootFingerprint: ROOT,
    remoteSecretsFor: peers,
    egressFor: peers.flatMap(peer => [
      { peer, to: 'api-server-proxy' as const, ready: true },
      { peer, to: 'east-west-gateway' as const, ready: true },
    ]),
  };
}

export const OK: ClusterSyncHealth = {
  state: 'ok',
  lastSyncAt: '2026-11-26T10:00:00.000Z',
};

/**
 * Three clusters: cluster1 and cluster2 are members that know each other, cluster1 serves
 * `shop/web`; cluster3 is configured but not a member.
 */
export function threeClusters(): FakeCluster[] {
  // What configure-networks gives both members: each network with its gateway.
  const meshNetworks = {
    networks: Object.fromEntries(
      [1, 2].map(n => [
        `network${n}`,
        {
          endpoints: [{ fromRegistry: `cluster${n}` }],
          gateways: [{ address: `100.64.0.${n}`, port: 15443 }],
        },
      ]),
    ),
  };
  return [
    {
      snapshot: {
        ...memberSnapshot('cluster1', 1, ['cluster2']),
        meshNetworks,
      },
      health: OK,
      nodes: [
        { region: 'region1', zone: 'region1-b' },
        { region: 'region1', zone: 'region1-a' },
      ],
      services: {
        'shop/web': {
          reachable: true,
          serving: true,
          endpoints: { ready: 2, notReady: 1 },
          zones: [
            { zone: 'region1-a', region: 'region1', ready: 2, notReady: 0 },
            { zone: 'region1-b', region: 'region1', ready: 0, notReady: 1 },
          ],
          network: 'network1',
        },
      },
    },
    {
      snapshot: {
        ...memberSnapshot('cluster2', 2, ['cluster1']),
        meshNetworks,
      },
      health: OK,
      nodes: [{ region: 'region2', zone: 'region2-a' }],
    },
    {
      snapshot: { cluster: 'cluster3', remoteSecretsFor: [], egressFor: [] },
      health: OK,
    },
  ];
}
