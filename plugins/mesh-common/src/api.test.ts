import {
  AUDIT_FINDING_KINDS,
  AUDIT_SEVERITIES,
  CLUSTER_ERROR_KINDS,
  ClustersResponse,
  MembershipResponse,
  ServiceStatusResponse,
} from './api';

describe('API vocabulary', () => {
  it.each([
    ['cluster error kinds', CLUSTER_ERROR_KINDS],
    ['audit finding kinds', AUDIT_FINDING_KINDS],
    ['severities', AUDIT_SEVERITIES],
  ])('has no duplicate %s', (_, values) => {
    expect(new Set(values).size).toBe(values.length);
  });

  it('lists severities from the most severe', () => {
    expect(AUDIT_SEVERITIES).toEqual(['error', 'warning', 'info']);
  });

  // The responses travel as JSON: a value of each type must survive the round trip unchanged
  // (no Dates, Maps or undefined-bearing arrays sneaking into the contract).
  it('keeps responses JSON-safe', () => {
    const clusters: ClustersResponse = {
      generatedAt: '2025-01-01T00:00:00.000Z',
      clusters: [
        {
          name: 'cluster1',
          member: true,
          network: 'cluster1',
          region: 'eu',
          zone: 'eu-1',
          istiod: {
            installed: true,
            ready: true,
            version: '1.24.0',
            replicas: { ready: 1, desired: 1 },
          },
          gateway: {
            address: '100.64.0.1',
            hostname: 'gw.ts.net',
            ready: true,
          },
          operator: { installed: true, ready: true },
          rootFingerprint: Array(32).fill('AB').join(':'),
          meshId: 'mesh1',
          knownPeers: ['cluster2'],
          sync: { state: 'ok', lastSyncAt: '2025-01-01T00:00:00.000Z' },
        },
      ],
    };
    const membership: MembershipResponse = {
      clusters: ['cluster1'],
      matrix: [
        [
          {
            from: 'cluster1',
            to: 'cluster1',
            remoteSecret: 'not-applicable',
            gatewayInMeshNetworks: 'not-applicable',
            istiodSync: 'not-applicable',
          },
        ],
      ],
      findings: [],
      generatedAt: '2025-01-01T00:00:00.000Z',
    };
    const service: ServiceStatusResponse = {
      namespace: 'default',
      name: 'echo',
      clusters: [],
      routes: [
        {
          fromCluster: 'cluster1',
          via: 'gateway',
          gateway: { cluster: 'cluster2', address: '100.64.0.2' },
          destinations: [
            {
              cluster: 'cluster2',
              via: 'gateway',
              address: '100.64.0.2',
              endpoints: 2,
            },
          ],
        },
      ],
      summary: {
        servingClusters: 0,
        totalClusters: 0,
        readyEndpoints: 0,
        totalEndpoints: 0,
      },
    };
    for (const response of [clusters, membership, service]) {
      expect(JSON.parse(JSON.stringify(response))).toEqual(response);
    }
  });
});
