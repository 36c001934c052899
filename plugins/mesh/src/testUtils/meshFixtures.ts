import { Entity } from '@backstage/catalog-model';
import {
  AuditFinding,
  ClustersResponse,
  HistoryResponse,
  MembershipCell,
  MembershipResponse,
  MeshClusterStatus,
  ServiceStatusResponse,
} from '@tailmesh/plugin-mesh-common';
import { MeshApi } from '../api';

/** Realistic mesh answers for component tests: the shapes the backend serves for the test bed. */

const GENERATED_AT = '2025-11-26T12:00:00.000Z';
export const ROOT_FINGERPRINT =
  '3A:7F:21:9C:0B:44:E5:16:8D:72:AA:0F:31:C8:5E:96:12:4B:D7:E0:6A:93:F2:58:0C:BE:47:19:A6:3D:81:C4';

/** A healthy member `clusterN` of the test bed. */
export function memberCluster(n: number, peers: string[]): MeshClusterStatus {
  return {
    name: `cluster${n}`,
    member: true,
    network: `network${n}`,
    region: `region${n}`,
    zone: `region${n}-a`,
    istiod: {
      installed: true,
      ready: true,
      version: '1.27.3',
      replicas: { ready: 1, desired: 1 },
    },
    gateway: {
      address: `100.64.0.${10 + n}`,
      hostname: `cluster${n}-eastwest.tailmesh-test.ts.net`,
      ready: true,
    },
    operator: { installed: true, ready: true },
    rootFingerprint: ROOT_FINGERPRINT,
    meshId: 'mesh1',
    knownPeers: peers,
    sync: {
      state: 'ok',
      lastSyncAt: new Date(Date.now() - 3000).toISOString(),
    },
  };
}

/** A configured cluster that has not joined and that the backend cannot read. */
export function unreachableNonMember(n: number): MeshClusterStatus {
  return {
    name: `cluster${n}`,
    member: false,
    network: '',
    region: '',
    zone: '',
    istiod: {
      installed: false,
      ready: false,
      replicas: { ready: 0, desired: 0 },
    },
    gateway: { ready: false },
    operator: { installed: false, ready: false },
    knownPeers: [],
    sync: {
      state: 'error',
      error: {
        kind: 'connection-refused',
        message: `cluster${n}: cannot connect to https://127.0.0.1:3101${n} (ECONNREFUSED); is the API server up?`,
      },
    },
  };
}

/** Three members that agree on everything, plus a fourth configured cluster that is down. */
export function healthyClusters(): ClustersResponse {
  return {
    clusters: [
      memberCluster(1, ['cluster2', 'cluster3']),
      memberCluster(2, ['cluster1', 'cluster3']),
      memberCluster(3, ['cluster1', 'cluster2']),
      unreachableNonMember(4),
    ],
    generatedAt: GENERATED_AT,
  };
}

function cell(
  from: string,
  to: string,
  overrides: Partial<MembershipCell> = {},
): MembershipCell {
  const self = from === to;
  return {
    from,
    to,
    remoteSecret: self ? 'not-applicable' : 'present',
    gatewayInMeshNetworks: self ? 'not-applicable' : 'present',
    istiodSync: self ? 'not-applicable' : 'synced',
    ...overrides,
  };
}

/**
 * Membership of three members; `overrides` replaces cells by `from→to`, e.g.
 * `{ 'cluster2→cluster3': { remoteSecret: 'missing' } }`.
 */
export function membership(
  overrides: Record<string, Partial<MembershipCell>> = {},
  findings: AuditFinding[] = [],
): MembershipResponse {
  const clusters = ['cluster1', 'cluster2', 'cluster3'];
  return {
    clusters,
    matrix: clusters.map(from =>
      clusters.map(to => cell(from, to, overrides[`${from}→${to}`])),
    ),
    findings,
    generatedAt: GENERATED_AT,
  };
}

export const oneWaySecretFinding: AuditFinding = {
  id: 'one-way-remote-secret:cluster2,cluster3',
  kind: 'one-way-remote-secret',
  severity: 'error',
  clusters: ['cluster2', 'cluster3'],
  message:
    'cluster3 holds a remote secret for cluster2, but cluster2 has none for cluster3.',
  fix: 'Run mesh:istio:create-remote-secrets for cluster2 with peer cluster3.',
};

export const wrongAddressFinding: AuditFinding = {
  id: 'mesh-networks-wrong-address:cluster1,cluster3',
  kind: 'mesh-networks-wrong-address',
  severity: 'warning',
  clusters: ['cluster1', 'cluster3'],
  message:
    "cluster1's meshNetworks routes network3 to 100.64.0.99, but cluster3's gateway is at 100.64.0.13.",
  fix: 'Run mesh:istio:configure-networks so every member has the current gateway addresses.',
};

export const grantFinding: AuditFinding = {
  id: 'grant-too-broad',
  kind: 'grant-too-broad',
  severity: 'info',
  clusters: [],
  message: 'The tailnet policy grants system:masters to tag:k8s-operator.',
  fix: 'Run mesh:tailscale:grant-access to narrow the grant to tailmesh:istio-remote-readers.',
};

/** `default/echo`: served by cluster1 and cluster2, not deployed in cluster3, cluster4 down. */
export function echoServedByTwoOfThree(): ServiceStatusResponse {
  return {
    namespace: 'default',
    name: 'echo',
    clusters: [
      {
        cluster: 'cluster1',
        reachable: true,
        serving: true,
        endpoints: { ready: 3, notReady: 1 },
        zones: [
          { region: 'region1', zone: 'region1-a', ready: 2, notReady: 0 },
          { region: 'region1', zone: 'region1-b', ready: 1, notReady: 1 },
        ],
        network: 'network1',
      },
      {
        cluster: 'cluster2',
        reachable: true,
        serving: true,
        endpoints: { ready: 2, notReady: 0 },
        zones: [
          { region: 'region2', zone: 'region2-a', ready: 2, notReady: 0 },
        ],
        network: 'network2',
      },
      {
        cluster: 'cluster3',
        reachable: false,
        error: {
          kind: 'timeout',
          message: 'cluster3: https://127.0.0.1:31013 did not answer in time',
        },
        serving: false,
        endpoints: { ready: 0, notReady: 0 },
        zones: [],
        network: 'network3',
      },
    ],
    routes: [
      {
        fromCluster: 'cluster1',
        via: 'local',
        destinations: [
          { cluster: 'cluster1', via: 'local', endpoints: 3 },
          {
            cluster: 'cluster2',
            via: 'gateway',
            address: 'cluster2-istio-eastwestgateway.tail1234.ts.net',
            endpoints: 2,
          },
        ],
      },
      {
        fromCluster: 'cluster2',
        via: 'local',
        destinations: [{ cluster: 'cluster2', via: 'local', endpoints: 2 }],
      },
      {
        fromCluster: 'cluster3',
        via: 'gateway',
        gateway: {
          cluster: 'cluster1',
          address: 'cluster1-istio-eastwestgateway.tail1234.ts.net',
        },
        destinations: [
          {
            cluster: 'cluster1',
            via: 'gateway',
            address: 'cluster1-istio-eastwestgateway.tail1234.ts.net',
            endpoints: 3,
          },
        ],
      },
    ],
    summary: {
      servingClusters: 2,
      totalClusters: 3,
      readyEndpoints: 5,
      totalEndpoints: 6,
    },
  };
}

/** `default/echo` exists nowhere with a ready endpoint. */
export function echoServedNowhere(): ServiceStatusResponse {
  return {
    namespace: 'default',
    name: 'echo',
    clusters: ['cluster1', 'cluster2'].map((cluster, i) => ({
      cluster,
      reachable: true,
      serving: false,
      endpoints: { ready: 0, notReady: i },
      zones: [],
      network: `network${i + 1}`,
    })),
    routes: [
      { fromCluster: 'cluster1', via: 'unreachable', destinations: [] },
      { fromCluster: 'cluster2', via: 'unreachable', destinations: [] },
    ],
    summary: {
      servingClusters: 0,
      totalClusters: 2,
      readyEndpoints: 0,
      totalEndpoints: 1,
    },
  };
}

export function historyPage(
  events: HistoryResponse['events'],
  nextCursor?: string,
): HistoryResponse {
  return nextCursor ? { events, nextCursor } : { events };
}

/** A MeshApi whose every method fails until a test gives it an answer. */
export function fakeMeshApi(
  overrides: Partial<MeshApi> = {},
): jest.Mocked<MeshApi> {
  const notStubbed = (method: string) =>
    jest.fn(() => Promise.reject(new Error(`${method} not stubbed`)));
  return {
    getClusters: notStubbed('getClusters'),
    getMembership: notStubbed('getMembership'),
    getServiceStatus: notStubbed('getServiceStatus'),
    getEntityStatus: notStubbed('getEntityStatus'),
    getHistory: notStubbed('getHistory'),
    ...overrides,
  } as jest.Mocked<MeshApi>;
}

/** The `echo` Component of the example catalog, with the given annotations. */
export function serviceEntity(annotations: Record<string, string>): Entity {
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'echo', namespace: 'default', annotations },
    spec: { type: 'service', owner: 'team-a', lifecycle: 'production' },
  };
}

/**
 * A mesh of `size` members that all reach each other, except the links named in `broken`
 * ("cluster7→cluster42": missing remote secret).
 */
export function largeMesh(
  size: number,
  broken: string[] = [],
): { clusters: ClustersResponse; membership: MembershipResponse } {
  const names = Array.from({ length: size }, (_, i) => `cluster${i + 1}`);
  const overrides: Record<string, Partial<MembershipCell>> = {};
  for (const link of broken) overrides[link] = { remoteSecret: 'missing' };
  return {
    clusters: {
      clusters: names.map((name, i) =>
        memberCluster(
          i + 1,
          names.filter(n => n !== name),
        ),
      ),
      generatedAt: GENERATED_AT,
    },
    membership: {
      clusters: names,
      matrix: names.map(from =>
        names.map(to => cell(from, to, overrides[`${from}→${to}`])),
      ),
      findings: [],
      generatedAt: GENERATED_AT,
    },
  };
}
