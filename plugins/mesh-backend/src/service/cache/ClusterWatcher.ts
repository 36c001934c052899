import { LoggerService } from '@backstage/backend-plugin-api';
import { KubeConfig } from '@kubernetes/client-node';
import {
  CACERTS_SECRET,
  COREDNS_CONFIGMAP,
  EAST_WEST_GATEWAY_SERVICE,
  ClusterError,
  ClusterSyncHealth,
  EGRESS_SERVICE_NAMESPACE,
  ISTIO_CA_ROOT_CERT_CONFIGMAP,
  ISTIO_MESH_CONFIGMAP,
  ISTIO_MULTI_CLUSTER_VALUE,
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
  IstiodRemoteView,
  KUBE_SYSTEM_NAMESPACE,
  LABEL_ISTIO_MULTI_CLUSTER,
  MeshClusterSnapshot,
  NetworkPolicyView,
  ServiceEndpointsInCluster,
  TAILSCALE_NAMESPACE,
  TAILSCALE_OPERATOR_DEPLOYMENT,
  istiodMetricsPath,
  parseIstiodRemoteSync,
} from '@tailmesh/plugin-mesh-common';
import {
  DEFAULT_CLUSTER_REQUEST_TIMEOUT_SECONDS,
  describeClusterErrorForReaders,
  networkPolicyView,
} from '@tailmesh/plugin-mesh-node';
import {
  assembleServiceEndpoints,
  assembleSnapshot,
  zoneRegions,
} from './assemble';
import { KubeRequests } from './KubeRequests';
import {
  CoreDnsProjection,
  DeploymentProjection,
  EndpointSliceProjection,
  MeshConfigProjection,
  NamespaceProjection,
  NodeProjection,
  RemoteSecretProjection,
  RootCertProjection,
  SecretVersionProjection,
  ServiceProjection,
  coreDnsProjector,
  isEastWestGateway,
  projectDeployment,
  projectEndpointSlice,
  projectIstioNamespace,
  projectMeshConfig,
  projectNode,
  projectRemoteSecret,
  projectRootCert,
  projectSecretVersion,
  projectService,
} from './projections';
import {
  BackoffOptions,
  DEFAULT_BACKOFF,
  ResourceSpec,
  ResourceWatch,
} from './ResourceWatch';

/**
 * One configured cluster, as the cache needs it.
 *
 * @public
 */
export interface WatchedCluster {
  name: string;
  kubeConfig: KubeConfig;
  /** Configured network, used when istio-system carries no network label. */
  network?: string;
}

export interface ClusterWatcherOptions {
  cluster: WatchedCluster;
  /** The tailnet's MagicDNS domain; CoreDNS is only watched when it is known. */
  tailnet?: string;
  logger: LoggerService;
  backoff?: BackoffOptions;
  /** How long any one request to the cluster may take; see KubeRequests. */
  requestTimeoutMs?: number;
  /** How often istiod's own view of its remotes is read (its metrics); default 15 s. */
  istiodViewIntervalMs?: number;
  /**
   * Called after any projection or the health changed; `mesh` when the change can change the
   * cluster's snapshot (what the audit judges), false for EndpointSlices, Nodes and plain Services.
   */
  onChange(cluster: string, mesh: boolean): void;
}

const named = (name: string) => `metadata.name=${name}`;

/**
 * Keeps one cluster's mesh-relevant state current through watches, and answers from memory only.
 * Each kind of object has its own list-then-watch, so a failure in one never blocks the others,
 * and nothing here can block or fail another cluster.
 */
export class ClusterWatcher {
  readonly name: string;
  private readonly http: KubeRequests;
  private readonly server: string;
  private readonly logger: LoggerService;
  private readonly watches: ResourceWatch<unknown>[] = [];
  private readonly errors = new Map<string, ClusterError>();
  private state: ClusterSyncHealth = { state: 'syncing' };
  private readonly readsAbort = new AbortController();
  private istiodView?: IstiodRemoteView;
  private istiodTimer?: NodeJS.Timeout;
  private istiodReading = false;

  private readonly istiod: ResourceWatch<DeploymentProjection>;
  private readonly operator: ResourceWatch<DeploymentProjection>;
  private readonly services: ResourceWatch<ServiceProjection>;
  private readonly slices: ResourceWatch<EndpointSliceProjection>;
  private readonly nodes: ResourceWatch<NodeProjection>;
  private readonly namespace: ResourceWatch<NamespaceProjection>;
  private readonly meshConfig: ResourceWatch<MeshConfigProjection>;
  private readonly rootCert: ResourceWatch<RootCertProjection>;
  private readonly cacerts: ResourceWatch<SecretVersionProjection>;
  private readonly remoteSecrets: ResourceWatch<RemoteSecretProjection>;
  private readonly coreDns?: ResourceWatch<CoreDnsProjection>;
  private readonly egressPolicies: ResourceWatch<NetworkPolicyView>;

  constructor(private readonly opts: ClusterWatcherOptions) {
    this.name = opts.cluster.name;
    this.logger = opts.logger.child({ cluster: this.name });
    this.http = new KubeRequests(
      opts.cluster.kubeConfig,
      opts.requestTimeoutMs ?? DEFAULT_CLUSTER_REQUEST_TIMEOUT_SECONDS * 1000,
    );
    this.server = opts.cluster.kubeConfig.getCurrentCluster()?.server ?? '';

    this.istiod = this.watch({
      what: 'the istiod Deployment',
      path: `/apis/apps/v1/namespaces/${ISTIO_NAMESPACE}/deployments`,
      fieldSelector: named(ISTIOD_DEPLOYMENT),
      project: projectDeployment,
    });
    this.operator = this.watch({
      what: 'the Tailscale operator Deployment',
      path: `/apis/apps/v1/namespaces/${TAILSCALE_NAMESPACE}/deployments`,
      fieldSelector: named(TAILSCALE_OPERATOR_DEPLOYMENT),
      project: projectDeployment,
    });
    // One cluster-wide watch serves the gateway, the egress Services and "does Service X exist".
    this.services = this.watch({
      what: 'Services',
      path: '/api/v1/services',
      project: projectService,
      group: s => s.namespace,
      affectsMesh: s => isEastWestGateway(s) || s.egress !== undefined,
    });
    this.slices = this.watch({
      what: 'EndpointSlices',
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      project: projectEndpointSlice,
      group: s => `${s.namespace}/${s.service}`,
      affectsMesh: () => false,
    });
    this.nodes = this.watch({
      what: 'Nodes',
      path: '/api/v1/nodes',
      metadataOnly: true,
      project: projectNode,
      affectsMesh: () => false,
    });
    this.namespace = this.watch({
      what: `the ${ISTIO_NAMESPACE} Namespace`,
      path: '/api/v1/namespaces',
      fieldSelector: named(ISTIO_NAMESPACE),
      metadataOnly: true,
      project: projectIstioNamespace,
    });
    this.meshConfig = this.watch({
      what: `the ${ISTIO_MESH_CONFIGMAP} ConfigMap`,
      path: `/api/v1/namespaces/${ISTIO_NAMESPACE}/configmaps`,
      fieldSelector: named(ISTIO_MESH_CONFIGMAP),
      project: projectMeshConfig,
    });
    this.rootCert = this.watch({
      what: `the ${ISTIO_CA_ROOT_CERT_CONFIGMAP} ConfigMap`,
      path: `/api/v1/namespaces/${ISTIO_NAMESPACE}/configmaps`,
      fieldSelector: named(ISTIO_CA_ROOT_CERT_CONFIGMAP),
      project: projectRootCert,
    });
    this.cacerts = this.watch({
      what: `the ${CACERTS_SECRET} Secret's metadata`,
      path: `/api/v1/namespaces/${ISTIO_NAMESPACE}/secrets`,
      fieldSelector: named(CACERTS_SECRET),
      metadataOnly: true,
      project: projectSecretVersion,
    });
    this.remoteSecrets = this.watch({
      what: "remote secrets' metadata",
      path: `/api/v1/namespaces/${ISTIO_NAMESPACE}/secrets`,
      labelSelector: `${LABEL_ISTIO_MULTI_CLUSTER}=${ISTIO_MULTI_CLUSTER_VALUE}`,
      metadataOnly: true,
      project: projectRemoteSecret,
    });
    // Who may reach the egress proxies: the audit's grant-reachable-from-pods.
    this.egressPolicies = this.watch({
      what: `NetworkPolicies in ${EGRESS_SERVICE_NAMESPACE}`,
      path: `/apis/networking.k8s.io/v1/namespaces/${EGRESS_SERVICE_NAMESPACE}/networkpolicies`,
      project: networkPolicyView,
    });
    if (opts.tailnet) {
      this.coreDns = this.watch({
        what: `the ${COREDNS_CONFIGMAP} ConfigMap`,
        path: `/api/v1/namespaces/${KUBE_SYSTEM_NAMESPACE}/configmaps`,
        fieldSelector: named(COREDNS_CONFIGMAP),
        project: coreDnsProjector(opts.tailnet),
      });
    }
  }

  /** API requests made to this cluster so far. */
  get requestCount(): number {
    return this.http.requestCount;
  }

  start(): void {
    for (const w of this.watches) w.start();
    const every = this.opts.istiodViewIntervalMs ?? 15_000;
    this.istiodTimer = setInterval(() => this.readIstiodView(), every);
    this.istiodTimer.unref?.();
  }

  async stop(): Promise<void> {
    if (this.istiodTimer) clearInterval(this.istiodTimer);
    this.readsAbort.abort();
    await Promise.all(this.watches.map(w => w.stop()));
  }

  /**
   * Reads what istiod itself reports about its remote clusters, from its metrics through the API
   * server's service proxy (see mesh-common istiodView.ts). Periodic, not per request: a page view
   * still costs no API request. Only a change of the view (not of its read time) notifies.
   */
  private readIstiodView(): void {
    if (this.istiodReading) return;
    if (!this.istiod.values().next().value) {
      if (this.istiodView) {
        this.istiodView = undefined;
        this.opts.onChange(this.name, true);
      }
      return;
    }
    this.istiodReading = true;
    const readAt = new Date().toISOString();
    this.http
      .getText(
        istiodMetricsPath(ISTIO_NAMESPACE),
        'text/plain',
        this.readsAbort.signal,
      )
      .then(
        (text): IstiodRemoteView => {
          const remotes = parseIstiodRemoteSync(text);
          return remotes
            ? { state: 'reported', readAt, remotes }
            : { state: 'not-reported', readAt, remotes: [] };
        },
        (e): IstiodRemoteView => ({
          state: 'unreadable',
          readAt,
          remotes: [],
          error: describeClusterErrorForReaders(this.name, e).message,
        }),
      )
      .then(view => {
        if (this.readsAbort.signal.aborted) return;
        const before = this.istiodView;
        this.istiodView = view;
        const same =
          before &&
          before.state === view.state &&
          before.error === view.error &&
          JSON.stringify(before.remotes) === JSON.stringify(view.remotes);
        if (!same) this.opts.onChange(this.name, true);
      })
      .finally(() => {
        this.istiodReading = false;
      });
  }

  health(): ClusterSyncHealth {
    return { ...this.state };
  }

  snapshot(): MeshClusterSnapshot {
    const only = <P>(w: ResourceWatch<P>) => w.values().next().value;
    return assembleSnapshot({
      cluster: this.name,
      health: this.state,
      namespace: only(this.namespace),
      istiod: only(this.istiod),
      operator: only(this.operator),
      gateway: this.services.get(
        `${ISTIO_NAMESPACE}/${EAST_WEST_GATEWAY_SERVICE}`,
      ),
      egress: this.services.inGroup(EGRESS_SERVICE_NAMESPACE),
      egressPolicies: this.egressPolicies.values(),
      remoteSecrets: this.remoteSecrets.values(),
      meshConfig: only(this.meshConfig),
      rootFingerprint: this.rootFingerprint(),
      caNotAfter: {
        root: this.rootCert.values().next().value?.notAfter,
        intermediate: this.cacerts.values().next().value?.intermediateNotAfter,
      },
      coreDns: this.coreDns ? only(this.coreDns) : undefined,
      tailnetChecked: this.coreDns !== undefined,
      istiodRemotes: this.istiodView,
    });
  }

  serviceEndpoints(namespace: string, name: string): ServiceEndpointsInCluster {
    const ns = this.namespace.values().next().value;
    return assembleServiceEndpoints({
      cluster: this.name,
      health: this.state,
      serviceExists: this.services.get(`${namespace}/${name}`) !== undefined,
      slices: this.slices.inGroup(`${namespace}/${name}`),
      regions: zoneRegions(this.nodes.values()),
      network: ns?.network ?? this.opts.cluster.network ?? '',
    });
  }

  /** Region and zone labels of the cluster's nodes, as watched. */
  nodeLocalities(): NodeProjection[] {
    return [...this.nodes.values()].map(n => ({ ...n }));
  }

  private rootFingerprint(): string | undefined {
    const fromConfigMap = this.rootCert.values().next().value?.fingerprint;
    if (fromConfigMap) return fromConfigMap;
    // Before istiod has published it, the plugged-in CA's root is the truth (as in
    // readClusterSnapshot), known from the fingerprint Tailmesh recorded in the Secret's metadata:
    // the Secret's data holds the intermediate's key and is never read.
    if (!this.istiod.values().next().value) return undefined;
    return this.cacerts.values().next().value?.rootFingerprint;
  }

  private watch<P>(spec: ResourceSpec<P>): ResourceWatch<P> {
    const w: ResourceWatch<P> = new ResourceWatch(
      spec,
      this.http,
      {
        healthy: () => this.healthy(w),
        failed: e => this.failed(w, e),
        changed: mesh => this.changed(mesh),
      },
      this.opts.backoff ?? DEFAULT_BACKOFF,
    );
    this.watches.push(w as ResourceWatch<unknown>);
    return w;
  }

  private healthy(w: ResourceWatch<unknown>): void {
    this.errors.delete(w.what);
    this.updateHealth();
  }

  private failed(w: ResourceWatch<unknown>, e: unknown): void {
    // Readers of the mesh status get words without the cluster's address; the log has it.
    this.errors.set(w.what, describeClusterErrorForReaders(this.name, e));
    this.updateHealth();
  }

  private changed(mesh: boolean): void {
    if (this.state.state === 'ok')
      this.state.lastSyncAt = new Date().toISOString();
    // istiod's view is read as soon as istiod appears, then on the timer.
    if (mesh && !this.istiodView) this.readIstiodView();
    this.opts.onChange(this.name, mesh);
  }

  private updateHealth(): void {
    const before = this.state;
    const error = this.errors.values().next().value;
    let next: ClusterSyncHealth;
    if (error) {
      next = { state: 'error', error, lastSyncAt: before.lastSyncAt };
    } else if (this.watches.every(w => w.hasSynced)) {
      next = { state: 'ok', lastSyncAt: new Date().toISOString() };
    } else {
      next = { state: 'syncing', lastSyncAt: before.lastSyncAt };
    }
    this.state = next;
    if (
      before.state !== next.state ||
      before.error?.message !== next.error?.message
    ) {
      // Logged per cluster, not per watch: an outage breaks every watch at once.
      if (next.error) {
        this.logger.warn(
          `Watching ${this.name} (${this.server}) failed: ${next.error.message}`,
        );
      } else if (next.state === 'ok' && before.state === 'error') {
        this.logger.info(`Watching ${this.name} recovered`);
      }
      this.opts.onChange(this.name, true);
    }
  }
}
