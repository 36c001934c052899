/**
 * Stand-in for the Tailscale Kubernetes operator's status writes.
 *
 * The test bed installs the real operator chart, but its Pods are kwok fakes, so nothing would
 * ever fill in what the operator writes. This controller watches each cluster and makes those
 * writes the way the real operator does. Everything below was read from the operator source of
 * the version whose chart and CRDs the test bed installs, tailscale.com v1.102.5
 * (test/testbed/scripts/fetch-charts.sh; github.com/tailscale/tailscale at tag v1.102.5), paths
 * relative to that module:
 *
 * LoadBalancer Services (cmd/k8s-operator/svc.go ServiceReconciler.maybeProvision):
 * - Handled when `spec.type: LoadBalancer` and `spec.loadBalancerClass: tailscale`
 *   (isTailscaleLoadBalancerService; a class-less LB only if the operator is the default LB,
 *   which is off in the chart) and not annotated `tailscale.com/proxy-group`.
 * - First validateService: not headless; `tailscale.com/hostname` (default
 *   `<namespace>-<name>`, sts.go nameForService) must be a DNS label (util/dnsname.ValidLabel);
 *   `tailscale.com/tags` entries must pass tailcfg.CheckTag. Invalid: Warning event reason
 *   `INVALIDSERVICE` with message "unable to provision proxy resources: invalid Service: <...>",
 *   condition TailscaleProxyReady=False reason ProxyInvalid, nothing else changes.
 * - Adds finalizer `tailscale.com/finalizer` (sts.go FinalizerName) with an Update.
 * - `status.loadBalancer.ingress` = `[{hostname: <device MagicDNS name without trailing dot>},
 *   {ip: <tailnet IP>}...]`: hostname and IP are separate entries; only IPs of the same family
 *   as `spec.clusterIP` are added (IPv4 100.64.0.0/10 for an IPv4 ClusterIP). The device name is
 *   the hostname the proxy registered with (sts.go deviceInfo reads `device_fqdn` from the proxy
 *   state Secret and trims the dot), so `<hostname>.<tailnet>`; the tailnet gives a second
 *   device with a taken name a `-1` suffix, which the stand-in copies.
 * - `status.conditions` gets `TailscaleProxyReady` True / ProxyCreated / ProxyCreated
 *   (k8s-operator/conditions.go updateCondition: lastTransitionTime truncated to seconds and kept
 *   while the status does not change; no observedGeneration on Services). Status is written only
 *   when it differs (apiequality.Semantic.DeepEqual) through the status subresource.
 * - Until the proxy Pod has logged in, the real operator keeps `ingress` empty with
 *   TailscaleProxyReady=False/ProxyPending; the stand-in has no proxy Pod and is ready at once.
 * - maybeCleanup (type or annotations no longer Tailscale, or deletion): deletes the proxy
 *   resources, removes the finalizer and the TailscaleProxyReady condition. The stand-in also
 *   clears an ingress it wrote (asked for by the test bed; the apiserver may not do it).
 *
 * Egress Services (svc.go, `tailscale.com/tailnet-fqdn` or `tailscale.com/tailnet-ip`):
 * - validateService as above plus: the FQDN must match operator.go isMagicDNSName
 *   `^[a-zA-Z0-9-]+\.[a-zA-Z0-9-]+\.ts\.net\.?$`, message `invalid value of annotation
 *   tailscale.com/tailnet-fqdn: "<v>" does not appear to be a valid MagicDNS name`; FQDN and IP
 *   annotations are mutually exclusive. The stand-in adds one check: the FQDN must be a name in
 *   the configured tailnet (a real operator would create a proxy that cannot resolve it).
 * - Finalizer as above; then sts.go reconcileHeadlessService creates, in the operator namespace,
 *   a headless Service `generateName: ts-<svc name>-` (statefulSetNameBase, cut to fit 52 chars),
 *   labels `tailscale.com/managed=true`, `tailscale.com/parent-resource=<name>`,
 *   `tailscale.com/parent-resource-ns=<ns>`, `tailscale.com/parent-resource-type=svc`
 *   (childResourceLabels; no owner reference: cross-namespace), `clusterIP: None`,
 *   `selector: {app: <svc UID>}`, `ipFamilyPolicy: PreferDualStack`. (It also creates the proxy
 *   StatefulSet, its state Secret with an auth key from the Tailscale API, and metrics
 *   resources: the stand-in does not model those.)
 * - Then, if `spec.externalName` or `spec.type` differ: `spec.externalName =
 *   <headless svc name>.<operator ns>.svc.<cluster domain>` (cluster domain from resolv.conf,
 *   default `cluster.local`), `spec.selector = nil`, `spec.type = ExternalName`, by Update.
 * - Condition TailscaleProxyReady True / ProxyCreated; no labels or annotations are added to the
 *   user's Service.
 *
 * DNSConfig (cmd/k8s-operator/nameserver.go NameserverReconciler; CRD
 * deploy/crds/tailscale.com_dnsconfigs.yaml, cluster-scoped, status subresource):
 * - The status field is `status.nameserver.ip` (types_tsdnsconfig.go NameserverStatus, json
 *   `nameserver`), not `status.nameserverStatus.ip`; the CRD's
 *   NameserverIP printer column reads `.status.nameserver.ip` too.
 * - Adds finalizer `tailscale.com/finalizer`; on deletion only removes it (the resources are
 *   owned by the DNSConfig and garbage-collected).
 * - More than one DNSConfig: Warning event `MultipleDNSConfigsPresent` ("Multiple DNSConfig
 *   resources found in cluster. Please ensure no more than one is present.") and it carries on.
 * - Creates in the operator namespace, from deploy/manifests/nameserver/*.yaml, ServiceAccount
 *   `nameserver`, Deployment `nameserver` (image tailscale/k8s-nameserver:stable unless
 *   `spec.nameserver.image`; replicas `spec.nameserver.replicas` or 1), Service `nameserver`
 *   (ClusterIP; selector app=nameserver; 53/UDP and 53/TCP -> 1053; `clusterIP` from
 *   `spec.nameserver.service.clusterIP` if set) and ConfigMap `dnsrecords`, all labelled
 *   childResourceLabels(<dnsconfig>, <operator ns>, "nameserver") plus
 *   `app.kubernetes.io/name=tailscale`, `app.kubernetes.io/component=nameserver`, with a
 *   controller owner reference to the DNSConfig.
 * - Once the `nameserver` Service has a ClusterIP (not "None"): `status.nameserver.ip =
 *   <ClusterIP>` and condition `NameserverReady` True / NameserverCreated / NameserverCreated with
 *   `observedGeneration` = the DNSConfig's generation (k8s-operator/conditions.go
 *   SetDNSConfigCondition).
 * - The real dnsrecords reconciler (dnsrecords.go) later fills ConfigMap `dnsrecords` with
 *   proxy Pod IPs; there are no proxy Pods here, so the stand-in leaves it empty.
 *
 * Events use source component `tailscale-operator` (operator.go GetEventRecorderFor).
 *
 * Mechanics: per cluster, a list+watch of all Services and of DNSConfigs (resourceVersion,
 * bookmarks, server-side timeouts, re-list on 410 Gone or any failure, back-off while an
 * apiserver is away) feeds one work queue; every write is a merge patch with the cached
 * resourceVersion as precondition and happens only when the plan from operatorReconcile.ts says
 * something differs. Tailnet names and 100.64.0.0/10 addresses come from one registry shared by
 * all clusters (deterministic from `<cluster>/<namespace>/<name>`, kept from the Service's status
 * across stand-in restarts). Requests go through the kubeconfig's own TLS and credentials
 * (KubeConfig.applyToHTTPSOptions); nothing here logs them.
 */
import {
  Informer,
  KubeRest,
  MERGE_PATCH,
  StoppedError,
  WorkQueue,
  describe,
  isStatus,
  sleep,
  untilOrStopped,
  type KubeConfigLike,
  type KubeObject,
} from '../kube/kubeClient';
import {
  ConditionProxyReady,
  DefaultClusterDomain,
  EventSourceComponent,
  FinalizerName,
  LabelManaged,
  LabelParentName,
  LabelParentNamespace,
  LabelParentType,
  NameserverName,
  TailnetDeviceRegistry,
  childResourceLabels,
  classifyService,
  conditionTime,
  desiredDNSConfigStatus,
  hasLabels,
  ingressLooksOurs,
  nameserverManifests,
  normalizeTailnet,
  planDNSConfig,
  planService,
  type DNSConfigObject,
  type Manifest,
  type ServiceObject,
  type TailnetDevice,
} from './operatorReconcile';

export type { KubeConfigLike } from '../kube/kubeClient';

export interface OperatorStandInOptions {
  /** A `KubeConfig` per cluster (only `getCurrentCluster` and `applyToHTTPSOptions` are used). */
  clusters: Array<{ name: string; kubeConfig: KubeConfigLike }>;
  /** MagicDNS domain of the tailnet, e.g. `tailmesh-test.ts.net`. */
  tailnet: string;
  /** Namespace the operator chart is installed in (default `tailscale`). */
  operatorNamespace?: string;
  log?: (msg: string) => void;
  /** Cluster DNS domain for egress `externalName`s (default `cluster.local`). */
  clusterDomain?: string;
  /** Add `tailscale.com/finalizer` like the real operator (default true). */
  finalizers?: boolean;
  /** Re-check every known object this often, in seconds (default 30). */
  resyncSeconds?: number;
  /** The tailnet's device registry, when shared with the tailnet model; a private one otherwise. */
  registry?: TailnetDeviceRegistry;
}

export interface OperatorStandIn {
  /** Ends all watches, requests and timers; resolves when every loop has finished. */
  stop(): Promise<void>;
  /** The tailnet devices the stand-in currently pretends exist (one per ingress Service). */
  devices(): TailnetDevice[];
}

// ---- One cluster -----------------------------------------------------------------------------------------

interface Shared {
  tailnet: string;
  operatorNamespace: string;
  clusterDomain: string;
  finalizers: boolean;
  resyncMs: number;
  registry: TailnetDeviceRegistry;
  signal: AbortSignal;
  log: (msg: string) => void;
}

interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
}

class ClusterController {
  private readonly rest: KubeRest;
  private readonly services: Informer<ServiceObject>;
  private readonly dnsConfigs: Informer<DNSConfigObject>;
  readonly queue = new WorkQueue();
  private readonly failures = new Map<string, number>();
  private readonly lastLog = new Map<string, string>();
  private readonly lastEvent = new Map<string, string>();

  constructor(
    private readonly name: string,
    kc: KubeConfigLike,
    private readonly s: Shared,
  ) {
    this.rest = new KubeRest(kc, s.signal);
    const log = (msg: string) => s.log(`${name}: ${msg}`);
    this.services = new Informer<ServiceObject>({
      what: 'services',
      listPath: '/api/v1/services',
      rest: this.rest,
      signal: s.signal,
      log,
      onEvent: (_type, svc) => this.onService(svc),
      watchTimeoutSeconds: 60,
    });
    this.dnsConfigs = new Informer<DNSConfigObject>({
      what: 'dnsconfigs.tailscale.com',
      listPath: '/apis/tailscale.com/v1alpha1/dnsconfigs',
      rest: this.rest,
      signal: s.signal,
      log,
      onEvent: () => this.enqueueDNSConfigs(),
      watchTimeoutSeconds: 60,
    });
  }

  private log(msg: string) {
    this.s.log(`${this.name}: ${msg}`);
  }

  start(): Promise<void>[] {
    const guard = (what: string, p: Promise<void>) =>
      p.catch(err => this.log(`${what} ended unexpectedly: ${describe(err)}`));
    return [
      guard('services informer', this.services.run()),
      guard('dnsconfigs informer', this.dnsConfigs.run()),
      guard('worker', this.work()),
      guard('resync', this.resync()),
    ];
  }

  private isRelevant(svc: ServiceObject): boolean {
    const kind = classifyService(svc).kind;
    return (
      kind === 'ingress' ||
      kind === 'egress' ||
      (svc.metadata.finalizers ?? []).includes(FinalizerName) ||
      (svc.status?.conditions ?? []).some(c => c.type === ConditionProxyReady) ||
      ingressLooksOurs(svc.status?.loadBalancer?.ingress, this.s.tailnet)
    );
  }

  private onService(svc: ServiceObject) {
    const { namespace, name } = svc.metadata;
    if (this.isRelevant(svc)) this.queue.add(`svc:${namespace}/${name}`);
    if (namespace !== this.s.operatorNamespace) return;
    const labels = svc.metadata.labels ?? {};
    if (labels[LabelManaged] === 'true' && labels[LabelParentType] === 'svc' && labels[LabelParentName]) {
      this.queue.add(`svc:${labels[LabelParentNamespace]}/${labels[LabelParentName]}`);
    }
    if (name === NameserverName || labels[LabelParentType] === 'nameserver') this.enqueueDNSConfigs();
  }

  private enqueueDNSConfigs() {
    for (const key of this.dnsConfigs.cache.keys()) this.queue.add(`dns:${key}`);
  }

  private async resync() {
    while (!this.s.signal.aborted) {
      await sleep(this.s.resyncMs, this.s.signal);
      if (this.s.signal.aborted) return;
      for (const svc of this.services.cache.values()) {
        if (this.isRelevant(svc)) this.queue.add(`svc:${Informer.keyOf(svc.metadata)}`);
      }
      // Devices of Services that are gone while a watch was down.
      for (const d of this.s.registry.list()) {
        if (d.key.startsWith(`${this.name}/`)) this.queue.add(`svc:${d.key.slice(this.name.length + 1)}`);
      }
      this.enqueueDNSConfigs();
    }
  }

  private async work() {
    await untilOrStopped(this.services.synced, this.s.signal);
    for (;;) {
      const key = await this.queue.next();
      if (key === undefined || this.s.signal.aborted) return;
      try {
        if (key.startsWith('svc:')) await this.reconcileService(key.slice(4));
        else if (key.startsWith('dns:')) await this.reconcileDNSConfig(key.slice(4));
        this.failures.delete(key);
      } catch (err) {
        if (this.s.signal.aborted || err instanceof StoppedError) return;
        if (isStatus(err, 409)) {
          // Optimistic lock lost: the watch brings the newer object; try again shortly.
          this.queue.addAfter(key, 200);
          continue;
        }
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        const delay = Math.min(250 * 2 ** (n - 1), 30_000);
        if (n === 1 || n % 5 === 0) {
          this.log(`reconcile ${key} failed (attempt ${n}, retrying in ${delay} ms): ${describe(err)}`);
        }
        this.queue.addAfter(key, delay);
      }
    }
  }

  private logOnce(key: string, lines: string[]) {
    const text = lines.join('; ');
    if (text && this.lastLog.get(key) !== text) this.log(`${key}: ${text}`);
    if (text) this.lastLog.set(key, text);
    else this.lastLog.delete(key);
  }

  // -- Services --

  private servicePath(ns: string, name?: string, sub?: string) {
    return `/api/v1/namespaces/${encodeURIComponent(ns)}/services${name ? `/${encodeURIComponent(name)}` : ''}${sub ? `/${sub}` : ''}`;
  }

  private async patchService(svc: ServiceObject, patch: Record<string, unknown>, sub?: 'status') {
    const { namespace = '', name = '', resourceVersion } = svc.metadata;
    const body = { ...patch, metadata: { ...(patch.metadata as object | undefined), resourceVersion } };
    const out = await this.rest.json<ServiceObject>('PATCH', this.servicePath(namespace, name, sub), {
      body,
      contentType: MERGE_PATCH,
    });
    this.services.observe(out);
    return out;
  }

  private async deleteService(ns: string, name: string) {
    try {
      await this.rest.json('DELETE', this.servicePath(ns, name));
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
    this.services.forget(`${ns}/${name}`);
  }

  private async reconcileService(key: string) {
    const slash = key.indexOf('/');
    const ns = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const deviceKey = `${this.name}/${key}`;
    const opNs = this.s.operatorNamespace;
    const proxies = [...this.services.cache.values()].filter(
      s => s.metadata.namespace === opNs && hasLabels(s, childResourceLabels(name, ns, 'svc')),
    );
    const svc = this.services.cache.get(key);
    if (!svc) {
      // Deleted (without our finalizer, or while we were away): forget its device and proxy.
      if (this.s.registry.release(deviceKey)) this.log(`service ${key}: gone, tailnet device released`);
      for (const p of proxies) {
        this.log(`service ${key}: gone, deleting egress proxy Service ${opNs}/${p.metadata.name}`);
        await this.deleteService(opNs, p.metadata.name ?? '');
      }
      this.lastLog.delete(`service ${key}`);
      this.lastEvent.delete(`service ${key}`);
      return;
    }

    const plan = planService({
      svc,
      tailnet: this.s.tailnet,
      operatorNamespace: opNs,
      clusterDomain: this.s.clusterDomain,
      manageFinalizer: this.s.finalizers,
      proxyServices: proxies,
      device: (label, observed) => this.s.registry.ensure(deviceKey, label, observed),
      now: new Date(),
    });
    this.logOnce(`service ${key}`, plan.log);

    if (plan.event) {
      await this.emitEvent(
        `service ${key}`,
        ns,
        {
          apiVersion: 'v1',
          kind: 'Service',
          name,
          namespace: ns,
          uid: svc.metadata.uid,
          resourceVersion: svc.metadata.resourceVersion,
        },
        plan.event,
      );
    } else {
      this.lastEvent.delete(`service ${key}`);
    }

    let cur = svc;
    if (plan.action === 'cleanup') {
      for (const p of plan.deleteProxyServices) await this.deleteService(opNs, p);
      if (plan.status && !svc.metadata.deletionTimestamp) cur = await this.patchService(cur, { status: plan.status }, 'status');
      if (plan.finalizers) cur = await this.patchService(cur, { metadata: { finalizers: plan.finalizers } });
      if (plan.releaseDevice && this.s.registry.release(deviceKey)) {
        this.log(`service ${key}: tailnet device released`);
      }
      return;
    }
    if (plan.action === 'skip') return;

    if (plan.finalizers) cur = await this.patchService(cur, { metadata: { finalizers: plan.finalizers } });
    if (plan.createProxyService) {
      const created = await this.rest.json<ServiceObject>('POST', this.servicePath(opNs), {
        body: plan.createProxyService,
      });
      this.services.observe(created);
      this.log(`service ${key}: created egress proxy Service ${opNs}/${created.metadata.name}`);
      this.queue.add(`svc:${key}`); // next pass points externalName at it
      return;
    }
    for (const p of plan.deleteProxyServices) await this.deleteService(opNs, p);
    if (plan.specPatch) cur = await this.patchService(cur, { spec: plan.specPatch });
    if (plan.status) await this.patchService(cur, { status: plan.status }, 'status');
  }

  // -- DNSConfig --

  private dnsConfigPath(name: string, sub?: string) {
    return `/apis/tailscale.com/v1alpha1/dnsconfigs/${encodeURIComponent(name)}${sub ? `/${sub}` : ''}`;
  }

  private async patchDNSConfig(dc: DNSConfigObject, patch: Record<string, unknown>, sub?: 'status') {
    const body = {
      ...patch,
      metadata: { ...(patch.metadata as object | undefined), resourceVersion: dc.metadata.resourceVersion },
    };
    const out = await this.rest.json<DNSConfigObject>('PATCH', this.dnsConfigPath(dc.metadata.name ?? '', sub), {
      body,
      contentType: MERGE_PATCH,
    });
    this.dnsConfigs.observe(out);
    return out;
  }

  /** GET, else create; an object that already exists is used as it is (nameserver.go createOrUpdate). */
  private async ensure<T extends KubeObject>(collection: string, manifest: T): Promise<T> {
    const path = `${collection}/${encodeURIComponent(manifest.metadata.name ?? '')}`;
    try {
      return await this.rest.json<T>('GET', path);
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
    try {
      const created = await this.rest.json<T>('POST', collection, { body: manifest });
      this.log(`created ${manifest.metadata.namespace}/${manifest.metadata.name} (${collection.split('/').pop()})`);
      return created;
    } catch (err) {
      if (!isStatus(err, 409)) throw err;
      return this.rest.json<T>('GET', path);
    }
  }

  private async reconcileDNSConfig(name: string) {
    const dc = this.dnsConfigs.cache.get(name);
    if (!dc) {
      this.lastLog.delete(`dnsconfig ${name}`);
      this.lastEvent.delete(`dnsconfig ${name}`);
      return;
    }
    const plan = planDNSConfig(dc, this.dnsConfigs.cache.size, this.s.finalizers);
    this.logOnce(`dnsconfig ${name}`, plan.log);
    if (plan.event) {
      const involved: InvolvedObject = {
        apiVersion: 'tailscale.com/v1alpha1',
        kind: 'DNSConfig',
        name,
        uid: dc.metadata.uid,
        resourceVersion: dc.metadata.resourceVersion,
      };
      // Events about cluster-scoped objects go to the default namespace (client-go recorder).
      await this.emitEvent(`dnsconfig ${name}`, 'default', involved, plan.event);
    }
    let cur = dc;
    if (plan.finalizers) cur = await this.patchDNSConfig(cur, { metadata: { finalizers: plan.finalizers } });
    if (plan.action === 'cleanup') return;

    const opNs = encodeURIComponent(this.s.operatorNamespace);
    const m = nameserverManifests(cur, this.s.operatorNamespace);
    await this.ensure<Manifest>(`/api/v1/namespaces/${opNs}/serviceaccounts`, m.serviceAccount);
    await this.ensure<Manifest>(`/api/v1/namespaces/${opNs}/configmaps`, m.configMap);
    const deployment = await this.ensure<Manifest>(`/apis/apps/v1/namespaces/${opNs}/deployments`, m.deployment);
    await this.syncDeployment(deployment, m.deployment);
    let svc = this.services.cache.get(`${this.s.operatorNamespace}/${NameserverName}`);
    if (!svc) {
      svc = await this.ensure<ServiceObject>(`/api/v1/namespaces/${opNs}/services`, m.service);
      this.services.observe(svc);
    }
    const status = desiredDNSConfigStatus(cur, svc.spec?.clusterIP, new Date());
    if (status) {
      await this.patchDNSConfig(cur, { status }, 'status');
      this.log(`dnsconfig ${name}: status.nameserver.ip = ${status.nameserver.ip}`);
    }
  }

  /** nameserver.go replaces the Deployment spec each pass; the stand-in patches what differs. */
  private async syncDeployment(existing: Manifest, desired: Manifest) {
    type DeploymentSpec = { replicas?: number; template?: { spec?: Record<string, unknown> } };
    const have = (existing.spec ?? {}) as DeploymentSpec;
    const want = desired.spec as DeploymentSpec;
    const pick = (s: DeploymentSpec) => {
      const pod = s.template?.spec ?? {};
      const containers = (pod.containers ?? []) as Array<{ image?: string }>;
      return JSON.stringify([
        s.replicas ?? 1,
        containers[0]?.image,
        pod.tolerations ?? null,
        pod.affinity ?? null,
        pod.nodeSelector ?? null,
      ]);
    };
    if (pick(have) === pick(want)) return;
    const pod = want.template?.spec ?? {};
    const out = await this.rest.json<Manifest>(
      'PATCH',
      `/apis/apps/v1/namespaces/${encodeURIComponent(this.s.operatorNamespace)}/deployments/${NameserverName}`,
      {
        contentType: MERGE_PATCH,
        body: {
          metadata: { resourceVersion: existing.metadata.resourceVersion },
          spec: {
            replicas: want.replicas,
            template: {
              spec: {
                containers: pod.containers,
                tolerations: pod.tolerations ?? null,
                affinity: pod.affinity ?? null,
                nodeSelector: pod.nodeSelector ?? null,
              },
            },
          },
        },
      },
    );
    this.log(`updated ${this.s.operatorNamespace}/${NameserverName} deployment (rv ${out.metadata.resourceVersion})`);
  }

  // -- Events --

  /** One Event per distinct message per object (the real recorder would bump a count instead). */
  private async emitEvent(
    key: string,
    namespace: string,
    involvedObject: InvolvedObject,
    ev: { type: string; reason: string; message: string },
  ) {
    const sig = `${ev.reason}|${ev.message}`;
    if (this.lastEvent.get(key) === sig) return;
    const now = conditionTime(new Date());
    const nanos = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
    try {
      await this.rest.json('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: `${involvedObject.name}.${nanos.toString(16)}`, namespace },
          involvedObject,
          reason: ev.reason,
          message: ev.message.slice(0, 1024),
          type: ev.type,
          source: { component: EventSourceComponent },
          reportingComponent: EventSourceComponent,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
      this.lastEvent.set(key, sig);
    } catch (err) {
      if (err instanceof StoppedError) throw err;
      this.log(`${key}: could not record event ${ev.reason}: ${describe(err)}`);
    }
  }
}

// ---- Entry point -------------------------------------------------------------------------------------------

/**
 * Starts one controller per cluster and returns at once (clusters whose apiserver is not up are
 * retried in the background). A failing cluster never affects the others.
 */
export async function startOperatorStandIn(options: OperatorStandInOptions): Promise<OperatorStandIn> {
  const tailnet = normalizeTailnet(options.tailnet);
  const names = options.clusters.map(c => c.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new Error(`duplicate cluster name ${dup}`);
  for (const c of options.clusters) {
    if (!c.kubeConfig.getCurrentCluster()) throw new Error(`cluster ${c.name}: kubeconfig has no current cluster`);
  }
  const log = options.log ?? ((msg: string) => console.log(`[operator stand-in] ${msg}`));
  const stopper = new AbortController();
  const registry = options.registry ?? new TailnetDeviceRegistry(tailnet);
  const shared: Shared = {
    tailnet,
    operatorNamespace: options.operatorNamespace ?? 'tailscale',
    clusterDomain: options.clusterDomain ?? DefaultClusterDomain,
    finalizers: options.finalizers ?? true,
    resyncMs: Math.max(1, options.resyncSeconds ?? 30) * 1000,
    registry,
    signal: stopper.signal,
    log: msg => {
      try {
        log(msg);
      } catch {
        // a broken logger must not break the controller
      }
    },
  };
  const controllers = options.clusters.map(c => new ClusterController(c.name, c.kubeConfig, shared));
  const runs = controllers.flatMap(c => c.start());
  shared.log(
    `watching ${names.join(', ') || 'no clusters'} (tailnet ${tailnet}, operator namespace ${shared.operatorNamespace})`,
  );
  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        stopper.abort();
        for (const c of controllers) c.queue.close();
        await Promise.allSettled(runs);
      })();
      return stopping;
    },
    devices: () => registry.list(),
  };
}
