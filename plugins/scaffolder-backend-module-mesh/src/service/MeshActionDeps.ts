import { LoggerService } from '@backstage/backend-plugin-api';
import { Config } from '@backstage/config';
import { KubeConfig } from '@kubernetes/client-node';
import { MeshClusterSnapshot } from '@tailmesh/plugin-mesh-common';
import {
  ClusterAccess,
  MeshClusterConnection,
  readClusterSnapshot,
} from '@tailmesh/plugin-mesh-node';
import { MeshCharts, readMeshCharts } from './charts';
import { Helm, HelmRunOptions } from './helm';

/**
 * What every mesh action is built with; one instance per backend, from configuration.
 *
 * @public
 */
export interface MeshActionDeps {
  config: Config;
  clusters: ClusterAccess;
  charts: MeshCharts;
  helm: Helm;
}

/**
 * The actions' dependencies; the clusters are those of `mesh.clusters` unless given (the module
 * gives those of the shared cluster supplier, `meshClustersSupplierServiceRef`).
 *
 * @public
 */
export function createMeshActionDeps(
  config: Config,
  options: { clusters?: ClusterAccess } = {},
): MeshActionDeps {
  return {
    config,
    clusters: options.clusters ?? ClusterAccess.fromConfig(config),
    charts: readMeshCharts(config),
    helm: new Helm(config.getOptionalString('mesh.helm.binary') ?? 'helm', {
      pendingRepairAfterSeconds: config.getOptionalNumber(
        'mesh.helm.pendingRepairAfterSeconds',
      ),
    }),
  };
}

/** One configured cluster, ready to talk to. */
export interface TargetCluster {
  name: string;
  connection: MeshClusterConnection;
  kc: KubeConfig;
  /** For helm only: holds the token; goes to 0600 temp files, nowhere else. */
  kubeconfigYaml: string;
  /** Secret strings to scrub from any tool output about this cluster. */
  secrets: string[];
}

/** Resolves a cluster name from action input against the configuration (NotFoundError if unknown). */
export function targetCluster(
  deps: MeshActionDeps,
  name: string,
): TargetCluster {
  const connection = deps.clusters.get(name);
  return {
    name,
    connection,
    kc: deps.clusters.kubeConfig(name),
    kubeconfigYaml: deps.clusters.kubeconfigYaml(name),
    secrets: [connection.token ?? ''].filter(Boolean),
  };
}

/**
 * How helm reaches `target` for one action run: its kubeconfig (for a 0600 temp file), the
 * strings to scrub from helm's output, the run's abort signal and dry-run flag.
 */
export function helmOptionsFor(
  target: TargetCluster,
  ctx: {
    logger: LoggerService;
    signal?: AbortSignal;
    /** The action's input; its `adopt` (see adoptInput) is passed on to helm. */
    input?: object;
  },
  dryRun: boolean,
  extraSecrets: string[] = [],
): HelmRunOptions & { dryRun: boolean } {
  return {
    adopt:
      ctx.input !== undefined &&
      'adopt' in ctx.input &&
      ctx.input.adopt === true,
    kubeconfigYaml: target.kubeconfigYaml,
    logger: ctx.logger,
    cluster: target.name,
    secrets: [...target.secrets, ...extraSecrets],
    signal: ctx.signal,
    dryRun,
  };
}

/**
 * Every configured cluster's snapshot but `exclude`'s, read at once: what the mesh actions judge
 * membership by (mesh:members, mesh:check-join, mesh:check-traffic). An unreadable cluster comes
 * back with its `error`, never as a rejection.
 */
export function readConfiguredSnapshots(
  deps: MeshActionDeps,
  exclude?: string,
): Promise<MeshClusterSnapshot[]> {
  return Promise.all(
    deps.clusters
      .names()
      .filter(name => name !== exclude)
      .map(name =>
        readClusterSnapshot(deps.clusters.kubeConfig(name), name, {
          timeoutMs: deps.clusters.requestTimeoutMs,
        }),
      ),
  );
}
