import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  MeshClusterSnapshot,
  isMeshMember,
  validateClusterName,
} from '@tailmesh/plugin-mesh-common';
import {
  MeshActionDeps,
  readConfiguredSnapshots,
} from '../../service/MeshActionDeps';
import { checkInputs, clusterInput } from '../inputs';
import { examples } from './listMembers.examples';

/** @public */
export const MESH_MEMBERS_ACTION_ID = 'mesh:members';

export interface UnreachableCluster {
  cluster: string;
  error: string;
}

export interface MeshMembership {
  members: string[];
  nonMembers: string[];
  unreachable: UnreachableCluster[];
}

/**
 * Sorts snapshots into members, readable non-members and unreadable clusters. An unreadable
 * cluster is neither: it may well be a member, and wiring a cluster to a list without it would
 * leave the mesh half-joined.
 */
export function classifyClusters(
  snapshots: ReadonlyArray<MeshClusterSnapshot>,
): MeshMembership {
  // sort() without a comparator orders by code units, not locale: the same on every server.
  // Cluster names are unique, so the unreachable ones need no tie-break either.
  return {
    members: snapshots
      .filter(isMeshMember)
      .map(s => s.cluster)
      .sort(),
    nonMembers: snapshots
      .filter(s => !s.error && !isMeshMember(s))
      .map(s => s.cluster)
      .sort(),
    unreachable: snapshots
      .flatMap(s =>
        s.error ? [{ cluster: s.cluster, error: s.error.message }] : [],
      )
      .sort((a, b) => (a.cluster < b.cluster ? -1 : 1)),
  };
}

/**
 * The first step of a join: who is in the mesh now, read from every configured cluster, so the
 * wiring steps get the full peer list instead of one typed into a form.
 *
 * @public
 */
export function createMeshMembersAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: MESH_MEMBERS_ACTION_ID,
    description:
      'Reads every cluster in mesh.clusters and lists the mesh members (as the mesh page judges them: istiod installed, istio-system labelled by mesh:istio:install), the readable non-members and the clusters that could not be read. Fails when a cluster cannot be read, unless failOnUnreachable is false. Writes nothing.',
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        exclude: z =>
          clusterInput(
            z,
            'A configured cluster to leave out of every list and not read, typically the one joining or leaving',
          ).optional(),
        failOnUnreachable: z =>
          z
            .boolean()
            .default(true)
            .describe(
              'Fail when a cluster cannot be read (default true): its membership is unknown, and a peer list without it would wire the mesh only partly',
            ),
      },
      output: {
        members: z =>
          z
            .array(z.string())
            .describe('Names of the mesh members, sorted; without exclude'),
        nonMembers: z =>
          z
            .array(z.string())
            .describe(
              'Names of the readable clusters that are not members, sorted; without exclude',
            ),
        unreachable: z =>
          z
            .array(
              z.object({
                cluster: z.string().describe('Name of the cluster'),
                error: z.string().describe('Why it could not be read'),
              }),
            )
            .describe('Clusters that could not be read, with the reason'),
      },
    },
    async handler(ctx) {
      const { exclude } = ctx.input;
      // The scaffolder does not fill in schema defaults.
      const failOnUnreachable = ctx.input.failOnUnreachable ?? true;
      checkInputs(ctx.input, { exclude: validateClusterName });
      // A misspelt exclude would silently keep the joining cluster among its own peers.
      if (exclude !== undefined) deps.clusters.get(exclude);

      const snapshots = await readConfiguredSnapshots(deps, exclude);
      const { members, nonMembers, unreachable } = classifyClusters(snapshots);

      ctx.logger.info(
        `mesh members: ${members.join(', ') || 'none'}; not members: ${nonMembers.join(', ') || 'none'}${exclude ? ` (${exclude} left out)` : ''}`,
      );
      for (const u of unreachable) ctx.logger.warn(`unreadable: ${u.error}`);
      ctx.output('members', members);
      ctx.output('nonMembers', nonMembers);
      ctx.output('unreachable', unreachable);
      if (unreachable.length && failOnUnreachable) {
        throw new Error(
          `Cannot tell who the mesh members are: ${unreachable.map(u => u.cluster).join(', ')} could not be read (${unreachable.map(u => u.error).join('; ')}). Fix access to ${unreachable.length > 1 ? 'them' : 'it'}, or set failOnUnreachable: false to go on without ${unreachable.length > 1 ? 'them' : 'it'}.`,
        );
      }
    },
  });
}
