import {
  healthyClusters,
  largeMesh,
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

describe('buildMeshGraph for a mesh too large to draw whole', () => {
  it('draws only the links with a problem and the clusters they join', () => {
    const mesh = largeMesh(100, [
      'cluster7→cluster42',
      'cluster42→cluster7',
      'cluster3→cluster9',
    ]);
    const graph = buildMeshGraph(mesh.clusters.clusters, mesh.membership);
    expect(graph.edges.map(e => `${e.from}-${e.to} ${e.status}`)).toEqual([
      'cluster3-cluster9 missing',
      'cluster7-cluster42 missing',
    ]);
    expect(graph.nodes.map(n => n.id)).toEqual([
      'cluster3',
      'cluster7',
      'cluster9',
      'cluster42',
    ]);
    expect(graph.omitted).toEqual({
      clusters: 96,
      healthyLinks: (100 * 99) / 2 - 2,
      problemLinks: 0,
    });
  });

  it('draws nothing when every link is healthy, or when too many have a problem', () => {
    const healthy = largeMesh(20);
    expect(
      buildMeshGraph(healthy.clusters.clusters, healthy.membership),
    ).toMatchObject({ nodes: [], edges: [], omitted: { problemLinks: 0 } });
    const broken = largeMesh(
      20,
      Array.from({ length: 19 }, (_, i) => `cluster1→cluster${i + 2}`),
    );
    expect(
      buildMeshGraph(broken.clusters.clusters, broken.membership, {
        maxClusters: 12,
        maxEdges: 10,
      }),
    ).toMatchObject({
      nodes: [],
      edges: [],
      omitted: { clusters: 20, healthyLinks: 190 - 19, problemLinks: 19 },
    });
  });

  it('draws a mesh of up to maxClusters whole', () => {
    const mesh = largeMesh(12);
    const graph = buildMeshGraph(mesh.clusters.clusters, mesh.membership);
    expect(graph.nodes).toHaveLength(12);
    expect(graph.edges).toHaveLength(66);
    expect(graph.omitted).toBeUndefined();
  });
});
