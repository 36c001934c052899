import {
  grantFinding,
  healthyClusters,
  membership,
  memberCluster,
  oneWaySecretFinding,
  wrongAddressFinding,
} from '../../testUtils/meshFixtures';
import { meshHealth } from './meshHealth';

describe('meshHealth', () => {
  const members = () => healthyClusters().clusters.filter(c => c.member);

  it('is healthy with every member readable and no error or warning', () => {
    expect(meshHealth(members(), membership())).toEqual({
      severity: 'ok',
      headline:
        'The mesh is healthy: 3 members, every cluster readable, no error or warning',
      clusters: [],
    });
  });

  it('warns about a configured cluster that cannot be read, naming it', () => {
    expect(meshHealth(healthyClusters().clusters, membership())).toEqual({
      severity: 'warning',
      headline: 'The mesh works, with warnings: 1 cluster cannot be read',
      clusters: ['cluster4'],
    });
  });

  it('counts error and warning findings and names their clusters; info findings do not count', () => {
    expect(grantFinding.severity).toBe('info');
    expect(
      meshHealth(
        members(),
        membership({}, [
          oneWaySecretFinding,
          wrongAddressFinding,
          grantFinding,
        ]),
      ),
    ).toEqual({
      severity: 'error',
      headline: 'The mesh needs attention: 1 error, 1 warning',
      clusters: [
        ...new Set([
          ...oneWaySecretFinding.clusters,
          ...wrongAddressFinding.clusters,
        ]),
      ].sort(),
    });
  });

  it('makes an unreadable member an error', () => {
    const down = {
      ...memberCluster(2, ['cluster1']),
      sync: {
        state: 'error' as const,
        error: { kind: 'timeout' as const, message: 'cluster2: timed out' },
      },
    };
    const health = meshHealth(
      [memberCluster(1, ['cluster2']), down],
      membership(),
    );
    expect(health).toEqual({
      severity: 'error',
      headline: 'The mesh needs attention: 1 cluster cannot be read (1 member)',
      clusters: ['cluster2'],
    });
  });
});
