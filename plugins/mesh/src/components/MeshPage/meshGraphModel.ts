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
}

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
  return { nodes, edges };
}
