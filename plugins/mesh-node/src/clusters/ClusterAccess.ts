import { isDeepStrictEqual } from 'node:util';
import { Config } from '@backstage/config';
import { NotFoundError } from '@backstage/errors';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { MeshClusterConnection, readClusterConfig } from './readClusterConfig';
import {
  DEFAULT_CLUSTER_REQUEST_TIMEOUT_SECONDS,
  readClusterRequestTimeoutMs,
} from './requestTimeout';

/**
 * How a cluster list changed: names added, removed, and kept with another connection (URL,
 * credentials, CA, network or place).
 *
 * @public
 */
export interface ClusterListChange {
  added: string[];
  removed: string[];
  changed: string[];
}

/**
 * The one way Tailmesh reaches a cluster: the backend's watches and the scaffolder's actions both
 * build their clients here, from the plugin's configuration, never from template input.
 *
 * @public
 */
export class ClusterAccess {
  private byName: Map<string, MeshClusterConnection>;
  private readonly listeners = new Set<(change: ClusterListChange) => void>();
  private readonly closers: Array<() => void> = [];
  /** How long any one request to a cluster may take (`mesh.clusterRequestTimeoutSeconds`). */
  readonly requestTimeoutMs: number;
  /** Where the clusters came from, for errors: `mesh.clusters` unless a supplier gave them. */
  private readonly source: string;

  static fromConfig(config: Config): ClusterAccess {
    return new ClusterAccess(readClusterConfig(config), {
      requestTimeoutMs: readClusterRequestTimeoutMs(config),
    });
  }

  constructor(
    clusters: MeshClusterConnection[],
    options: {
      requestTimeoutMs?: number;
      source?: string;
      /** Called by close(): stops following where the clusters come from. */
      onClose?: () => void;
    } = {},
  ) {
    if (options.onClose) this.closers.push(options.onClose);
    this.byName = new Map(clusters.map(c => [c.name, c]));
    this.source = options.source ?? 'mesh.clusters';
    this.requestTimeoutMs =
      options.requestTimeoutMs ??
      DEFAULT_CLUSTER_REQUEST_TIMEOUT_SECONDS * 1000;
  }

  /**
   * Replaces the clusters with a new list (a configuration or supplier change), and tells every
   * listener which names came, went or now connect differently; a list equal to the current one
   * changes nothing and tells no one. Clients built before keep the connection they were built
   * with; what is asked for afterwards uses the new list.
   */
  update(clusters: MeshClusterConnection[]): ClusterListChange {
    const before = this.byName;
    const after = new Map(clusters.map(c => [c.name, c]));
    const change: ClusterListChange = {
      added: [...after.keys()].filter(n => !before.has(n)),
      removed: [...before.keys()].filter(n => !after.has(n)),
      changed: [...after.keys()].filter(
        n => before.has(n) && !isDeepStrictEqual(before.get(n), after.get(n)),
      ),
    };
    const reordered =
      [...before.keys()].join('\n') !== [...after.keys()].join('\n');
    this.byName = after;
    if (
      change.added.length ||
      change.removed.length ||
      change.changed.length ||
      reordered
    ) {
      for (const listener of this.listeners) listener(change);
    }
    return change;
  }

  /** Calls `listener` after every update() that changed the list; returns the unsubscribe. */
  onChange(listener: (change: ClusterListChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Stops following the configuration or supplier the clusters came from. */
  close(): void {
    for (const close of this.closers.splice(0)) close();
    this.listeners.clear();
  }

  /** The configured clusters, in configuration order. */
  list(): MeshClusterConnection[] {
    return [...this.byName.values()];
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The named cluster; a NotFoundError listing the configured ones otherwise. */
  get(name: string): MeshClusterConnection {
    const cluster = this.byName.get(name);
    if (!cluster) {
      const known = this.names();
      throw new NotFoundError(
        `Unknown cluster "${name}": it is not in ${this.source} (configured: ${known.length ? known.join(', ') : 'none'})`,
      );
    }
    return cluster;
  }

  /** A client configuration held in memory only. */
  kubeConfig(name: string): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromString(this.kubeconfigYaml(name));
    return kc;
  }

  /**
   * The cluster as kubeconfig YAML, for tools that need a file (helm). It holds the token: write
   * it only to a 0600 file that is removed after use.
   */
  kubeconfigYaml(name: string): string {
    const c = this.get(name);
    const cluster: Record<string, unknown> = { server: c.url };
    if (c.caPem)
      cluster['certificate-authority-data'] = Buffer.from(c.caPem).toString(
        'base64',
      );
    if (c.tlsServerName) cluster['tls-server-name'] = c.tlsServerName;
    if (c.skipTLSVerify) cluster['insecure-skip-tls-verify'] = true;
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: c.name, cluster }],
      users: [{ name: c.name, user: c.token ? { token: c.token } : {} }],
      contexts: [{ name: c.name, context: { cluster: c.name, user: c.name } }],
      'current-context': c.name,
    });
  }
}
