import { ServiceEndpointsInCluster } from './api';
import { formatServiceSummary, summarizeService } from './serviceSummary';

function cluster(
  name: string,
  ready: number,
  notReady: number,
  reachable = true,
): ServiceEndpointsInCluster {
  return {
    cluster: name,
    reachable,
    serving: reachable && ready > 0,
    endpoints: { ready, notReady },
    zones: [],
    network: name,
    ...(reachable ? {} : { error: { kind: 'timeout', message: 'timed out' } }),
  };
}

describe('summarizeService', () => {
  it('counts serving clusters and endpoints', () => {
    expect(
      summarizeService([
        cluster('a', 3, 0),
        cluster('b', 2, 1),
        cluster('c', 0, 0),
      ]),
    ).toEqual({
      summary: {
        servingClusters: 2,
        totalClusters: 3,
        readyEndpoints: 5,
        totalEndpoints: 6,
      },
      text: 'served by 2 of 3 clusters, 5/6 endpoints ready',
    });
  });

  it('does not count what an unreachable cluster reported', () => {
    const unreachable = { ...cluster('b', 4, 4, false), serving: true };
    expect(summarizeService([cluster('a', 1, 0), unreachable]).summary).toEqual(
      {
        servingClusters: 1,
        totalClusters: 2,
        readyEndpoints: 1,
        totalEndpoints: 1,
      },
    );
  });

  it('counts a cluster with only unready endpoints as not serving', () => {
    expect(summarizeService([cluster('a', 0, 2)]).text).toBe(
      'served by 0 of 1 cluster, 0/2 endpoints ready',
    );
  });

  it('handles no clusters', () => {
    expect(summarizeService([]).text).toBe(
      'served by 0 of 0 clusters, 0/0 endpoints ready',
    );
  });
});

describe('formatServiceSummary', () => {
  it('uses the singular for one', () => {
    expect(
      formatServiceSummary({
        servingClusters: 1,
        totalClusters: 1,
        readyEndpoints: 1,
        totalEndpoints: 1,
      }),
    ).toBe('served by 1 of 1 cluster, 1/1 endpoint ready');
  });
});
