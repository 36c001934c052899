import { BackstageCredentials } from '@backstage/backend-plugin-api';
import { Config } from '@backstage/config';
import { NotFoundError } from '@backstage/errors';
import { CatalogService } from '@backstage/plugin-catalog-node';
import {
  ClusterSyncHealth,
  ClustersResponse,
  MembershipResponse,
  MeshClusterSnapshot,
  MeshClusterStatus,
  ServiceEndpointsInCluster,
  ServiceRoute,
  ServiceStatusResponse,
  compareStrings,
  gatewayAddressOf,
  getMeshServiceRef,
  isMeshMember,
  membershipMatrix,
  mostCommon,
  summarizeService,
} from '@tailmesh/plugin-mesh-common';
import { MeshStateCache } from './cache/MeshStateCache';
import { MeshAuditor } from './MeshAuditor';
import { TailnetPolicySource } from './TailnetPolicyWatcher';

/** The part of the watch cache the status is built from: reads from memory only. */
export type MeshStateSource = Pick<
  MeshStateCache,
  | 'clusters'
  | 'snapshots'
  | 'health'
  | 'serviceEndpoints'
  | 'nodeLocalities'
  | 'onChange'
>;

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
  catalog: Pick<CatalogService, 'getEntityByRef'>;
  configured?: ReadonlyMap<string, ConfiguredPlacement>;
  now?: () => Date;
}

/** Reads network, region and zone of every `mesh.clusters` entry. */
export function readConfiguredPlacement(
  config: Config,
): Map<string, ConfiguredPlacement> {
  return new Map(
    (config.getOptionalConfigArray('mesh.clusters') ?? []).map(c => [
      c.getString('name'),
      {
        network: c.getOptionalString('network'),
        region: c.getOptionalString('region'),
        zone: c.getOptionalString('zone'),
      },
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
   * The status of the Service an entity stands for. The catalog is asked with the caller's
   * credentials, so an entity the caller may not see is not found rather than leaked.
   */
  async entity(
    entityRef: string,
    credentials: BackstageCredentials,
  ): Promise<ServiceStatusResponse> {
    const entity = await this.options.catalog.getEntityByRef(entityRef, {
      credentials,
    });
    if (!entity) throw new NotFoundError(`Entity ${entityRef} not found`);
    const ref = getMeshServiceRef(entity);
    if (!ref) {
      throw new NotFoundError(
        `Entity ${entityRef} names no mesh Service (annotation tailmesh.dev/service or backstage.io/kubernetes-id)`,
      );
    }
    return this.service(ref.namespace, ref.name);
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
 * How each cluster reaches the Service: its own ready endpoints first; else, if it is a member,
 * the east-west gateway of the first serving member (by name) that has a gateway address; else
 * nowhere. Deterministic on purpose, rather than guessing at locality the mesh may not apply.
 */
export function serviceRoutes(
  clusters: ReadonlyArray<ServiceEndpointsInCluster>,
  snapshots: ReadonlyArray<MeshClusterSnapshot>,
): ServiceRoute[] {
  const members = new Map(
    snapshots.filter(s => isMeshMember(s)).map(s => [s.cluster, s] as const),
  );
  const servingGateways = clusters
    .filter(c => c.reachable && c.serving && members.has(c.cluster))
    .map(c => ({
      cluster: c.cluster,
      address: gatewayAddressOf(members.get(c.cluster)!),
    }))
    .filter((g): g is { cluster: string; address: string } => !!g.address)
    .sort((a, b) => compareStrings(a.cluster, b.cluster));
  return clusters.map((c): ServiceRoute => {
    if (c.reachable && c.serving)
      return { fromCluster: c.cluster, via: 'local' };
    const gateway = members.has(c.cluster)
      ? servingGateways.find(g => g.cluster !== c.cluster)
      : undefined;
    return gateway
      ? { fromCluster: c.cluster, via: 'gateway', gateway }
      : { fromCluster: c.cluster, via: 'unreachable' };
  });
}
