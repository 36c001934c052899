/**
 * One watch-based view of a test bed cluster, shared by the test bed's controllers that act on
 * what is in it: the cluster's DNS stand-ins (Services and EndpointSlices, kube-system's
 * ConfigMaps and CoreDNS Deployment, the `dnsrecords` ConfigMaps), the Tailscale operator
 * stand-in's proxy pods, and the tailnet model (the operator Deployment, tailnet Services and
 * their endpoints; pods, namespaces and NetworkPolicies, for the NetworkPolicy its egress proxies
 * enforce). Every collection is a
 * list+watch informer (kubeClient.ts); listeners hear about any change, batched, except for the
 * collections only read per connection (pods, namespaces, NetworkPolicies; see the constructor).
 */
import type { NetworkPolicySpec } from '../network/networkPolicy';
import { Informer, KubeRest, type KubeConfigLike, type KubeObject } from './kubeClient';

export interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  finalizers?: string[];
}

export interface ServicePort {
  name?: string;
  port: number;
  protocol?: string;
  targetPort?: number | string;
}

export interface Service {
  metadata: Meta;
  spec?: {
    type?: string;
    clusterIP?: string;
    clusterIPs?: string[];
    externalName?: string;
    loadBalancerClass?: string;
    selector?: Record<string, string>;
    ports?: ServicePort[];
  };
  status?: { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> } };
}

export interface EndpointSlice {
  metadata: Meta;
  addressType?: string;
  endpoints?: Array<{
    addresses: string[];
    hostname?: string;
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    targetRef?: { kind?: string; name?: string; namespace?: string };
    zone?: string;
  }>;
  ports?: Array<{ name?: string; port?: number; protocol?: string }>;
}

export interface Deployment {
  metadata: Meta;
  spec?: {
    replicas?: number;
    template?: {
      spec?: {
        serviceAccountName?: string;
        containers?: Array<{
          name: string;
          env?: Array<{ name: string; value?: string }>;
          volumeMounts?: Array<{
            name: string;
            mountPath: string;
            subPath?: string;
          }>;
        }>;
        volumes?: Array<{
          name: string;
          secret?: { secretName?: string };
          configMap?: {
            name?: string;
            items?: Array<{ key: string; path: string }>;
          };
        }>;
      };
    };
  };
  status?: { readyReplicas?: number };
}

export interface StatefulSet {
  metadata: Meta;
  spec?: { replicas?: number; serviceName?: string };
}

export interface ConfigMap {
  metadata: Meta;
  data?: Record<string, string>;
}

export interface DNSConfig {
  metadata: Meta;
  status?: {
    nameserver?: { ip?: string };
    conditions?: Array<{ type: string; status: string }>;
  };
}

export interface Pod {
  metadata: Meta;
  spec?: {
    hostNetwork?: boolean;
    containers?: Array<{
      name: string;
      ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
    }>;
  };
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: Array<{ ip: string }>;
  };
}

export interface Namespace {
  metadata: Meta;
}

export interface NetworkPolicy {
  metadata: Meta;
  spec?: NetworkPolicySpec;
}

export interface ClusterCacheOptions {
  name: string;
  kubeConfig: KubeConfigLike;
  /** Namespace of the Tailscale operator (the chart's default `tailscale`). */
  operatorNamespace: string;
  signal: AbortSignal;
  log: (msg: string) => void;
}

export class ClusterCache {
  readonly name: string;
  readonly rest: KubeRest;
  readonly operatorNamespace: string;
  readonly services: Informer<Service & KubeObject>;
  readonly endpointSlices: Informer<EndpointSlice & KubeObject>;
  readonly operatorDeployments: Informer<Deployment & KubeObject>;
  readonly operatorStatefulSets: Informer<StatefulSet & KubeObject>;
  /** kube-system's ConfigMaps: CoreDNS's Corefile and whatever else its Deployment mounts. */
  readonly kubeSystemConfigMaps: Informer<ConfigMap & KubeObject>;
  /**
   * kube-system's Deployments: `coredns` where a cluster runs one (AKS mounts coredns-custom
   * through it), `kube-dns` where kube-dns is the cluster's DNS (GKE).
   */
  readonly kubeSystemDeployments: Informer<Deployment & KubeObject>;
  readonly dnsRecordsConfig: Informer<ConfigMap & KubeObject>;
  readonly dnsConfigs: Informer<DNSConfig & KubeObject>;
  readonly pods: Informer<Pod & KubeObject>;
  readonly namespaces: Informer<Namespace & KubeObject>;
  readonly networkPolicies: Informer<NetworkPolicy & KubeObject>;
  private readonly listeners = new Set<() => void>();
  private pending?: NodeJS.Timeout;

  constructor(private readonly o: ClusterCacheOptions) {
    this.name = o.name;
    this.operatorNamespace = o.operatorNamespace;
    this.rest = new KubeRest(o.kubeConfig, o.signal);
    const make = <T extends KubeObject>(what: string, listPath: string, notify = true) =>
      new Informer<T>({
        what: `${o.name} ${what}`,
        listPath,
        rest: this.rest,
        signal: o.signal,
        log: o.log,
        onEvent: () => {
          if (notify) this.changed();
        },
        watchTimeoutSeconds: 300,
      });
    const opNs = encodeURIComponent(o.operatorNamespace);
    this.services = make('services', '/api/v1/services');
    this.endpointSlices = make('endpointslices', '/apis/discovery.k8s.io/v1/endpointslices');
    this.operatorDeployments = make('operator deployments', `/apis/apps/v1/namespaces/${opNs}/deployments`);
    this.operatorStatefulSets = make('operator statefulsets', `/apis/apps/v1/namespaces/${opNs}/statefulsets`);
    this.kubeSystemConfigMaps = make('kube-system configmaps', '/api/v1/namespaces/kube-system/configmaps');
    this.kubeSystemDeployments = make('kube-system deployments', '/apis/apps/v1/namespaces/kube-system/deployments');
    this.dnsRecordsConfig = make(
      'dnsrecords configmap',
      `/api/v1/namespaces/${opNs}/configmaps?fieldSelector=metadata.name%3Ddnsrecords`,
    );
    // The DNSConfig CRD exists only once the operator chart's CRDs are applied; until then the
    // informer retries with back-off (a 404 on the list).
    this.dnsConfigs = make('dnsconfigs', '/apis/tailscale.com/v1alpha1/dnsconfigs');
    // What the tailnet model's egress proxies read for every new connection to judge it by the
    // cluster's NetworkPolicies (tailnet.ts). No listener acts on them, so their changes (every
    // pod's status, cluster-wide) do not wake the controllers.
    this.pods = make('pods', '/api/v1/pods', false);
    this.namespaces = make('namespaces', '/api/v1/namespaces', false);
    this.networkPolicies = make('networkpolicies', '/apis/networking.k8s.io/v1/networkpolicies', false);
  }

  run(): Promise<void>[] {
    return [
      this.services,
      this.endpointSlices,
      this.operatorDeployments,
      this.operatorStatefulSets,
      this.kubeSystemConfigMaps,
      this.kubeSystemDeployments,
      this.dnsRecordsConfig,
      this.dnsConfigs,
      this.pods,
      this.namespaces,
      this.networkPolicies,
    ].map(i => i.run().catch(err => this.o.log(`${this.name}: informer ended: ${String(err)}`)));
  }

  /** Called (batched, at most every 50 ms) after any change in any collection. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed() {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      for (const l of this.listeners) {
        try {
          l();
        } catch (err) {
          this.o.log(`${this.name}: change listener failed: ${String(err)}`);
        }
      }
    }, 50);
  }

  service(namespace: string, name: string): Service | undefined {
    return this.services.cache.get(`${namespace}/${name}`);
  }

  /** Ready endpoints of a Service (EndpointSlices labelled with its name), in a stable order. */
  readyEndpoints(namespace: string, service: string): Array<{ ip: string; hostname?: string; ports: EndpointSlice['ports'] }> {
    const out: Array<{ ip: string; hostname?: string; ports: EndpointSlice['ports'] }> = [];
    for (const slice of this.endpointSlices.cache.values()) {
      if (slice.metadata.namespace !== namespace) continue;
      if (slice.metadata.labels?.['kubernetes.io/service-name'] !== service) continue;
      if (slice.addressType && slice.addressType !== 'IPv4') continue;
      for (const ep of slice.endpoints ?? []) {
        // discovery/v1: only an explicit ready=false (or terminating) means not ready.
        if (ep.conditions?.ready === false || ep.conditions?.terminating === true) continue;
        for (const ip of ep.addresses) out.push({ ip, hostname: ep.hostname, ports: slice.ports });
      }
    }
    return out.sort((a, b) => a.ip.localeCompare(b.ip));
  }

  /** Whether the namespace has any Service (CoreDNS answers NXDOMAIN below unknown namespaces). */
  namespaceHasServices(namespace: string): boolean {
    for (const s of this.services.cache.values()) if (s.metadata.namespace === namespace) return true;
    return false;
  }

  /**
   * The pods that have `ip` as a pod IP (status.podIP or status.podIPs): not host-network pods
   * (their IP is the node's), and not pods that have ended (phase Succeeded or Failed, whose IP the
   * cluster may already have given to another pod).
   */
  podsByIP(ip: string): Pod[] {
    const want = ip.replace(/^::ffff:/i, '');
    const out: Pod[] = [];
    for (const pod of this.pods.cache.values()) {
      if (pod.spec?.hostNetwork) continue;
      const phase = pod.status?.phase;
      if (phase === 'Succeeded' || phase === 'Failed') continue;
      const ips = [pod.status?.podIP, ...(pod.status?.podIPs ?? []).map(p => p.ip)];
      if (ips.includes(want)) out.push(pod);
    }
    return out;
  }

  /** Running pods of a namespace whose labels include all of `labels`. */
  runningPods(namespace: string, labels: Record<string, string>): Pod[] {
    const out: Pod[] = [];
    for (const pod of this.pods.cache.values()) {
      if (pod.metadata.namespace !== namespace || pod.status?.phase !== 'Running') continue;
      if (Object.entries(labels).every(([k, v]) => pod.metadata.labels?.[k] === v)) out.push(pod);
    }
    return out;
  }

  /** The labels of a namespace, or undefined while it is not in the cache. */
  namespaceLabels(name: string): Record<string, string> | undefined {
    return this.namespaces.cache.get(name)?.metadata.labels;
  }

  /** NetworkPolicies of one namespace, or of every namespace. */
  networkPoliciesIn(namespace?: string): NetworkPolicy[] {
    return [...this.networkPolicies.cache.values()].filter(
      p => namespace === undefined || p.metadata.namespace === namespace,
    );
  }

  /** Resolves once pods, namespaces and NetworkPolicies have each been listed once. */
  networkPolicyStateSynced(): Promise<void> {
    return Promise.all([this.pods.synced, this.namespaces.synced, this.networkPolicies.synced]).then(() => undefined);
  }

  stop() {
    if (this.pending) clearTimeout(this.pending);
    this.listeners.clear();
  }
}
