import { BackstageCredentials } from '@backstage/backend-plugin-api';
import { NotFoundError } from '@backstage/errors';
import { CatalogService } from '@backstage/plugin-catalog-node';
import {
  ClusterSyncHealth,
  ClustersResponse,
  MembershipResponse,
  MeshClusterSnapshot,
  ANNOTATION_KUBERNETES_ID,
  ANNOTATION_MESH_SERVICE,
  MeshClusterStatus,
  ServiceEndpointsInCluster,
  ServiceRoute,
  ServiceRouteDestination,
  ServiceStatusResponse,
  compareStrings,
  gatewayAddressOf,
  getMeshServiceRef,
  isMeshMember,
  membershipMatrix,
  mostCommon,
  summarizeService,
} from '@tailmesh/plugin-mesh-common';
import { MeshClusterConnection } from '@tailmesh/plugin-mesh-node';
import { MeshStateSource } from './cache/MeshStateSource';
import { Remember, rememberNothing } from './AuthorizationCache';
import { MeshAuditor } from './MeshAuditor';
import { TailnetPolicySource } from './TailnetPolicyWatcher';
import { whyUnreachable } from './reachability';

/** What `mesh.clusters` says of a cluster's place, used when the cluster's own labels are absent. */
export interface ConfiguredPlacement {
  network?: string;
  region?: string;
  zone?: string;
}

export interface MeshStatusServiceOptions {
  state: MeshStateSource;
  /** The audit of the last change; requests never run one. */
  audit: Pick<MeshAuditor, 'current'>;
  /** The tailnet policy file's read status, reported with the findings. */
  policy?: Pick<TailnetPolicySource, 'status'>;
  catalog: Pick<CatalogService, 'getEntityByRef' | 'getEntities'>;
  /** The supplied placement of each cluster; looked up per request, as the clusters may change. */
  configured?: Pick<ReadonlyMap<string, ConfiguredPlacement>, 'get'>;
  now?: () => Date;
}

/**
 * Network, region and zone of every cluster as supplied (configured in `mesh.clusters`, or given
 * by a cluster supplier), used where the cluster's own labels are absent.
 */
export function placementOf(
  clusters: ReadonlyArray<MeshClusterConnection>,
): Map<string, ConfiguredPlacement> {
  return new Map(
    clusters.map(c => [
      c.name,
      { network: c.network, region: c.region, zone: c.zone },
    ]),
  );
}

/**
 * A snapshot judged on its last known values. The cache marks a cluster that is not `ok` with an
 * error so the audit leaves it alone, but its status row keeps what was last seen.
 */
function lastKnown(s: MeshClusterSnapshot): MeshClusterSnapshot {
  const { error: _error, ...rest } = s;
  return rest;
}

/**
 * The mesh status API's domain: every response is assembled from the watch cache, so a call costs
 * no Kubernetes request and a slow or broken cluster cannot slow down the answer.
 */
export class MeshStatusService {
  private readonly now: () => Date;

  constructor(private readonly options: MeshStatusServiceOptions) {
    this.now = options.now ?? (() => new Date());
  }

  clusters(): ClustersResponse {
    const clusters = this.options.state
      .snapshots()
      .map(s => this.clusterStatus(s, this.options.state.health(s.cluster)));
    return { clusters, generatedAt: this.now().toISOString() };
  }

  membership(): MembershipResponse {
    const { snapshots, findings } = this.options.audit.current();
    return {
      ...membershipMatrix(snapshots),
      findings,
      generatedAt: this.now().toISOString(),
      ...(this.options.policy
        ? { tailnetPolicy: this.options.policy.status() }
        : {}),
    };
  }

  service(namespace: string, name: string): ServiceStatusResponse {
    const clusters = this.options.state.serviceEndpoints(namespace, name);
    const snapshots = this.options.state.snapshots();
    return {
      namespace,
      name,
      clusters,
      routes: serviceRoutes(clusters, snapshots),
      summary: summarizeService(clusters).summary,
    };
  }

  /**
   * The status of a Service by its Kubernetes name, for a caller who can see a catalog entity that
   * stands for it (as {@link MeshStatusService.entity} requires of the entity it is asked about):
   * a Service no visible entity names is not found rather than leaked.
   */
  async visibleService(
    namespace: string,
    name: string,
    credentials: BackstageCredentials,
    remember: Remember = rememberNothing,
  ): Promise<ServiceStatusResponse> {
    const standsFor = await remember(
      `service-visible:${namespace}/${name}`,
      () => this.standsForService(namespace, name, credentials),
    );
    if (!standsFor) {
      throw new NotFoundError(
        `No catalog entity you can see stands for Service ${namespace}/${name}`,
      );
    }
    return this.service(namespace, name);
  }

  /** Whether the caller can see a catalog entity that stands for the Service. */
  private async standsForService(
    namespace: string,
    name: string,
    credentials: BackstageCredentials,
  ): Promise<boolean> {
    const { items } = await this.options.catalog.getEntities(
      {
        filter: [
          {
            [`metadata.annotations.${ANNOTATION_MESH_SERVICE}`]: `${namespace}/${name}`,
          },
          { [`metadata.annotations.${ANNOTATION_KUBERNETES_ID}`]: name },
        ],
        fields: [
          'kind',
          'metadata.namespace',
          'metadata.name',
          'metadata.annotations',
        ],
      },
      { credentials },
    );
    return items.some(e => {
      const ref = getMeshServiceRef(e);
      return ref?.namespace === namespace && ref.name === name;
    });
  }

  /**
   * The status of the Service an entity stands for. The catalog is asked with the caller's
   * credentials, so an entity the caller may not see is not found rather than leaked.
   */
  async entity(
    entityRef: string,
    credentials: BackstageCredentials,
    remember: Remember = rememberNothing,
  ): Promise<ServiceStatusResponse> {
    const entity = await remember(`entity:${entityRef}`, () =>
      this.options.catalog.getEntityByRef(entityRef, { credentials }),
    );
    if (!entity) throw new NotFoundError(`Entity ${entityRef} not found`);
    const ref = getMeshServiceRef(entity);
    if (!ref) {
      throw new NotFoundError(
        `Entity ${entityRef} names no mesh Service (annotation tailmesh.dev/service or backstage.io/kubernetes-id)`,
      );
    }
    return this.service(ref.namespace, ref.name);
  }

  /**
   * {@link MeshStatusService.entity}, with why each cluster that cannot reach the Service cannot
   * (see {@link whyUnreachable}), by cluster.
   */
  async entityReachability(
    entityRef: string,
    credentials: BackstageCredentials,
  ): Promise<{
    status: ServiceStatusResponse;
    why: Record<string, string[]>;
  }> {
    const status = await this.entity(entityRef, credentials);
    const snapshots = this.options.state.snapshots();
    const why = Object.fromEntries(
      status.routes.map(r => [
        r.fromCluster,
        whyUnreachable(r, status.clusters, snapshots),
      ]),
    );
    return { status, why };
  }

  private clusterStatus(
    snapshot: MeshClusterSnapshot,
    sync: ClusterSyncHealth,
  ): MeshClusterStatus {
    const s = lastKnown(snapshot);
    const configured = this.options.configured?.get(s.cluster) ?? {};
    const nodes = this.options.state.nodeLocalities(s.cluster);
    const zones = [
      ...new Set(nodes.flatMap(n => (n.zone ? [n.zone] : []))),
    ].sort(compareStrings);
    const address = s.gateway?.ip;
    return {
      name: s.cluster,
      member: isMeshMember(s),
      network: s.network ?? configured.network ?? '',
      // Nodes' topology labels win over configuration, as config.d.ts promises.
      region:
        mostCommon(nodes.flatMap(n => (n.region ? [n.region] : []))) ??
        configured.region ??
        '',
      zone: zones[0] ?? configured.zone ?? '',
      istiod: {
        installed: s.istiod !== undefined,
        ready: s.istiod?.ready ?? false,
        ...(s.istiod?.version ? { version: s.istiod.version } : {}),
        replicas: s.istiod?.replicas
          ? { ...s.istiod.replicas }
          : { ready: 0, desired: 0 },
      },
      gateway: {
        ...(address ? { address } : {}),
        ...(s.gateway?.hostname ? { hostname: s.gateway.hostname } : {}),
        ready: gatewayAddressOf(s) !== undefined,
      },
      operator: {
        installed: s.operator !== undefined,
        ready: s.operator?.ready ?? false,
      },
      ...(s.rootFingerprint ? { rootFingerprint: s.rootFingerprint } : {}),
      ...(s.meshId ? { meshId: s.meshId } : {}),
      knownPeers: [...s.remoteSecretsFor].sort(compareStrings),
      ...(s.istiodRemotes
        ? {
            istiodRemotes: {
              ...s.istiodRemotes,
              remotes: s.istiodRemotes.remotes.map(r => ({ ...r })),
            },
          }
        : {}),
      sync,
    };
  }
}

/**
 * How each cluster reaches the Service, as istiod programs a sidecar there (multi-primary,
 * one network per member): its own ready endpoints, plus, for a member, the east-west gateway of
 * every other serving member whose endpoints its istiod can know and reach: it holds a remote
 * secret for that member and its meshNetworks names a gateway for that member's network
 * (istiod drops endpoints of a network without a gateway: `pilot/pkg/xds/endpoints/
 * endpoint_builder.go`). Each gateway is weighted by the ready endpoints it stands for. Locality
 * rules (a DestinationRule's failover) order these destinations; they do not change the set.
 */
export function serviceRoutes(
  clusters: ReadonlyArray<ServiceEndpointsInCluster>,
  snapshots: ReadonlyArray<MeshClusterSnapshot>,
): ServiceRoute[] {
  const members = new Map(
    snapshots.filter(s => isMeshMember(s)).map(s => [s.cluster, s] as const),
  );
  const serving = clusters
    .filter(c => c.reachable && c.serving && c.endpoints.ready > 0)
    .sort((a, b) => compareStrings(a.cluster, b.cluster));
  return clusters.map((c): ServiceRoute => {
    const destinations: ServiceRouteDestination[] = [];
    if (c.reachable && c.serving && c.endpoints.ready > 0)
      destinations.push({
        cluster: c.cluster,
        via: 'local',
        endpoints: c.endpoints.ready,
      });
    const from = members.get(c.cluster);
    if (from) {
      for (const s of serving) {
        const to = members.get(s.cluster);
        if (!to || to.cluster === from.cluster) continue;
        if (!from.remoteSecretsFor.includes(to.cluster)) continue;
        const address = to.network
          ? from.meshNetworks?.networks[to.network]?.gateways.find(
              g => g.address,
            )?.address
          : undefined;
        if (!address) continue;
        destinations.push({
          cluster: s.cluster,
          via: 'gateway',
          address,
          endpoints: s.endpoints.ready,
        });
      }
    }
    const firstGateway = destinations.find(d => d.via === 'gateway');
    if (destinations[0]?.via === 'local')
      return { fromCluster: c.cluster, via: 'local', destinations };
    return firstGateway
      ? {
          fromCluster: c.cluster,
          via: 'gateway',
          gateway: {
            cluster: firstGateway.cluster,
            address: firstGateway.address!,
          },
          destinations,
        }
      : { fromCluster: c.cluster, via: 'unreachable', destinations };
  });
}
