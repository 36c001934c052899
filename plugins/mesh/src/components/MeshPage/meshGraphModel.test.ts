import {
  healthyClusters,
  memberCluster,
  membership,
  unreachableNonMember,
} from '../../testUtils/meshFixtures';
import { buildMeshGraph } from './meshGraphModel';

describe('buildMeshGraph', () => {
  it('has a node per configured cluster and an ok link per pair of members', () => {
    const graph = buildMeshGraph(healthyClusters().clusters, membership());
    expect(
      graph.nodes.map(({ id, member, unreachable }) => ({
        id,
        member,
        unreachable,
      })),
    ).toEqual([
      { id: 'cluster1', member: true, unreachable: false },
      { id: 'cluster2', member: true, unreachable: false },
      { id: 'cluster3', member: true, unreachable: false },
      { id: 'cluster4', member: false, unreachable: true },
    ]);
    expect(graph.edges).toEqual([
      { from: 'cluster1', to: 'cluster2', status: 'ok', problems: [] },
      { from: 'cluster1', to: 'cluster3', status: 'ok', problems: [] },
      { from: 'cluster2', to: 'cluster3', status: 'ok', problems: [] },
    ]);
  });

  it('combines both directions of a link, the worse one winning', () => {
    const graph = buildMeshGraph(
      healthyClusters().clusters,
      membership({
        'cluster3→cluster1': { remoteSecret: 'missing' },
        'cluster1→cluster3': { gatewayInMeshNetworks: 'wrong-address' },
      }),
    );
    const link = graph.edges.find(
      e => e.from === 'cluster1' && e.to === 'cluster3',
    );
    expect(link).toEqual({
      from: 'cluster1',
      to: 'cluster3',
      status: 'broken',
      problems: ['cluster1 → cluster3 broken', 'cluster3 → cluster1 missing'],
    });
  });

  it('adds a broken link for a remote secret a member holds for a non-member', () => {
    const clusters = [
      memberCluster(1, ['cluster2', 'cluster4']),
      memberCluster(2, ['cluster1']),
      unreachableNonMember(4),
    ];
    const members = membership();
    members.clusters = ['cluster1', 'cluster2'];
    members.matrix = members.matrix.slice(0, 2).map(row => row.slice(0, 2));
    const graph = buildMeshGraph(clusters, members);
    expect(graph.edges).toContainEqual({
      from: 'cluster1',
      to: 'cluster4',
      status: 'broken',
      problems: ['cluster1 holds a remote secret for non-member cluster4'],
    });
    expect(graph.edges).toHaveLength(2);
  });
});
