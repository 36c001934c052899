import {
  coreServices,
  createServiceFactory,
  createServiceRef,
} from '@backstage/backend-plugin-api';
import { Config } from '@backstage/config';
import { InputError } from '@backstage/errors';
import { ClusterAccess } from './ClusterAccess';
import {
  MeshClusterConnection,
  connectionProblems,
  readClusterConfig,
} from './readClusterConfig';
import { readClusterRequestTimeoutMs } from './requestTimeout';

/**
 * Where the clusters Tailmesh manages come from, with how to reach each. The default reads
 * `mesh.clusters` (and, with `mesh.useKubernetesPluginClusters`, the Kubernetes plugin's `config`
 * clusters); a host that keeps its clusters elsewhere (a cluster registry, a cloud API) supplies
 * its own, as `@backstage/plugin-kubernetes-node`'s `KubernetesClustersSupplier` does for the
 * Kubernetes plugin.
 *
 * @public
 */
export interface MeshClustersSupplier {
  /** Every cluster, each with a DNS-1123 name unique among them; read when the backend starts. */
  getClusters(): Promise<MeshClusterConnection[]>;
  /** Where the clusters come from, as errors name it (e.g. "mesh.clusters"). */
  readonly source?: string;
}

/**
 * The default supplier: the clusters of the configuration.
 *
 * @public
 */
export function configMeshClustersSupplier(
  config: Config,
): MeshClustersSupplier {
  return {
    getClusters: async () => readClusterConfig(config),
    source: 'mesh.clusters',
  };
}

/**
 * The one supplier of clusters that the mesh backend plugin and the scaffolder module both use,
 * so both see the same clusters. It is a root service, not a plugin extension point: an
 * extension point belongs to one plugin (`mesh`), and the actions run in another (`scaffolder`).
 * Replace it with a service factory of your own:
 *
 * ```ts
 * backend.add(
 *   createServiceFactory({
 *     service: meshClustersSupplierServiceRef,
 *     deps: {},
 *     factory: () => ({ getClusters: async () => myRegistry.meshClusters() }),
 *   }),
 * );
 * ```
 *
 * @public
 */
export const meshClustersSupplierServiceRef =
  createServiceRef<MeshClustersSupplier>({
    id: 'tailmesh.mesh.clusters-supplier',
    scope: 'root',
    defaultFactory: async service =>
      createServiceFactory({
        service,
        deps: { config: coreServices.rootConfig },
        factory: ({ config }) => configMeshClustersSupplier(config),
      }),
  });

/**
 * The clusters a supplier gives, checked as configured ones are (names, `https:` URLs unless
 * `mesh.allowInsecureHttp`, label values, no name twice), ready to be reached with the request
 * timeout of `mesh.clusterRequestTimeoutSeconds`. Throws InputError naming every problem.
 *
 * @public
 */
export async function clusterAccessFromSupplier(
  supplier: MeshClustersSupplier,
  config: Config,
): Promise<ClusterAccess> {
  const clusters = await supplier.getClusters();
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const c of clusters) {
    const found = connectionProblems(c, config);
    if (found.length)
      problems.push(`Invalid cluster "${c.name}": ${found.join('; ')}`);
    if (seen.has(c.name))
      problems.push(`cluster "${c.name}" is supplied twice`);
    seen.add(c.name);
  }
  if (problems.length)
    throw new InputError(
      `The mesh cluster supplier gave clusters Tailmesh cannot use:\n${problems.join('\n')}`,
    );
  return new ClusterAccess(clusters, {
    requestTimeoutMs: readClusterRequestTimeoutMs(config),
    source: supplier.source ?? 'the clusters supplied to Tailmesh',
  });
}
