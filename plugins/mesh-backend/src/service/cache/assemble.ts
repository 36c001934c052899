import {
  ClusterError,
  ClusterSyncHealth,
  IstiodRemoteView,
  MeshClusterSnapshot,
  NetworkPolicyView,
  ServiceEndpointsInCluster,
  ZoneEndpoints,
  apiEgressOpenTo,
} from '@tailmesh/plugin-mesh-common';
import {
  CoreDnsProjection,
  DeploymentProjection,
  EndpointSliceProjection,
  MeshConfigProjection,
  NamespaceProjection,
  NodeProjection,
  RemoteSecretProjection,
  ServiceProjection,
} from './projections';

/** Everything the cache holds for one cluster, as read by the assembly functions. */
export interface ClusterProjections {
  cluster: string;
  health: ClusterSyncHealth;
  namespace?: NamespaceProjection;
  istiod?: DeploymentProjection;
  operator?: DeploymentProjection;
  gateway?: ServiceProjection;
  egress: Iterable<ServiceProjection>;
  /** NetworkPolicies of the egress Services' namespace. */
  egressPolicies?: Iterable<NetworkPolicyView>;
  remoteSecrets: Iterable<RemoteSecretProjection>;
  meshConfig?: MeshConfigProjection;
  /** From `istio-ca-root-cert`, else from `cacerts` (see ClusterWatcher). */
  rootFingerprint?: string;
  /** CA expiry where known (root from `istio-ca-root-cert`, intermediate from `cacerts` metadata). */
  caNotAfter?: { root?: string; intermediate?: string };
  /** Undefined when no tailnet is configured, so CoreDNS is not checked. */
  coreDns?: CoreDnsProjection;
  tailnetChecked: boolean;
  /** What istiod itself reports about its remotes, once read. */
  istiodRemotes?: IstiodRemoteView;
}

/** The error a cluster's snapshot carries while it is not `ok`. */
export function healthError(
  cluster: string,
  health: ClusterSyncHealth,
): ClusterError | undefined {
  if (health.state === 'ok') return undefined;
  return (
    health.error ?? {
      kind: 'unknown',
      message: `${cluster}: not synchronised yet`,
    }
  );
}

// Plain code-point order, as mesh-common sorts names: the result must not depend on locale.
function byString(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/**
 * The snapshot `readClusterSnapshot` would read, built from the cache. While the cluster is not
 * `ok` it carries the error (so the audit does not judge it) and the last known values.
 */
export function assembleSnapshot(p: ClusterProjections): MeshClusterSnapshot {
  const error = healthError(p.cluster, p.health);
  const policies = [...(p.egressPolicies ?? [])];
  const openToPods = (e: NonNullable<ServiceProjection['egress']>) =>
    e.to === 'api-server-proxy' && e.uid && p.egressPolicies
      ? apiEgressOpenTo(policies, e.uid)
      : undefined;
  const gateway = p.gateway
    ? { hostname: p.gateway.ingress?.hostname, ip: p.gateway.ingress?.ip }
    : undefined;
  return {
    cluster: p.cluster,
    ...(error ? { error } : {}),
    network: p.namespace?.network,
    meshId: p.namespace?.meshId,
    istiod: p.istiod
      ? {
          ready: p.istiod.ready,
          version: p.istiod.version,
          replicas: { ...p.istiod.replicas },
        }
      : undefined,
    operator: p.operator ? { ready: p.operator.ready } : undefined,
    gateway,
    rootFingerprint: p.rootFingerprint,
    ...(p.caNotAfter && (p.caNotAfter.root || p.caNotAfter.intermediate)
      ? { caNotAfter: { ...p.caNotAfter } }
      : {}),
    remoteSecretsFor: [...p.remoteSecrets]
      .flatMap(s => (s.cluster ? [s.cluster] : []))
      .sort(byString),
    egressFor: [...p.egress]
      .flatMap(s => (s.egress ? [s.egress] : []))
      .sort((a, b) => byString(a.peer, b.peer))
      .map(e => {
        const open = openToPods(e);
        return {
          peer: e.peer,
          ...(e.to ? { to: e.to } : {}),
          ready: e.ready,
          ...(open ? { openToPods: open } : {}),
        };
      }),
    meshNetworks: p.meshConfig?.meshNetworks,
    tailnetDns:
      p.tailnetChecked && p.coreDns ? p.coreDns.tailnetStanza : undefined,
    ...(p.istiodRemotes && p.istiod ? { istiodRemotes: p.istiodRemotes } : {}),
  };
}

// Dual-stack Services get one set of slices per address family for the same pods; counting both
// would double every endpoint.
const ADDRESS_TYPE_PREFERENCE = ['IPv4', 'IPv6', 'FQDN'];

/** Region of each zone, from the nodes' labels. */
export function zoneRegions(
  nodes: Iterable<NodeProjection>,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of nodes) {
    if (n.zone && n.region && !out.has(n.zone)) out.set(n.zone, n.region);
  }
  return out;
}

/** One Service's endpoints in one cluster, from its EndpointSlices and the nodes' localities. */
export function assembleServiceEndpoints(input: {
  cluster: string;
  health: ClusterSyncHealth;
  serviceExists: boolean;
  slices: Iterable<EndpointSliceProjection>;
  regions: ReadonlyMap<string, string>;
  network: string;
}): ServiceEndpointsInCluster {
  const slices = [...input.slices];
  const addressType = ADDRESS_TYPE_PREFERENCE.find(t =>
    slices.some(s => s.addressType === t),
  );
  const byZone = new Map<string, ZoneEndpoints>();
  for (const slice of slices) {
    if (slice.addressType !== addressType) continue;
    for (const z of slice.zones) {
      const entry = byZone.get(z.zone) ?? {
        zone: z.zone,
        region: input.regions.get(z.zone) ?? '',
        ready: 0,
        notReady: 0,
      };
      entry.ready += z.ready;
      entry.notReady += z.notReady;
      byZone.set(z.zone, entry);
    }
  }
  const zones = input.serviceExists
    ? [...byZone.values()].sort((a, b) => byString(a.zone, b.zone))
    : [];
  const endpoints = zones.reduce(
    (sum, z) => ({
      ready: sum.ready + z.ready,
      notReady: sum.notReady + z.notReady,
    }),
    { ready: 0, notReady: 0 },
  );
  const error = healthError(input.cluster, input.health);
  return {
    cluster: input.cluster,
    reachable: !error,
    ...(error ? { error } : {}),
    serving: input.serviceExists && endpoints.ready > 0,
    endpoints,
    zones,
    network: input.network,
  };
}
