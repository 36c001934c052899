import { LoggerService } from '@backstage/backend-plugin-api';
import { Config } from '@backstage/config';
import { NotFoundError } from '@backstage/errors';
import {
  ClusterSyncHealth,
  MeshClusterSnapshot,
  ServiceEndpointsInCluster,
} from '@tailmesh/plugin-mesh-common';
import { ClusterAccess } from '@tailmesh/plugin-mesh-node';
import { ClusterWatcher, WatchedCluster } from './ClusterWatcher';
import { BackoffOptions } from './ResourceWatch';

/**
 * Clusters whose cached state changed since the last notification.
 *
 * @public
 */
export interface MeshStateChange {
  clusters: string[];
  /**
   * Those of `clusters` whose snapshot or sync state changed: what the mesh audit judges. Changes
   * only the service view reads (EndpointSlices, Nodes, plain Services) leave it empty.
   */
  meshClusters: string[];
}

/** @public */
export type MeshStateListener = (change: MeshStateChange) => void;

/** @public */
export interface MeshStateCacheOptions {
  clusters: WatchedCluster[];
  /** The tailnet's MagicDNS domain (`mesh.tailscale.dnsName`); enables the CoreDNS check. */
  tailnet?: string;
  logger: LoggerService;
  backoff?: BackoffOptions;
  /** How long any one request to a cluster may take (`mesh.clusterRequestTimeoutSeconds`). */
  requestTimeoutMs?: number;
  /** How often istiod's own view of its remotes is read (`mesh.istiodViewIntervalSeconds`). */
  istiodViewIntervalMs?: number;
  /** Changes within this window reach listeners as one notification. */
  changeDelayMs?: number;
}

/** `mesh.istiodViewIntervalSeconds` (default 15, at least 1), in milliseconds. */
function istiodViewIntervalMs(config: Config): number {
  const seconds =
    config.getOptionalNumber('mesh.istiodViewIntervalSeconds') ?? 15;
  if (!Number.isFinite(seconds) || seconds < 1) {
    throw new Error(
      `mesh.istiodViewIntervalSeconds must be a number of seconds of at least 1, got ${seconds}`,
    );
  }
  return seconds * 1000;
}

/**
 * The mesh backend's view of every configured cluster, kept current by watches. Reads are served
 * from memory and never wait on a cluster: a cluster that is down, slow or rejecting the
 * credentials shows up in its own health and rows, never in the others'.
 *
 * @public
 */
export class MeshStateCache {
  private readonly watchers: Map<string, ClusterWatcher>;
  private readonly listeners = new Set<MeshStateListener>();
  private readonly immediateListeners = new Set<MeshStateListener>();
  private readonly pending = new Set<string>();
  private readonly pendingMesh = new Set<string>();
  private timer?: NodeJS.Timeout;
  private started = false;

  static fromConfig(
    config: Config,
    options: {
      logger: LoggerService;
      backoff?: BackoffOptions;
      /** The clusters to watch; those of `mesh.clusters` when not given. */
      clusters?: ClusterAccess;
    },
  ): MeshStateCache {
    const { clusters, ...rest } = options;
    const access = clusters ?? ClusterAccess.fromConfig(config);
    return new MeshStateCache({
      clusters: access.list().map(c => ({
        name: c.name,
        kubeConfig: access.kubeConfig(c.name),
        network: c.network,
      })),
      tailnet: config.getOptionalString('mesh.tailscale.dnsName'),
      requestTimeoutMs: access.requestTimeoutMs,
      istiodViewIntervalMs: istiodViewIntervalMs(config),
      ...rest,
    });
  }

  constructor(private readonly options: MeshStateCacheOptions) {
    this.watchers = new Map(
      options.clusters.map(cluster => [
        cluster.name,
        new ClusterWatcher({
          cluster,
          tailnet: options.tailnet,
          logger: options.logger,
          backoff: options.backoff,
          requestTimeoutMs: options.requestTimeoutMs,
          istiodViewIntervalMs: options.istiodViewIntervalMs,
          onChange: (name, mesh) => this.changed(name, mesh),
        }),
      ]),
    );
  }

  /** Starts every cluster's watches; returns at once, clusters become `ok` as they sync. */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const w of this.watchers.values()) w.start();
  }

  /** Closes every watch and timer; resolves once nothing is left running. */
  async stop(): Promise<void> {
    this.started = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
    this.pendingMesh.clear();
    await Promise.all([...this.watchers.values()].map(w => w.stop()));
  }

  /** Configured clusters, in configuration order. */
  clusters(): string[] {
    return [...this.watchers.keys()];
  }

  /** One snapshot per configured cluster, in configuration order, without any API request. */
  snapshots(): MeshClusterSnapshot[] {
    return [...this.watchers.values()].map(w => w.snapshot());
  }

  health(cluster: string): ClusterSyncHealth {
    return this.watcher(cluster).health();
  }

  /** Region and zone labels of a cluster's nodes, without any API request. */
  nodeLocalities(cluster: string): Array<{ region?: string; zone?: string }> {
    return this.watcher(cluster).nodeLocalities();
  }

  /** Where the Service runs: one entry per configured cluster. */
  serviceEndpoints(
    namespace: string,
    name: string,
  ): ServiceEndpointsInCluster[] {
    return [...this.watchers.values()].map(w =>
      w.serviceEndpoints(namespace, name),
    );
  }

  /**
   * Calls `listener` after cached state changed; returns a function that unsubscribes. Changes
   * within `changeDelayMs` reach it as one call, unless `immediate` is set: then it is called
   * synchronously on every change, so a state that lasts less than that window (a finding raised
   * and fixed at once) is still seen. Immediate listeners must be cheap: most changes are
   * EndpointSlices (`meshClusters` empty), which they should skip.
   */
  onChange(
    listener: MeshStateListener,
    options?: { immediate?: boolean },
  ): () => void {
    const set = options?.immediate ? this.immediateListeners : this.listeners;
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** API requests made so far, per cluster (list pages, watches, CA reads). */
  requestCounts(): Record<string, number> {
    return Object.fromEntries(
      [...this.watchers].map(([name, w]) => [name, w.requestCount]),
    );
  }

  private watcher(cluster: string): ClusterWatcher {
    const w = this.watchers.get(cluster);
    if (!w) throw new NotFoundError(`Unknown cluster "${cluster}"`);
    return w;
  }

  private changed(cluster: string, mesh: boolean): void {
    if (!this.started) return;
    const change = { clusters: [cluster], meshClusters: mesh ? [cluster] : [] };
    for (const listener of this.immediateListeners)
      this.notify(listener, change);
    this.pending.add(cluster);
    if (mesh) this.pendingMesh.add(cluster);
    // A rollout moves many EndpointSlices at once; listeners want one call, not hundreds.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      const coalesced = {
        clusters: [...this.pending].sort(),
        meshClusters: [...this.pendingMesh].sort(),
      };
      this.pending.clear();
      this.pendingMesh.clear();
      for (const listener of this.listeners) this.notify(listener, coalesced);
    }, this.options.changeDelayMs ?? 100);
  }

  private notify(listener: MeshStateListener, change: MeshStateChange): void {
    try {
      listener(change);
    } catch (e) {
      this.options.logger.error(
        `A mesh state listener failed: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
}
