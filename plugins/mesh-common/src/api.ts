import type { IstiodRemoteSyncStatus, IstiodRemoteView } from './istiodView';

/**
 * Kinds of failure when talking to a cluster, so the UI can suggest the right fix instead of
 * showing a raw error.
 *
 * @public
 */
export const CLUSTER_ERROR_KINDS = [
  'unauthorized',
  'forbidden',
  'tls',
  'timeout',
  'dns',
  'connection-refused',
  'unknown',
] as const;

/**
 * One of {@link CLUSTER_ERROR_KINDS}.
 *
 * @public
 */
export type ClusterErrorKind = (typeof CLUSTER_ERROR_KINDS)[number];

/**
 * Why a cluster could not be read. `message` is for people and never contains credentials.
 *
 * @public
 */
export interface ClusterError {
  kind: ClusterErrorKind;
  message: string;
}

/**
 * Whether the backend's view of a cluster is current.
 *
 * @public
 */
export interface ClusterSyncHealth {
  /** `syncing` until the first read completes; `error` when the latest read failed. */
  state: 'ok' | 'syncing' | 'error';
  /** ISO 8601 time of the last successful read. */
  lastSyncAt?: string;
  /** Set exactly when `state` is `error`. */
  error?: ClusterError;
}

/**
 * What the backend knows about one cluster. Fields read from the cluster keep their last known
 * value while `sync.state` is `error`.
 *
 * @public
 */
export interface MeshClusterStatus {
  name: string;
  /** Whether the cluster has joined the mesh (as opposed to being only configured). */
  member: boolean;
  network: string;
  region: string;
  zone: string;
  istiod: {
    installed: boolean;
    ready: boolean;
    /** Istio version of the running istiod. */
    version?: string;
    /**
     * istiod's Deployment: replicas ready (`status.readyReplicas`) and asked for
     * (`spec.replicas`); both 0 when istiod is not installed.
     */
    replicas: { ready: number; desired: number };
  };
  gateway: {
    /** Tailnet IP of the east-west gateway, once the operator has assigned one. */
    address?: string;
    /** MagicDNS name of the east-west gateway. */
    hostname?: string;
    ready: boolean;
  };
  operator: { installed: boolean; ready: boolean };
  /**
   * SHA-256 of the DER-encoded mesh root certificate the cluster trusts, as uppercase hex pairs
   * separated by colons (the form of Node's `X509Certificate.fingerprint256` and of
   * `openssl x509 -fingerprint -sha256`).
   */
  rootFingerprint?: string;
  /** Mesh ID istiod runs with. */
  meshId?: string;
  /** Clusters this cluster holds remote secrets for, sorted. */
  knownPeers: string[];
  /** What the cluster's istiod itself reports about its remote clusters, once read. */
  istiodRemotes?: IstiodRemoteView;
  sync: ClusterSyncHealth;
}

/**
 * Response listing every configured cluster's status.
 *
 * @public
 */
export interface ClustersResponse {
  clusters: MeshClusterStatus[];
  /** ISO 8601 time the response was assembled. */
  generatedAt: string;
}

/**
 * How one member (`from`) sees another (`to`) in the membership matrix. Both fields are
 * `not-applicable` on the diagonal; `gatewayInMeshNetworks` is also `not-applicable` when `from`
 * does not use meshNetworks (istiod then discovers gateways from their Services).
 *
 * @public
 */
export interface MembershipCell {
  from: string;
  to: string;
  /** Whether `from` holds a remote secret for `to`. */
  remoteSecret: 'present' | 'missing' | 'not-applicable';
  /** Whether `from`'s meshNetworks routes to `to` through `to`'s current gateway address. */
  gatewayInMeshNetworks:
    'present' | 'missing' | 'wrong-address' | 'not-applicable';
  /**
   * What `from`'s istiod itself reports about `to` (see {@link IstiodRemoteView}): its sync
   * state, `not-listed` when istiod does not know `to` as a remote, `unknown` when `from`'s istiod
   * view could not be read or istiod does not report it, `not-applicable` on the diagonal.
   */
  istiodSync:
    IstiodRemoteSyncStatus | 'not-listed' | 'unknown' | 'not-applicable';
}

/**
 * Kinds of audit finding, from the most to the least fundamental; sorting follows this order.
 *
 * @public
 */
export const AUDIT_FINDING_KINDS = [
  'root-ca-mismatch',
  'ca-expiring',
  'one-way-remote-secret',
  'remote-secret-for-non-member',
  'mesh-id-clash',
  'network-clash',
  'gateway-without-address',
  'istiod-not-ready',
  'istiod-remote-unsynced',
  'mesh-networks-missing-member',
  'mesh-networks-wrong-address',
  'remote-secrets-missing',
  'egress-missing',
  'grant-missing',
  'operator-not-ready',
  'tailnet-dns-missing',
  'grant-too-broad',
  'grant-reachable-from-pods',
] as const;

/**
 * One of {@link AUDIT_FINDING_KINDS}.
 *
 * @public
 */
export type AuditFindingKind = (typeof AUDIT_FINDING_KINDS)[number];

/**
 * Severities of audit findings, from the most to the least severe.
 *
 * @public
 */
export const AUDIT_SEVERITIES = ['error', 'warning', 'info'] as const;

/**
 * One of {@link AUDIT_SEVERITIES}.
 *
 * @public
 */
export type AuditSeverity = (typeof AUDIT_SEVERITIES)[number];

/**
 * A problem the membership audit found.
 *
 * @public
 */
export interface AuditFinding {
  /** Stable across runs while the problem persists; see `auditFindingId`. */
  id: string;
  kind: AuditFindingKind;
  severity: AuditSeverity;
  /**
   * Clusters involved: the one where the problem shows first (for directional kinds such as
   * `one-way-remote-secret`, the one missing something), then the others in name order.
   */
  clusters: string[];
  message: string;
  /** What to do about it, in one or two sentences. */
  fix: string;
}

/**
 * Whether the backend could read the tailnet policy file, which the `grant-too-broad` check
 * judges. While a read fails, the check keeps judging the last file read.
 *
 * @public
 */
export interface TailnetPolicyStatus {
  /** `not-configured` without a Tailscale OAuth client; `pending` until the first read ends. */
  state: 'ok' | 'error' | 'pending' | 'not-configured';
  /** ISO 8601 time of the last successful read. */
  lastReadAt?: string;
  /** Why the last read failed, for people; set exactly when `state` is `error`. */
  error?: string;
}

/**
 * Response with the membership matrix and the audit's findings.
 *
 * @public
 */
export interface MembershipResponse {
  /** Member clusters, sorted; the order of the matrix's rows and columns. */
  clusters: string[];
  /** `matrix[i][j]` is the cell from `clusters[i]` to `clusters[j]`. */
  matrix: MembershipCell[][];
  findings: AuditFinding[];
  /** ISO 8601 time the response was assembled. */
  generatedAt: string;
  /** Whether the tailnet policy file behind `grant-too-broad` could be read. */
  tailnetPolicy?: TailnetPolicyStatus;
}

/**
 * Endpoint counts of a Service in one locality.
 *
 * @public
 */
export interface ZoneEndpoints {
  /** Empty when the nodes carry no zone label. */
  zone: string;
  /** Empty when the nodes carry no region label. */
  region: string;
  ready: number;
  notReady: number;
}

/**
 * A Service as found in one cluster.
 *
 * @public
 */
export interface ServiceEndpointsInCluster {
  cluster: string;
  /** Whether the cluster could be read (its sync state is `ok`). */
  reachable: boolean;
  /** Why the cluster could not be read; set only when `reachable` is false. */
  error?: ClusterError;
  /** Whether the Service exists in this cluster with at least one ready endpoint. */
  serving: boolean;
  endpoints: { ready: number; notReady: number };
  zones: ZoneEndpoints[];
  network: string;
}

/**
 * One place requests for the Service go from a cluster, as istiod programs its sidecars: the
 * cluster's own ready endpoints, or another network's east-west gateway standing for that
 * cluster's ready endpoints (istiod sends one endpoint per gateway, weighted by how many endpoints
 * it stands for: `pilot/pkg/xds/endpoints/endpoint_builder.go` EndpointsByNetworkFilter).
 *
 * @public
 */
export interface ServiceRouteDestination {
  cluster: string;
  via: 'local' | 'gateway';
  /** The gateway's address in meshNetworks; set when `via` is `gateway`. */
  address?: string;
  /** Ready endpoints this destination stands for: its share of requests without locality rules. */
  endpoints: number;
}

/**
 * How requests for the Service leave one cluster: every destination istiod gives its sidecars, and
 * in short `local` (it has ready endpoints of its own; `destinations` lists any gateways it also
 * balances over), `gateway` (only other clusters' gateways) or `unreachable`.
 *
 * @public
 */
export interface ServiceRoute {
  fromCluster: string;
  via: 'local' | 'gateway' | 'unreachable';
  /** The first gateway of `destinations`, set when `via` is `gateway`. */
  gateway?: { cluster: string; address: string };
  /** Local endpoints first, then gateways by cluster name; empty when unreachable. */
  destinations: ServiceRouteDestination[];
}

/**
 * Totals over the reachable clusters of a {@link ServiceStatusResponse}.
 *
 * @public
 */
export interface ServiceStatusSummary {
  servingClusters: number;
  totalClusters: number;
  readyEndpoints: number;
  totalEndpoints: number;
}

/**
 * Response with one Service's status across the mesh.
 *
 * @public
 */
export interface ServiceStatusResponse {
  namespace: string;
  name: string;
  clusters: ServiceEndpointsInCluster[];
  routes: ServiceRoute[];
  summary: ServiceStatusSummary;
}

/**
 * Something that changed in the mesh's membership or audit.
 *
 * @public
 */
export interface MembershipHistoryEvent {
  id: string;
  /** ISO 8601 time of the change. */
  at: string;
  /** The cluster concerned; absent for mesh-wide events. */
  cluster?: string;
  kind: 'joined' | 'left' | 'finding-raised' | 'finding-cleared';
  /** The finding's {@link AuditFinding.id}, for `finding-*` events. */
  findingId?: string;
  message: string;
}

/**
 * One page of membership history, newest events first.
 *
 * @public
 */
export interface HistoryResponse {
  events: MembershipHistoryEvent[];
  /** Opaque token to request the next (older) page; absent on the last page. */
  nextCursor?: string;
}

/**
 * The Backstage signals channel (`@backstage/plugin-signals`) on which the mesh backend announces
 * that the mesh's state changed, so open views ask again instead of polling.
 *
 * @public
 */
export const MESH_SIGNAL_CHANNEL = 'tailmesh.mesh';

/**
 * A message on {@link MESH_SIGNAL_CHANNEL}. It carries no state, only what kind of change
 * happened: every signed-in user may receive it, and each view reads what it shows through its
 * routes, under their permissions.
 *
 * @public
 */
export interface MeshSignal {
  [key: string]: boolean;
  /**
   * True when what the audit and the cluster rows read changed (a snapshot, a cluster's sync
   * state, the tailnet policy); false when only endpoints and Services did (service views).
   */
  mesh: boolean;
}
