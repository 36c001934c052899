import {
  LoggerService,
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
  /**
   * Every cluster, each with a DNS-1123 name unique among them; read when the backend starts,
   * and again after each call of a `subscribe` listener.
   */
  getClusters(): Promise<MeshClusterConnection[]>;
  /** Where the clusters come from, as errors name it (e.g. "mesh.clusters"). */
  readonly source?: string;
  /**
   * Calls `onChange` when the clusters may have changed, so that Tailmesh reads them again and
   * starts or stops watching clusters without a restart. The same shape as `Config.subscribe`;
   * without it the clusters are read once, at start.
   */
  subscribe?(onChange: () => void): { unsubscribe(): void };
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
    // Backstage's root config calls its subscribers when a config file changes (it watches them
    // unless started with watching off: backend-defaults' rootConfigServiceFactory, `watch`).
    ...(config.subscribe
      ? { subscribe: (onChange: () => void) => config.subscribe!(onChange) }
      : {}),
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

function checkSupplied(
  clusters: MeshClusterConnection[],
  config: Config,
): MeshClusterConnection[] {
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
  return clusters;
}

/**
 * The clusters a supplier gives, checked as configured ones are (names, `https:` URLs unless
 * `mesh.allowInsecureHttp`, label values, no name twice), ready to be reached with the request
 * timeout of `mesh.clusterRequestTimeoutSeconds`. Throws InputError naming every problem.
 *
 * Where the supplier can tell of changes (`subscribe`; the default supplier does when Backstage
 * watches its config files), the result follows them: each change is read and checked again, and
 * the access is updated, which tells its `onChange` listeners. A changed list that fails the
 * checks is logged and not taken: the clusters in use stay as they were. `close()` stops
 * following.
 *
 * @public
 */
export async function clusterAccessFromSupplier(
  supplier: MeshClustersSupplier,
  config: Config,
  options: { logger?: LoggerService } = {},
): Promise<ClusterAccess> {
  const source = supplier.source ?? 'the clusters supplied to Tailmesh';
  // Subscribed before the first read, so a change during that read is not missed.
  let access: ClusterAccess | undefined;
  let missed = false;
  let reading: Promise<void> = Promise.resolve();
  const reread = () => {
    if (!access) {
      missed = true;
      return;
    }
    const target = access;
    // One read at a time, in order: the last change wins.
    reading = reading.then(async () => {
      try {
        target.update(checkSupplied(await supplier.getClusters(), config));
      } catch (e) {
        options.logger?.error(
          `Kept the clusters Tailmesh was using: reading ${source} again failed: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    });
  };
  const subscription = supplier.subscribe?.(reread);
  try {
    access = new ClusterAccess(
      checkSupplied(await supplier.getClusters(), config),
      {
        requestTimeoutMs: readClusterRequestTimeoutMs(config),
        source,
        onClose: () => subscription?.unsubscribe(),
      },
    );
  } catch (e) {
    subscription?.unsubscribe();
    throw e;
  }
  if (missed) reread();
  return access;
}
