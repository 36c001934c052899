/**
 * One watch-based view of a test bed cluster, shared by the test bed's controllers that act on
 * what is in it: the cluster's DNS stand-ins (Services and EndpointSlices, the CoreDNS and
 * `dnsrecords` ConfigMaps), the Tailscale operator stand-in's proxy pods, and the tailnet model
 * (the operator Deployment, tailnet Services and their endpoints). Every collection is a
 * list+watch informer (kubeClient.ts); listeners hear about any change, batched.
 */
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
          volumeMounts?: Array<{ name: string; mountPath: string }>;
        }>;
        volumes?: Array<{ name: string; secret?: { secretName?: string } }>;
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
  readonly coreDnsConfig: Informer<ConfigMap & KubeObject>;
  readonly dnsRecordsConfig: Informer<ConfigMap & KubeObject>;
  readonly dnsConfigs: Informer<DNSConfig & KubeObject>;
  private readonly listeners = new Set<() => void>();
  private pending?: NodeJS.Timeout;

  constructor(private readonly o: ClusterCacheOptions) {
    this.name = o.name;
    this.operatorNamespace = o.operatorNamespace;
    this.rest = new KubeRest(o.kubeConfig, o.signal);
    const make = <T extends KubeObject>(what: string, listPath: string) =>
      new Informer<T>({
        what: `${o.name} ${what}`,
        listPath,
        rest: this.rest,
        signal: o.signal,
        log: o.log,
        onEvent: () => this.changed(),
        watchTimeoutSeconds: 300,
      });
    const opNs = encodeURIComponent(o.operatorNamespace);
    this.services = make('services', '/api/v1/services');
    this.endpointSlices = make('endpointslices', '/apis/discovery.k8s.io/v1/endpointslices');
    this.operatorDeployments = make('operator deployments', `/apis/apps/v1/namespaces/${opNs}/deployments`);
    this.operatorStatefulSets = make('operator statefulsets', `/apis/apps/v1/namespaces/${opNs}/statefulsets`);
    this.coreDnsConfig = make(
      'coredns configmap',
      '/api/v1/namespaces/kube-system/configmaps?fieldSelector=metadata.name%3Dcoredns',
    );
    this.dnsRecordsConfig = make(
      'dnsrecords configmap',
      `/api/v1/namespaces/${opNs}/configmaps?fieldSelector=metadata.name%3Ddnsrecords`,
    );
    // The DNSConfig CRD exists only once the operator chart's CRDs are applied; until then the
    // informer retries with back-off (a 404 on the list).
    this.dnsConfigs = make('dnsconfigs', '/apis/tailscale.com/v1alpha1/dnsconfigs');
  }

  run(): Promise<void>[] {
    return [
      this.services,
      this.endpointSlices,
      this.operatorDeployments,
      this.operatorStatefulSets,
      this.coreDnsConfig,
      this.dnsRecordsConfig,
      this.dnsConfigs,
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

  stop() {
    if (this.pending) clearTimeout(this.pending);
    this.listeners.clear();
  }
}
