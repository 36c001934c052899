import { DependencyGraphTypes } from '@backstage/core-components';
import {
  MembershipResponse,
  MeshClusterStatus,
} from '@tailmesh/plugin-mesh-common';
import { membershipCellState } from './membershipCells';

/** A cluster in the mesh graph. */
export interface MeshGraphNodeData {
  member: boolean;
  /** The backend cannot read the cluster right now; what it shows is the last known state. */
  unreachable: boolean;
  network: string;
}

/** Worst state of a link: `ok` both ways, else what is wrong in at least one direction. */
export type MeshLinkStatus = 'ok' | 'missing' | 'broken';

/** A link between two clusters in the mesh graph. */
export interface MeshGraphEdgeData {
  status: MeshLinkStatus;
  /** Every problem on the link, one per direction or stale secret; empty when `ok`. */
  problems: string[];
}

export interface MeshGraph {
  nodes: DependencyGraphTypes.DependencyNode<MeshGraphNodeData>[];
  edges: DependencyGraphTypes.DependencyEdge<MeshGraphEdgeData>[];
  /**
   * Set when the mesh is too large to draw whole: what was left out. Only the links with a
   * problem and their clusters are drawn; with more such links than `maxEdges`, nothing is.
   */
  omitted?: {
    clusters: number;
    healthyLinks: number;
    /** Links with a problem not drawn because there are too many of them. */
    problemLinks: number;
  };
}

/** Sizes above which the graph is reduced (dagre lays out N x N edges; at 100 that freezes). */
export interface MeshGraphLimits {
  /** Clusters drawn with every link. */
  maxClusters: number;
  /** Links with a problem drawn when the mesh is larger than that. */
  maxEdges: number;
}

export const DEFAULT_MESH_GRAPH_LIMITS: MeshGraphLimits = {
  maxClusters: 12,
  maxEdges: 60,
};

const STATUS_ORDER: MeshLinkStatus[] = ['ok', 'missing', 'broken'];

function worse(a: MeshLinkStatus, b: MeshLinkStatus): MeshLinkStatus {
  return STATUS_ORDER.indexOf(a) >= STATUS_ORDER.indexOf(b) ? a : b;
}

/**
 * The mesh as a graph: every configured cluster is a node; every pair of members is one edge
 * (its two directions combined, marked when either is missing or broken); a member still holding
 * a remote secret for a cluster that is not a member adds a broken edge to it.
 */
export function buildMeshGraph(
  clusters: ReadonlyArray<MeshClusterStatus>,
  membership: MembershipResponse,
  limits: MeshGraphLimits = DEFAULT_MESH_GRAPH_LIMITS,
): MeshGraph {
  const byName = new Map(clusters.map(cluster => [cluster.name, cluster]));
  const nodes = clusters.map(cluster => ({
    id: cluster.name,
    member: cluster.member,
    unreachable: cluster.sync.state === 'error',
    network: cluster.network,
  }));
  const edges: DependencyGraphTypes.DependencyEdge<MeshGraphEdgeData>[] = [];
  const members = membership.clusters;
  for (let i = 0; i < members.length; i++) {
    for (let j = i + 1; j < members.length; j++) {
      let status: MeshLinkStatus = 'ok';
      const problems: string[] = [];
      for (const cell of [
        membership.matrix[i]?.[j],
        membership.matrix[j]?.[i],
      ]) {
        if (!cell) continue;
        const state = membershipCellState(cell);
        if (state === 'missing' || state === 'broken') {
          status = worse(status, state);
          problems.push(`${cell.from} → ${cell.to} ${state}`);
        }
      }
      edges.push({ from: members[i], to: members[j], status, problems });
    }
  }
  for (const cluster of clusters) {
    if (!cluster.member) continue;
    for (const peer of cluster.knownPeers) {
      if (byName.get(peer)?.member === false) {
        edges.push({
          from: cluster.name,
          to: peer,
          status: 'broken',
          problems: [
            `${cluster.name} holds a remote secret for non-member ${peer}`,
          ],
        });
      }
    }
  }
  if (nodes.length <= limits.maxClusters) return { nodes, edges };
  // Too large to draw whole: the links with a problem, and the clusters they join.
  const problems = edges.filter(e => e.status !== 'ok');
  const healthyLinks = edges.length - problems.length;
  if (problems.length > limits.maxEdges) {
    return {
      nodes: [],
      edges: [],
      omitted: {
        clusters: nodes.length,
        healthyLinks,
        problemLinks: problems.length,
      },
    };
  }
  const involved = new Set(problems.flatMap(e => [e.from, e.to]));
  const shown = nodes.filter(n => involved.has(n.id));
  return {
    nodes: shown,
    edges: problems,
    omitted: {
      clusters: nodes.length - shown.length,
      healthyLinks,
      problemLinks: 0,
    },
  };
}
