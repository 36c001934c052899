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
  private watchers: Map<string, ClusterWatcher>;
  private readonly listeners = new Set<MeshStateListener>();
  private readonly immediateListeners = new Set<MeshStateListener>();
  private readonly pending = new Set<string>();
  private readonly pendingMesh = new Set<string>();
  private timer?: NodeJS.Timeout;
  private started = false;
  private unfollow?: () => void;

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
    const watched = (): WatchedCluster[] =>
      access.list().map(c => ({
        name: c.name,
        kubeConfig: access.kubeConfig(c.name),
        network: c.network,
      }));
    const cache = new MeshStateCache({
      clusters: watched(),
      tailnet: config.getOptionalString('mesh.tailscale.dnsName'),
      requestTimeoutMs: access.requestTimeoutMs,
      istiodViewIntervalMs: istiodViewIntervalMs(config),
      ...rest,
    });
    // Clusters added to or removed from the configuration (or the supplier) are watched, or no
    // longer, without a restart.
    cache.unfollow = access.onChange(change => {
      cache.setClusters(watched(), { restart: change.changed });
    });
    return cache;
  }

  constructor(private readonly options: MeshStateCacheOptions) {
    this.watchers = new Map(
      options.clusters.map(cluster => [cluster.name, this.watcherOf(cluster)]),
    );
  }

  private watcherOf(cluster: WatchedCluster): ClusterWatcher {
    const watcher: ClusterWatcher = new ClusterWatcher({
      cluster,
      tailnet: this.options.tailnet,
      logger: this.options.logger,
      backoff: this.options.backoff,
      requestTimeoutMs: this.options.requestTimeoutMs,
      istiodViewIntervalMs: this.options.istiodViewIntervalMs,
      onChange: (name, mesh) => {
        // A watcher replaced or removed may still report while it stops: not this cache's news.
        if (this.watchers.get(name) === watcher) this.changed(name, mesh);
      },
    });
    return watcher;
  }

  /**
   * Watches exactly these clusters from now on, in this order: clusters new to the list get
   * watches of their own (started if the cache is), clusters gone from it have theirs closed and
   * their state dropped, and those named in `restart` (same name, another connection) start over.
   * Every other cluster keeps its watches and cache: nothing of it is listed again. Listeners are
   * told of every cluster that came, went or restarted.
   */
  async setClusters(
    clusters: WatchedCluster[],
    options: { restart?: string[] } = {},
  ): Promise<void> {
    const restart = new Set(options.restart ?? []);
    const next = new Map<string, ClusterWatcher>();
    const stopping: ClusterWatcher[] = [];
    const touched: string[] = [];
    for (const cluster of clusters) {
      const existing = this.watchers.get(cluster.name);
      if (existing && !restart.has(cluster.name)) {
        next.set(cluster.name, existing);
        continue;
      }
      if (existing) stopping.push(existing);
      next.set(cluster.name, this.watcherOf(cluster));
      touched.push(cluster.name);
    }
    for (const [name, w] of this.watchers) {
      if (!next.has(name)) {
        stopping.push(w);
        touched.push(name);
      }
    }
    const added = touched.filter(n => next.has(n) && !this.watchers.has(n));
    const removed = touched.filter(n => !next.has(n));
    const restarted = touched.filter(n => this.watchers.has(n) && next.has(n));
    this.watchers = next;
    if (touched.length)
      this.options.logger.info(
        `Mesh clusters changed: ${[
          added.length ? `watching ${added.join(', ')}` : '',
          removed.length ? `no longer watching ${removed.join(', ')}` : '',
          restarted.length ? `reconnecting ${restarted.join(', ')}` : '',
        ]
          .filter(Boolean)
          .join('; ')}`,
      );
    if (this.started) for (const name of touched) next.get(name)?.start();
    for (const name of touched) this.changed(name, true);
    await Promise.all(stopping.map(w => w.stop()));
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
    this.unfollow?.();
    this.unfollow = undefined;
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
