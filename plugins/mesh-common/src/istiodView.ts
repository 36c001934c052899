/**
 * What istiod itself says about its remote clusters, as opposed to what Tailmesh concludes from the
 * objects it wrote. istiod (1.29 and later) exports one gauge sample per remote cluster and state on
 * its monitoring port, unauthenticated like every Prometheus metric it serves
 * (istio/istio pkg/kube/multicluster/secretcontroller.go, `istiod_remote_cluster_sync_status`, added
 * in 1.29.0): the state whose sample is 1 is the current one. Its `/debug/clusterz` says the same but
 * needs a token of istiod's own namespace or a loopback caller (pilot/pkg/xds/debug.go), so the
 * metric is what a Backstage backend can read through the API server's service proxy.
 */

/**
 * Service of istiod (the istiod chart's `service.yaml`) and its monitoring port's name.
 *
 * @public
 */
export const ISTIOD_SERVICE = 'istiod';

/**
 * Name of the monitoring port (15014) of {@link ISTIOD_SERVICE}.
 *
 * @public
 */
export const ISTIOD_MONITORING_PORT_NAME = 'http-monitoring';

/**
 * The metric istiod reports its remote clusters' sync state in.
 *
 * @public
 */
export const ISTIOD_REMOTE_SYNC_METRIC = 'istiod_remote_cluster_sync_status';

/**
 * A remote cluster's state in istiod (pkg/kube/multicluster/cluster.go SyncStatus*): `syncing`
 * until its informers synced, `timeout` when that took longer than istiod waits
 * (PILOT_REMOTE_CLUSTER_TIMEOUT), `closed` once istiod stopped watching it.
 *
 * @public
 */
export const ISTIOD_REMOTE_SYNC_STATUSES = [
  'synced',
  'syncing',
  'timeout',
  'closed',
] as const;

/**
 * One of {@link ISTIOD_REMOTE_SYNC_STATUSES}.
 *
 * @public
 */
export type IstiodRemoteSyncStatus =
  (typeof ISTIOD_REMOTE_SYNC_STATUSES)[number];

/**
 * istiod's own view of its remote clusters.
 *
 * @public
 */
export interface IstiodRemoteView {
  /**
   * `reported`: istiod's metrics were read and list its remotes; `not-reported`: they were read but
   * carry no remote-sync metric (istiod older than 1.29); `unreadable`: they could not be read
   * (see `error`; e.g. RBAC denies `services/proxy`).
   */
  state: 'reported' | 'not-reported' | 'unreadable';
  /** ISO 8601 time of the read this view comes from. */
  readAt: string;
  /** Each remote cluster istiod knows, sorted by name; empty unless `reported`. */
  remotes: Array<{ cluster: string; status: IstiodRemoteSyncStatus }>;
  /** Why the metrics could not be read, for people; never holds credentials. */
  error?: string;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabel(v: string): string {
  return v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/**
 * The remote clusters' states from istiod's Prometheus text metrics, or undefined when the text
 * has no sample of {@link ISTIOD_REMOTE_SYNC_METRIC} at all (an istiod without the metric, or one
 * that has never had a remote cluster). A cluster whose samples are all 0 was removed
 * (secretcontroller.go clearClusterSyncState) and is left out.
 *
 * @public
 */
export function parseIstiodRemoteSync(
  metrics: string,
): Array<{ cluster: string; status: IstiodRemoteSyncStatus }> | undefined {
  const current = new Map<string, IstiodRemoteSyncStatus>();
  let seen = false;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(ISTIOD_REMOTE_SYNC_METRIC)) continue;
    const m = SAMPLE.exec(line);
    if (!m || m[1] !== ISTIOD_REMOTE_SYNC_METRIC) continue;
    seen = true;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL))
      labels[l[1]] = unescapeLabel(l[2]);
    const status = labels.status as IstiodRemoteSyncStatus;
    if (
      !labels.cluster ||
      !(ISTIOD_REMOTE_SYNC_STATUSES as readonly string[]).includes(status) ||
      Number(m[3]) !== 1
    ) {
      continue;
    }
    current.set(labels.cluster, status);
  }
  if (!seen) return undefined;
  return [...current]
    .map(([cluster, status]) => ({ cluster, status }))
    .sort((a, b) =>
      a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : 0,
    );
}

/**
 * Path, on the API server, of istiod's metrics through the service proxy (RBAC: `get` on
 * `services/proxy` for {@link ISTIOD_SERVICE} in istiod's namespace).
 *
 * @public
 */
export function istiodMetricsPath(namespace: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/services/${ISTIOD_SERVICE}:${ISTIOD_MONITORING_PORT_NAME}/proxy/metrics`;
}
