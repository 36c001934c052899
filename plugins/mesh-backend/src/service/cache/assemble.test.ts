import { ClusterSyncHealth } from '@tailmesh/plugin-mesh-common';
import {
  ClusterProjections,
  assembleServiceEndpoints,
  assembleSnapshot,
  zoneRegions,
} from './assemble';

const ok: ClusterSyncHealth = {
  state: 'ok',
  lastSyncAt: '2026-01-01T00:00:00.000Z',
};
const down: ClusterSyncHealth = {
  state: 'error',
  lastSyncAt: '2026-01-01T00:00:00.000Z',
  error: { kind: 'connection-refused', message: 'c1: cannot connect' },
};

const member: ClusterProjections = {
  cluster: 'c1',
  health: ok,
  namespace: { network: 'network1', meshId: 'mesh1' },
  istiod: {
    ready: false,
    version: '1.27.3',
    replicas: { ready: 1, desired: 2 },
  },
  operator: { ready: true, replicas: { ready: 1, desired: 1 } },
  gateway: {
    namespace: 'istio-system',
    name: 'istio-eastwestgateway',
    ingress: { hostname: 'c1-istio-eastwestgateway.tail.ts.net' },
  },
  egress: [
    {
      namespace: 'tailscale',
      name: 'c3-k8s-operator',
      egress: { peer: 'c3', ready: false },
    },
    {
      namespace: 'tailscale',
      name: 'c2-k8s-operator',
      egress: { peer: 'c2', to: 'api-server-proxy', ready: true },
    },
    {
      namespace: 'tailscale',
      name: 'c2-istio-eastwestgateway',
      egress: { peer: 'c2', to: 'east-west-gateway', ready: false },
    },
    { namespace: 'tailscale', name: 'unrelated' },
  ],
  remoteSecrets: [{ cluster: 'c3' }, { cluster: undefined }, { cluster: 'c2' }],
  meshConfig: { meshNetworks: { networks: {} } },
  rootFingerprint: 'AA:BB',
  coreDns: { tailnetStanza: true },
  tailnetChecked: true,
};

describe('assembleSnapshot', () => {
  it('builds the snapshot readClusterSnapshot would read', () => {
    expect(assembleSnapshot(member)).toEqual({
      cluster: 'c1',
      network: 'network1',
      meshId: 'mesh1',
      istiod: {
        ready: false,
        version: '1.27.3',
        replicas: { ready: 1, desired: 2 },
      },
      operator: { ready: true },
      gateway: {
        hostname: 'c1-istio-eastwestgateway.tail.ts.net',
        ip: undefined,
      },
      rootFingerprint: 'AA:BB',
      remoteSecretsFor: ['c2', 'c3'],
      egressFor: [
        { peer: 'c2', to: 'api-server-proxy', ready: true },
        { peer: 'c2', to: 'east-west-gateway', ready: false },
        { peer: 'c3', ready: false },
      ],
      meshNetworks: { networks: {} },
      tailnetDns: true,
    });
  });

  it("says who besides istiod can reach each API server proxy's egress pods, by the watched NetworkPolicies", () => {
    const withUid: ClusterProjections = {
      ...member,
      egress: [
        {
          namespace: 'tailscale',
          name: 'c2-k8s-operator',
          egress: {
            peer: 'c2',
            to: 'api-server-proxy',
            ready: true,
            uid: 'u2',
          },
        },
        {
          namespace: 'tailscale',
          name: 'c2-istio-eastwestgateway',
          egress: {
            peer: 'c2',
            to: 'east-west-gateway',
            ready: true,
            uid: 'g2',
          },
        },
      ],
    };
    const istiodOnly = {
      name: 'c2-k8s-operator-istiod-only',
      podSelector: { matchLabels: { app: 'u2' } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            {
              namespaceSelector: {
                matchLabels: { 'kubernetes.io/metadata.name': 'istio-system' },
              },
              podSelector: { matchLabels: { app: 'istiod' } },
            },
          ],
        },
      ],
    };
    const egressFor = (egressPolicies?: ClusterProjections['egressPolicies']) =>
      assembleSnapshot({ ...withUid, egressPolicies }).egressFor;
    expect(egressFor([])).toEqual([
      {
        peer: 'c2',
        to: 'api-server-proxy',
        ready: true,
        openToPods: 'no NetworkPolicy selects its proxy pods',
      },
      { peer: 'c2', to: 'east-west-gateway', ready: true },
    ]);
    expect(egressFor([istiodOnly])[0]).not.toHaveProperty('openToPods');
    // Not watched: nothing is concluded.
    expect(egressFor(undefined)[0]).not.toHaveProperty('openToPods');
  });

  it('leaves out what is not installed, and does not judge CoreDNS without a tailnet', () => {
    expect(
      assembleSnapshot({
        cluster: 'c2',
        health: ok,
        egress: [],
        remoteSecrets: [],
        tailnetChecked: false,
      }),
    ).toEqual({
      cluster: 'c2',
      remoteSecretsFor: [],
      egressFor: [],
    });
    expect(
      assembleSnapshot({
        cluster: 'c2',
        health: ok,
        egress: [],
        remoteSecrets: [],
        tailnetChecked: true,
      }).tailnetDns,
    ).toBeUndefined();
  });

  it('carries the error, and the last known values, while the cluster is not ok', () => {
    expect(assembleSnapshot({ ...member, health: down })).toMatchObject({
      error: down.error,
      network: 'network1',
    });
    expect(
      assembleSnapshot({ ...member, health: { state: 'syncing' } }).error,
    ).toEqual({
      kind: 'unknown',
      message: 'c1: not synchronised yet',
    });
  });
});

describe('assembleServiceEndpoints', () => {
  const regions = zoneRegions([
    { region: 'r1', zone: 'r1-a' },
    { region: 'r1', zone: 'r1-b' },
    { zone: 'lonely' },
  ]);
  const slices = [
    {
      namespace: 'shop',
      service: 'web',
      addressType: 'IPv4',
      zones: [
        { zone: 'r1-b', ready: 1, notReady: 1 },
        { zone: 'r1-a', ready: 2, notReady: 0 },
      ],
    },
    {
      namespace: 'shop',
      service: 'web',
      addressType: 'IPv4',
      zones: [{ zone: 'r1-a', ready: 1, notReady: 0 }],
    },
    {
      namespace: 'shop',
      service: 'web',
      addressType: 'IPv6',
      zones: [{ zone: 'r1-a', ready: 3, notReady: 0 }],
    },
  ];

  it("sums the slices of one address family per zone, with the zones' regions", () => {
    expect(
      assembleServiceEndpoints({
        cluster: 'c1',
        health: ok,
        serviceExists: true,
        slices,
        regions,
        network: 'network1',
      }),
    ).toEqual({
      cluster: 'c1',
      reachable: true,
      serving: true,
      endpoints: { ready: 4, notReady: 1 },
      zones: [
        { zone: 'r1-a', region: 'r1', ready: 3, notReady: 0 },
        { zone: 'r1-b', region: 'r1', ready: 1, notReady: 1 },
      ],
      network: 'network1',
    });
  });

  it('says not serving when the Service is missing or has no ready endpoint', () => {
    const notReady = assembleServiceEndpoints({
      cluster: 'c1',
      health: ok,
      serviceExists: true,
      slices: [
        {
          namespace: 'shop',
          service: 'web',
          addressType: 'IPv4',
          zones: [{ zone: 'lonely', ready: 0, notReady: 2 }],
        },
      ],
      regions,
      network: 'network1',
    });
    expect(notReady).toMatchObject({
      serving: false,
      endpoints: { ready: 0, notReady: 2 },
      zones: [{ zone: 'lonely', region: '', ready: 0, notReady: 2 }],
    });
    expect(
      assembleServiceEndpoints({
        cluster: 'c1',
        health: ok,
        serviceExists: false,
        slices: [],
        regions,
        network: '',
      }),
    ).toMatchObject({
      serving: false,
      endpoints: { ready: 0, notReady: 0 },
      zones: [],
    });
  });

  it('marks an unreachable cluster with its error', () => {
    expect(
      assembleServiceEndpoints({
        cluster: 'c1',
        health: down,
        serviceExists: true,
        slices,
        regions,
        network: 'network1',
      }),
    ).toMatchObject({ reachable: false, error: down.error });
  });
});
