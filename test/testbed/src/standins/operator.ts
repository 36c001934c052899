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
 *   `nameserver`), not `status.nameserverStatus.ip` as /work/shared/MESH-NOTES.md says; the CRD's
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
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
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
  type ObjectMeta,
  type ServiceObject,
  type TailnetDevice,
} from './operatorReconcile';

/** What the stand-in uses of a KubeConfig: its server, TLS and credentials. */
export type KubeConfigLike = Pick<KubeConfig, 'getCurrentCluster' | 'applyToHTTPSOptions'>;

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
}

export interface OperatorStandIn {
  /** Ends all watches, requests and timers; resolves when every loop has finished. */
  stop(): Promise<void>;
  /** The tailnet devices the stand-in currently pretends exist (one per ingress Service). */
  devices(): TailnetDevice[];
}

// ---- A small JSON client over the kubeconfig's TLS and credentials -------------------------------------

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

class StoppedError extends Error {
  constructor() {
    super('stand-in stopped');
    this.name = 'StoppedError';
  }
}

type Query = Record<string, string | number | boolean | undefined>;

interface CallOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  /** Streams newline-delimited JSON of a 200 response; return 'stop' to end the stream. */
  onLine?: (line: string) => 'continue' | 'stop';
}

const MERGE_PATCH = 'application/merge-patch+json';

function apiError(status: number, body: string): KubeApiError {
  let reason = '';
  let message = body.trim().slice(0, 300);
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object') {
      const st = parsed as { reason?: unknown; message?: unknown };
      if (typeof st.reason === 'string') reason = st.reason;
      if (typeof st.message === 'string') message = st.message;
    }
  } catch {
    // not JSON: keep the text
  }
  return new KubeApiError(status, reason, message);
}

class KubeRest {
  constructor(
    private readonly kc: KubeConfigLike,
    private readonly signal: AbortSignal,
  ) {}

  async json<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
    const { status, body } = await this.call(method, path, opts);
    if (status < 200 || status > 299) throw apiError(status, body);
    return (body ? JSON.parse(body) : {}) as T;
  }

  /** Raw status and body (non-streamed part); the caller interprets non-2xx. */
  async call(method: string, path: string, opts: CallOptions): Promise<{ status: number; body: string }> {
    if (this.signal.aborted) throw new StoppedError();
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const reqOpts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(reqOpts);
    const url = new URL(cluster.server.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = {};
    const rawHeaders: unknown = reqOpts.headers;
    if (rawHeaders && typeof rawHeaders === 'object' && !Array.isArray(rawHeaders)) {
      for (const [k, v] of Object.entries(rawHeaders as Record<string, unknown>)) {
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
      }
    }
    headers.Accept = 'application/json';
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['Content-Type'] = opts.contentType ?? 'application/json';
    }

    const ac = new AbortController();
    let timedOut = false;
    const onStop = () => ac.abort();
    this.signal.addEventListener('abort', onStop, { once: true });
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, opts.timeoutMs ?? 20_000);
    let stoppedByReader = false;
    let socketClosed: Promise<void> | undefined;
    try {
      return await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const mod = url.protocol === 'http:' ? http : https;
        const req = mod.request(
          url,
          { method, headers, agent: reqOpts.agent, auth: reqOpts.auth, signal: ac.signal },
          res => {
            const status = res.statusCode ?? 0;
            const streaming = !!opts.onLine && status === 200;
            let body = '';
            let partial = '';
            let ended = false;
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              if (!streaming) {
                body += chunk;
                return;
              }
              partial += chunk;
              for (let i = partial.indexOf('\n'); i >= 0 && !stoppedByReader; i = partial.indexOf('\n')) {
                const line = partial.slice(0, i);
                partial = partial.slice(i + 1);
                if (line.trim() && opts.onLine?.(line) === 'stop') {
                  stoppedByReader = true;
                  resolve({ status, body: '' });
                  ac.abort();
                }
              }
            });
            res.on('end', () => {
              ended = true;
              if (streaming && partial.trim() && !stoppedByReader) opts.onLine?.(partial);
              resolve({ status, body });
            });
            res.on('error', reject);
            res.on('close', () => {
              if (!ended) reject(new Error('connection closed before the response ended'));
            });
          },
        );
        req.on('error', reject);
        req.on('socket', sock => {
          socketClosed = new Promise(r => (sock.destroyed && !sock.connecting ? r() : sock.once('close', () => r())));
        });
        if (payload !== undefined) req.write(payload);
        req.end();
      });
    } catch (err) {
      if (stoppedByReader) return { status: 200, body: '' };
      if (this.signal.aborted) throw new StoppedError();
      if (timedOut) throw new Error(`request timed out: ${method} ${path}`);
      throw err;
    } finally {
      clearTimeout(timer);
      this.signal.removeEventListener('abort', onStop);
      // An aborted request's socket closes asynchronously; let it, so stop() leaves no handle.
      if (ac.signal.aborted && socketClosed) await settleWithin(socketClosed, 1000);
    }
  }
}

/** Waits for `p`, at most `ms`, without leaving the timer behind. */
async function settleWithin(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>(r => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

function describe(err: unknown): string {
  if (err instanceof KubeApiError) return `HTTP ${err.status}${err.reason ? ` ${err.reason}` : ''}: ${err.message}`;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}

const isStatus = (err: unknown, status: number) => err instanceof KubeApiError && err.status === status;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Resolves when `p` does or when the stand-in stops, without leaving a listener behind. */
function untilOrStopped(p: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    void p.then(done);
  });
}

/** resourceVersion `a` is not older than `b` (etcd revisions; opaque values count as newer). */
function notOlder(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return true;
  const x = Number(a);
  const y = Number(b);
  return Number.isFinite(x) && Number.isFinite(y) ? x >= y : true;
}

// ---- List + watch ------------------------------------------------------------------------------------

interface KubeObject {
  metadata: ObjectMeta;
}

type WatchOutcome = { kind: 'closed'; rv: string } | { kind: 'gone' };

class Informer<T extends KubeObject> {
  readonly cache = new Map<string, T>();
  private resolveSynced!: () => void;
  readonly synced: Promise<void> = new Promise(r => (this.resolveSynced = r));

  constructor(
    private readonly o: {
      what: string;
      listPath: string;
      rest: KubeRest;
      signal: AbortSignal;
      log: (msg: string) => void;
      onEvent: (type: 'upsert' | 'delete', obj: T) => void;
      watchTimeoutSeconds: number;
    },
  ) {}

  static keyOf(m: ObjectMeta): string {
    return m.namespace ? `${m.namespace}/${m.name}` : (m.name ?? '');
  }

  /** Record an object this process just wrote, so the next reconcile does not act on an older one. */
  observe(obj: T) {
    const key = Informer.keyOf(obj.metadata);
    const cur = this.cache.get(key);
    if (!cur || notOlder(obj.metadata.resourceVersion, cur.metadata.resourceVersion)) this.cache.set(key, obj);
  }

  forget(key: string) {
    this.cache.delete(key);
  }

  async run(): Promise<void> {
    const { signal, log, what } = this.o;
    let delay = 0;
    let failing = false;
    let lastError = '';
    while (!signal.aborted) {
      if (delay) await sleep(delay * (0.8 + Math.random() * 0.4), signal);
      if (signal.aborted) break;
      try {
        const list = await this.o.rest.json<{ metadata?: { resourceVersion?: string }; items?: T[] }>(
          'GET',
          this.o.listPath,
        );
        this.replace(list.items ?? []);
        this.resolveSynced();
        if (failing) log(`${what}: list+watch re-established`);
        failing = false;
        lastError = '';
        delay = 0;
        let rv = list.metadata?.resourceVersion ?? '';
        for (;;) {
          const outcome = await this.watch(rv);
          if (outcome.kind === 'gone') break; // 410: resourceVersion compacted away, list again
          rv = outcome.rv;
          if (signal.aborted) break;
        }
      } catch (err) {
        if (signal.aborted || err instanceof StoppedError) break;
        const msg = isStatus(err, 404) ? `${describe(err)} (API not served yet?)` : describe(err);
        // Same failure, same line: "connect ECONNRESET" and "read ECONNRESET" count as one.
        const code = (err as { code?: unknown }).code;
        const sig = typeof code === 'string' ? code : msg;
        if (!failing || sig !== lastError) log(`${what}: ${msg}; retrying with back-off`);
        failing = true;
        lastError = sig;
        delay = delay ? Math.min(delay * 2, 5000) : 250;
      }
    }
  }

  private replace(items: T[]) {
    const seen = new Set<string>();
    for (const item of items) {
      const key = Informer.keyOf(item.metadata);
      seen.add(key);
      this.cache.set(key, item);
    }
    for (const [key, old] of [...this.cache]) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit('delete', old);
      }
    }
    for (const item of items) this.emit('upsert', item);
  }

  private emit(type: 'upsert' | 'delete', obj: T) {
    try {
      this.o.onEvent(type, obj);
    } catch (err) {
      this.o.log(`${this.o.what}: event handler failed: ${describe(err)}`);
    }
  }

  private async watch(rv: string): Promise<WatchOutcome> {
    let lastRv = rv;
    let gone = false;
    let failure: string | undefined;
    const timeoutSeconds = Math.round(this.o.watchTimeoutSeconds * (1 + Math.random()));
    const res = await this.o.rest.call('GET', this.o.listPath, {
      query: { watch: 1, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds },
      // The server ends the watch after timeoutSeconds; a silent connection past that is dead.
      timeoutMs: (timeoutSeconds + 30) * 1000,
      onLine: line => {
        let ev: { type?: string; object?: unknown };
        try {
          ev = JSON.parse(line) as { type?: string; object?: unknown };
        } catch {
          return 'continue';
        }
        if (ev.type === 'ERROR') {
          const st = (ev.object ?? {}) as { code?: number; message?: string };
          if (st.code === 410) gone = true;
          else failure = `watch error ${st.code ?? '?'}: ${st.message ?? ''}`;
          return 'stop';
        }
        const obj = ev.object as T | undefined;
        if (!obj?.metadata) return 'continue';
        if (obj.metadata.resourceVersion) lastRv = obj.metadata.resourceVersion;
        const key = Informer.keyOf(obj.metadata);
        if (ev.type === 'ADDED' || ev.type === 'MODIFIED') {
          const cur = this.cache.get(key);
          if (!cur || notOlder(obj.metadata.resourceVersion, cur.metadata.resourceVersion)) {
            this.cache.set(key, obj);
            this.emit('upsert', obj);
          }
        } else if (ev.type === 'DELETED') {
          this.cache.delete(key);
          this.emit('delete', obj);
        }
        return 'continue';
      },
    });
    if (res.status === 410) return { kind: 'gone' };
    if (res.status !== 200) throw apiError(res.status, res.body);
    if (gone) return { kind: 'gone' };
    if (failure) throw new Error(failure);
    return { kind: 'closed', rv: lastRv };
  }
}

// ---- Work queue ----------------------------------------------------------------------------------------

class WorkQueue {
  private readonly items = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private wake: (() => void) | undefined;
  private closed = false;

  add(key: string) {
    if (this.closed) return;
    this.items.add(key);
    this.wake?.();
  }

  addAfter(key: string, ms: number) {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.add(key);
    }, ms);
    this.timers.add(t);
  }

  async next(): Promise<string | undefined> {
    while (!this.closed) {
      const first = this.items.values().next();
      if (!first.done) {
        this.items.delete(first.value);
        return first.value;
      }
      await new Promise<void>(r => (this.wake = r));
      this.wake = undefined;
    }
    return undefined;
  }

  close() {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.wake?.();
  }
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
  const registry = new TailnetDeviceRegistry(tailnet);
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
