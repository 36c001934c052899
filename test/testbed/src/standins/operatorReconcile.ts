/**
 * Pure decisions of the Tailscale operator stand-in (see `operator.ts` for what is copied from the
 * real operator and where from). Nothing here talks to a cluster: given the objects, these functions
 * say what the real operator (tailscale.com v1.102.5, cmd/k8s-operator) would write, so the logic
 * is unit-tested without an apiserver. The one stateful piece, `TailnetDeviceRegistry`, stands in
 * for the tailnet's coordination server: it hands out MagicDNS names and 100.64.0.0/10 addresses.
 */

// ---- Names the real operator uses (cmd/k8s-operator/sts.go, svc.go, nameserver.go) ----------------

export const AnnotationHostname = 'tailscale.com/hostname';
export const AnnotationTags = 'tailscale.com/tags';
export const AnnotationExpose = 'tailscale.com/expose';
export const AnnotationTailnetTargetFQDN = 'tailscale.com/tailnet-fqdn';
export const AnnotationTailnetTargetIP = 'tailscale.com/tailnet-ip';
export const AnnotationTailnetTargetIPOld = 'tailscale.com/ts-tailnet-target-ip';
export const AnnotationProxyGroup = 'tailscale.com/proxy-group';
export const FinalizerName = 'tailscale.com/finalizer';
export const LabelManaged = 'tailscale.com/managed';
export const LabelParentType = 'tailscale.com/parent-resource-type';
export const LabelParentName = 'tailscale.com/parent-resource';
export const LabelParentNamespace = 'tailscale.com/parent-resource-ns';
/** `tsapi.ProxyReady`: the condition the operator sets on Services it handles. */
export const ConditionProxyReady = 'TailscaleProxyReady';
/** `tsapi.NameserverReady`: the condition on DNSConfig. */
export const ConditionNameserverReady = 'NameserverReady';
export const ReasonProxyCreated = 'ProxyCreated';
export const ReasonProxyInvalid = 'ProxyInvalid';
export const ReasonProxyFailed = 'ProxyFailed';
export const ReasonNameserverCreated = 'NameserverCreated';
export const ReasonMultipleDNSConfigsPresent = 'MultipleDNSConfigsPresent';
export const MessageMultipleDNSConfigsPresent =
  'Multiple DNSConfig resources found in cluster. Please ensure no more than one is present.';
/** Event reason of `recorder.Event(svc, Warning, "INVALIDSERVICE", msg)` in svc.go. */
export const EventReasonInvalidService = 'INVALIDSERVICE';
/** `mgr.GetEventRecorderFor("tailscale-operator")` in operator.go. */
export const EventSourceComponent = 'tailscale-operator';
export const NameserverName = 'nameserver';
export const NameserverConfigMapName = 'dnsrecords';
export const DefaultNameserverImageRepo = 'tailscale/k8s-nameserver';
export const DefaultNameserverImageTag = 'stable';
export const DefaultClusterDomain = 'cluster.local';
export const TailscaleLoadBalancerClass = 'tailscale';

// ---- Minimal JSON shapes (what the apiserver sends; only the fields used here) --------------------

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string;
  ownerReferences?: OwnerReference[];
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface LoadBalancerIngress {
  hostname?: string;
  ip?: string;
  ipMode?: string;
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
}

export interface ServiceSpec {
  type?: string;
  clusterIP?: string;
  externalName?: string;
  loadBalancerClass?: string;
  selector?: Record<string, string> | null;
  ports?: ServicePort[];
  ipFamilyPolicy?: string;
}

export interface ServiceObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: ServiceSpec;
  status?: {
    loadBalancer?: { ingress?: LoadBalancerIngress[] };
    conditions?: Condition[];
  };
}

export interface DNSConfigObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: {
    nameserver?: {
      image?: { repo?: string; tag?: string };
      replicas?: number;
      service?: { clusterIP?: string };
      pod?: {
        tolerations?: unknown[];
        affinity?: unknown;
        nodeSelector?: Record<string, string>;
      };
    };
  };
  /** The CRD's field is `status.nameserver.ip` (types_tsdnsconfig.go `NameserverStatus`). */
  status?: { conditions?: Condition[]; nameserver?: { ip?: string } };
}

/** A generic manifest the executor creates as is (ServiceAccount, ConfigMap, Deployment). */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

// ---- Tailnet names and addresses -----------------------------------------------------------------

/** `tailmesh-test.ts.net.` / `.Tailmesh-Test.ts.net` -> `tailmesh-test.ts.net`. */
export function normalizeTailnet(tailnet: string): string {
  const t = tailnet.trim().toLowerCase().replace(/^\.+/, '').replace(/\.+$/, '');
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(t)) {
    throw new Error(`tailnet must be a MagicDNS domain such as example.ts.net, got "${tailnet}"`);
  }
  return t;
}

/** operator.go `isMagicDNSName`, regex copied verbatim. */
export function isMagicDNSName(name: string): boolean {
  return /^[a-zA-Z0-9-]+\.[a-zA-Z0-9-]+\.ts\.net\.?$/.test(name);
}

/** Stand-in check on top of the real one: the FQDN must name a device of *this* tailnet. */
export function isInTailnet(fqdn: string, tailnet: string): boolean {
  const name = fqdn.toLowerCase().replace(/\.$/, '');
  const suffix = `.${tailnet}`;
  if (!name.endsWith(suffix)) return false;
  const host = name.slice(0, -suffix.length);
  return /^[a-z0-9-]+$/.test(host);
}

const isAlphaNum = (c: string) => /^[A-Za-z0-9]$/.test(c);

/** util/dnsname `ValidLabel`: returns the error text, or undefined when valid. */
export function dnsLabelError(label: string): string | undefined {
  if (label.length === 0) return 'empty DNS label';
  if (label.length > 63) return `${JSON.stringify(label)} is too long, max length is 63 bytes`;
  if (!isAlphaNum(label[0])) {
    return `${JSON.stringify(label)} is not a valid DNS label: must start with a letter or number`;
  }
  if (!isAlphaNum(label[label.length - 1])) {
    return `${JSON.stringify(label)} is not a valid DNS label: must end with a letter or number`;
  }
  for (let i = 1; i < label.length - 1; i++) {
    if (!isAlphaNum(label[i]) && label[i] !== '-') {
      return `${JSON.stringify(label)} is not a valid DNS label: contains invalid character '${label[i]}'`;
    }
  }
  return undefined;
}

/** tailcfg `CheckTag`. */
export function tagError(tag: string): string | undefined {
  if (!tag.startsWith('tag:')) return "tags must start with 'tag:'";
  const name = tag.slice(4);
  if (name === '') return 'tag names must not be empty';
  if (!/^[A-Za-z]/.test(name)) return "tag names must start with a letter, after 'tag:'";
  if (!/^[A-Za-z0-9-]+$/.test(name)) return 'tag names can only contain numbers, letters, or dashes';
  return undefined;
}

/** IPv4 dotted quad -> 32-bit number, or undefined. */
export function parseIPv4(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some(p => p > 255)) return undefined;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Rough `netip.ParseAddr` family check (enough for ClusterIPs and annotation values). */
export function ipFamily(ip: string | undefined): 4 | 6 | undefined {
  if (!ip) return undefined;
  if (parseIPv4(ip) !== undefined) return 4;
  if (ip.includes(':') && /^[0-9a-fA-F:.]+$/.test(ip) && (ip.match(/::/g) ?? []).length <= 1) {
    return 6;
  }
  return undefined;
}

const CGNAT_BASE = parseIPv4('100.64.0.0') as number; // tsaddr.CGNATRange 100.64.0.0/10
const CGNAT_SIZE = 1 << 22;
const CHROMEOS_BASE = parseIPv4('100.115.92.0') as number; // tsaddr.ChromeOSVMRange /23
const SERVICE_IP = parseIPv4('100.100.100.100') as number; // tsaddr.TailscaleServiceIP

export function isCGNAT(ip: string): boolean {
  const n = parseIPv4(ip);
  return n !== undefined && n >= CGNAT_BASE && n < CGNAT_BASE + CGNAT_SIZE;
}

/** An address control could give a node: in 100.64.0.0/10, outside tsaddr's reserved ranges. */
export function isAssignableTailnetIPv4(n: number): boolean {
  if (n < CGNAT_BASE || n >= CGNAT_BASE + CGNAT_SIZE) return false;
  if (n >= CHROMEOS_BASE && n < CHROMEOS_BASE + 512) return false;
  if (n === SERVICE_IP) return false;
  const last = n & 255;
  return last !== 0 && last !== 255; // not required by Tailscale; keeps addresses unsurprising
}

/** tsaddr `Tailscale4To6`: fd7a:115c:a1e0:ab12:4843:cd96:62xx:xxxx carrying the low 3 bytes. */
export function tailscale4To6(ipv4: string): string {
  const n = parseIPv4(ipv4);
  if (n === undefined) throw new Error(`not an IPv4 address: ${ipv4}`);
  const b1 = (n >>> 16) & 255;
  const b2 = (n >>> 8) & 255;
  const b3 = n & 255;
  const hex = (v: number) => v.toString(16);
  return `fd7a:115c:a1e0:ab12:4843:cd96:${hex((0x62 << 8) | b1)}:${hex((b2 << 8) | b3)}`;
}

/** 32-bit FNV-1a over UTF-8: the deterministic start of an address search. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export interface TailnetDevice {
  /** `<cluster>/<namespace>/<name>` of the Service the proxy device is for. */
  key: string;
  /** MagicDNS host label (the device name): the wanted hostname, lower-cased, `-N` on collision. */
  hostLabel: string;
  fqdn: string;
  ipv4: string;
  ipv6: string;
}

/** `base-N`, cut so that the label stays within 63 bytes. */
export function suffixedLabel(base: string, n: number): string {
  const suffix = `-${n}`;
  return base.slice(0, 63 - suffix.length) + suffix;
}

function labelDerivesFrom(label: string, base: string): boolean {
  if (label === base) return true;
  const m = /-(\d+)$/.exec(label);
  return !!m && suffixedLabel(base, Number(m[1])) === label;
}

/**
 * Stands in for the coordination server across all clusters of the test bed: one tailnet, so one
 * namespace of device names and addresses.
 * - Address: stable per key: the first assignable address at or after `fnv1a32(key)` in
 *   100.64.0.0/10 that no other device holds (linear probing), unless the key already has one, or
 *   an address seen in the Service's status is free (so a restarted stand-in keeps what it wrote).
 * - Name: like Tailscale, a second device asking for a taken name gets `name-1`, `name-2`, ...
 */
export class TailnetDeviceRegistry {
  readonly tailnet: string;
  private readonly byKey = new Map<string, { ip: number; label: string }>();
  private readonly byIp = new Map<number, string>();
  private readonly byLabel = new Map<string, string>();

  constructor(tailnet: string) {
    this.tailnet = normalizeTailnet(tailnet);
  }

  ensure(key: string, wantedLabel: string, observed?: { ipv4?: string; label?: string }): TailnetDevice {
    let entry = this.byKey.get(key);
    if (!entry) {
      let ip: number | undefined;
      const seen = observed?.ipv4 !== undefined ? parseIPv4(observed.ipv4) : undefined;
      if (seen !== undefined && isAssignableTailnetIPv4(seen) && !this.byIp.has(seen)) ip = seen;
      if (ip === undefined) ip = this.probe(fnv1a32(key));
      entry = { ip, label: '' };
      this.byKey.set(key, entry);
      this.byIp.set(ip, key);
    }
    const base = wantedLabel.toLowerCase();
    if (!(entry.label && labelDerivesFrom(entry.label, base))) {
      if (entry.label) this.byLabel.delete(entry.label);
      let label: string | undefined;
      const seenLabel = observed?.label?.toLowerCase();
      if (seenLabel && labelDerivesFrom(seenLabel, base) && !this.byLabel.has(seenLabel)) {
        label = seenLabel;
      }
      for (let n = 0; label === undefined; n++) {
        const candidate = n === 0 ? base : suffixedLabel(base, n);
        if (!this.byLabel.has(candidate)) label = candidate;
      }
      entry.label = label;
      this.byLabel.set(label, key);
    }
    return this.device(key, entry);
  }

  get(key: string): TailnetDevice | undefined {
    const entry = this.byKey.get(key);
    return entry && entry.label ? this.device(key, entry) : undefined;
  }

  release(key: string): boolean {
    const entry = this.byKey.get(key);
    if (!entry) return false;
    this.byKey.delete(key);
    this.byIp.delete(entry.ip);
    if (entry.label) this.byLabel.delete(entry.label);
    return true;
  }

  list(): TailnetDevice[] {
    return [...this.byKey.entries()]
      .filter(([, e]) => e.label)
      .map(([k, e]) => this.device(k, e))
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  private probe(start: number): number {
    for (let i = 0; i < CGNAT_SIZE; i++) {
      const n = CGNAT_BASE + ((start + i) % CGNAT_SIZE);
      if (isAssignableTailnetIPv4(n) && !this.byIp.has(n)) return n;
    }
    throw new Error('tailnet address space exhausted');
  }

  private device(key: string, e: { ip: number; label: string }): TailnetDevice {
    const ipv4 = formatIPv4(e.ip);
    return { key, hostLabel: e.label, fqdn: `${e.label}.${this.tailnet}`, ipv4, ipv6: tailscale4To6(ipv4) };
  }
}

// ---- Conditions (k8s-operator/conditions.go updateCondition) ----------------------------------------

/** metav1.NewTime(clock.Now().Truncate(time.Second)), serialised as RFC 3339. */
export function conditionTime(now: Date): string {
  return new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** Upsert like updateCondition: keeps lastTransitionTime when the status did not change. */
export function setCondition(
  conditions: Condition[] | undefined,
  type: string,
  status: Condition['status'],
  reason: string,
  message: string,
  observedGeneration: number,
  now: Date,
): Condition[] {
  const next: Condition = { type, status, reason, message, lastTransitionTime: conditionTime(now) };
  if (observedGeneration) next.observedGeneration = observedGeneration;
  const list = [...(conditions ?? [])];
  const idx = list.findIndex(c => c.type === type);
  if (idx === -1) return [...list, next];
  if (list[idx].status === status) next.lastTransitionTime = list[idx].lastTransitionTime;
  list[idx] = next;
  return list;
}

export function removeCondition(conditions: Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter(c => c.type !== type);
}

function conditionKey(c: Condition): string {
  return JSON.stringify([c.type, c.status, c.reason, c.message, c.lastTransitionTime, c.observedGeneration ?? 0]);
}

export function conditionsEqual(a: Condition[] | undefined, b: Condition[] | undefined): boolean {
  const x = (a ?? []).map(conditionKey);
  const y = (b ?? []).map(conditionKey);
  return x.length === y.length && x.every((k, i) => k === y[i]);
}

// ---- Services ----------------------------------------------------------------------------------------

export const serviceKey = (cluster: string, svc: ServiceObject) =>
  `${cluster}/${svc.metadata.namespace ?? ''}/${svc.metadata.name ?? ''}`;

/** sts.go `nameForService`: the hostname annotation, else `<namespace>-<name>`. */
export function nameForService(svc: ServiceObject): string {
  const h = svc.metadata.annotations?.[AnnotationHostname];
  if (h !== undefined) return h;
  return `${svc.metadata.namespace ?? ''}-${svc.metadata.name ?? ''}`;
}

/** svc.go `isTailscaleLoadBalancerService` with isDefaultLoadBalancer=false (the chart default). */
export function isTailscaleLoadBalancer(svc: ServiceObject): boolean {
  return svc.spec?.type === 'LoadBalancer' && svc.spec.loadBalancerClass === TailscaleLoadBalancerClass;
}

function tailnetTargetIP(svc: ServiceObject): string {
  const a = svc.metadata.annotations ?? {};
  return a[AnnotationTailnetTargetIP] || a[AnnotationTailnetTargetIPOld] || '';
}

export type ServiceKind =
  | { kind: 'none' }
  | { kind: 'proxyGroup' }
  | { kind: 'ingress'; loadBalancer: boolean }
  | { kind: 'egress'; fqdn?: string; ip?: string };

/** What the real ServiceReconciler would do with this Service (svc.go shouldExpose & co). */
export function classifyService(svc: ServiceObject): ServiceKind {
  const a = svc.metadata.annotations ?? {};
  if (AnnotationProxyGroup in a) return { kind: 'proxyGroup' };
  const expose = a[AnnotationExpose] === 'true';
  const spec = svc.spec ?? {};
  const exposeClusterIP = !!spec.clusterIP && (isTailscaleLoadBalancer(svc) || expose);
  const exposeDNSName = expose && spec.type === 'ExternalName' && !!spec.externalName;
  if (exposeClusterIP || exposeDNSName) {
    return { kind: 'ingress', loadBalancer: isTailscaleLoadBalancer(svc) };
  }
  const ip = tailnetTargetIP(svc);
  if (ip) return { kind: 'egress', ip };
  const fqdn = a[AnnotationTailnetTargetFQDN];
  if (fqdn) return { kind: 'egress', fqdn };
  return { kind: 'none' };
}

/**
 * svc.go `validateService` (same checks, same messages), then the stand-in's own check that a
 * `tailscale.com/tailnet-fqdn` names a device of the configured tailnet (the real operator would
 * create a proxy that can never resolve it; the stand-in refuses it like an invalid value instead).
 */
export function validateService(svc: ServiceObject, tailnet: string): string[] {
  const violations: string[] = [];
  const a = svc.metadata.annotations ?? {};
  if (svc.spec?.clusterIP === 'None') violations.push('headless Services are not supported.');
  if (a[AnnotationTailnetTargetFQDN] && a[AnnotationTailnetTargetIP]) {
    violations.push(
      `only one of annotations ${AnnotationTailnetTargetIP} and ${AnnotationTailnetTargetFQDN} can be set`,
    );
  }
  const fqdn = a[AnnotationTailnetTargetFQDN];
  if (fqdn) {
    if (!isMagicDNSName(fqdn)) {
      violations.push(
        `invalid value of annotation ${AnnotationTailnetTargetFQDN}: ${JSON.stringify(fqdn)} does not appear to be a valid MagicDNS name`,
      );
    } else if (!isInTailnet(fqdn, tailnet)) {
      violations.push(
        `invalid value of annotation ${AnnotationTailnetTargetFQDN}: ${JSON.stringify(fqdn)} is not a MagicDNS name in tailnet ${JSON.stringify(tailnet)} (test bed stand-in check)`,
      );
    }
  }
  const ip = a[AnnotationTailnetTargetIP];
  if (ip && ipFamily(ip) === undefined) {
    violations.push(
      `invalid value of annotation ${AnnotationTailnetTargetIP}: ${JSON.stringify(ip)} could not be parsed as a valid IP Address, error: ParseAddr(${JSON.stringify(ip)}): unable to parse IP`,
    );
  }
  const name = nameForService(svc);
  const labelErr = dnsLabelError(name);
  if (labelErr) {
    violations.push(
      AnnotationHostname in a
        ? `invalid Tailscale hostname specified ${JSON.stringify(name)}: ${labelErr}`
        : `invalid Tailscale hostname ${JSON.stringify(name)}, use ${JSON.stringify(AnnotationHostname)} annotation to override: ${labelErr}`,
    );
  }
  const tags = a[AnnotationTags];
  if (tags !== undefined) {
    for (const raw of tags.split(',')) {
      const tag = raw.trim();
      const err = tagError(tag);
      if (err) violations.push(`invalid tag ${JSON.stringify(tag)}: ${err}`);
    }
  }
  return violations;
}

/** The condition/event message svc.go builds from the violations. */
export const invalidServiceMessage = (violations: string[]) =>
  `unable to provision proxy resources: invalid Service: ${violations.join(', ')}`;

/**
 * svc.go maybeProvision, LoadBalancer branch: one entry with the device's MagicDNS name, then one
 * entry per tailnet IP of the same family as the Service's ClusterIP.
 */
export function desiredLoadBalancerIngress(
  svc: ServiceObject,
  device: TailnetDevice,
): { ingress: LoadBalancerIngress[] } | { error: string } {
  const family = ipFamily(svc.spec?.clusterIP);
  if (family === undefined) {
    return { error: `failed to parse cluster IP: ParseAddr(${JSON.stringify(svc.spec?.clusterIP ?? '')}): unable to parse IP` };
  }
  return { ingress: [{ hostname: device.fqdn }, { ip: family === 4 ? device.ipv4 : device.ipv6 }] };
}

/** Compares what matters (hostname, ip); the apiserver defaults `ipMode: VIP` on IP entries. */
export function ingressEqual(a: LoadBalancerIngress[] | undefined, b: LoadBalancerIngress[] | undefined) {
  const norm = (l: LoadBalancerIngress[] | undefined) => (l ?? []).map(e => `${e.hostname ?? ''}|${e.ip ?? ''}`);
  const x = norm(a);
  const y = norm(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** True when every ingress entry is something this stand-in writes for `tailnet`. */
export function ingressLooksOurs(ingress: LoadBalancerIngress[] | undefined, tailnet: string): boolean {
  if (!ingress || ingress.length === 0) return false;
  return ingress.every(
    e =>
      (e.hostname !== undefined && e.hostname.toLowerCase().endsWith(`.${tailnet}`)) ||
      (e.ip !== undefined && (isCGNAT(e.ip) || e.ip.toLowerCase().startsWith('fd7a:115c:a1e0:'))),
  );
}

/** The device name and address already in the status, to keep them across stand-in restarts. */
export function observedDevice(svc: ServiceObject, tailnet: string): { ipv4?: string; label?: string } {
  const out: { ipv4?: string; label?: string } = {};
  for (const e of svc.status?.loadBalancer?.ingress ?? []) {
    if (e.ip && isCGNAT(e.ip)) out.ipv4 = e.ip;
    const h = e.hostname?.toLowerCase();
    if (h && h.endsWith(`.${tailnet}`)) out.label = h.slice(0, -(tailnet.length + 1));
  }
  return out;
}

/** svc.go `childResourceLabels`. */
export function childResourceLabels(name: string, namespace: string, type: string): Record<string, string> {
  return {
    [LabelManaged]: 'true',
    [LabelParentName]: name,
    [LabelParentNamespace]: namespace,
    [LabelParentType]: type,
  };
}

export function hasLabels(obj: { metadata: ObjectMeta }, want: Record<string, string>): boolean {
  const labels = obj.metadata.labels ?? {};
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}

/** sts.go `statefulSetNameBase`: `ts-<parent>-`, cut so a generated name fits in 52 chars. */
export function statefulSetNameBase(parent: string): string {
  const maxStatefulSetNameLength = 63 - 10 - 1;
  let base = `ts-${parent}-`;
  const excess = base.length + 5 - maxStatefulSetNameLength; // GenerateName appends 5 chars
  if (excess > 0) base = `${base.slice(0, base.length - 1 - excess)}-`;
  return base;
}

/** sts.go `reconcileHeadlessService`: the proxy Service the operator puts in its namespace. */
export function proxyServiceManifest(svc: ServiceObject, operatorNamespace: string): ServiceObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      generateName: statefulSetNameBase(svc.metadata.name ?? ''),
      namespace: operatorNamespace,
      labels: childResourceLabels(svc.metadata.name ?? '', svc.metadata.namespace ?? '', 'svc'),
    },
    spec: {
      clusterIP: 'None',
      selector: { app: svc.metadata.uid ?? '' },
      ipFamilyPolicy: 'PreferDualStack',
    },
  };
}

/** svc.go egress branch: `<proxy svc>.<operator ns>.svc.<cluster domain>`. */
export function egressExternalName(proxyServiceName: string, operatorNamespace: string, clusterDomain: string) {
  return `${proxyServiceName}.${operatorNamespace}.svc.${clusterDomain}`;
}

export interface EgressSpecPatch {
  type: 'ExternalName';
  externalName: string;
  selector: null;
}

/** svc.go: rewrite only when externalName or type differ (then also drop the selector). */
export function desiredEgressSpec(svc: ServiceObject, externalName: string): EgressSpecPatch | undefined {
  if (svc.spec?.externalName === externalName && svc.spec?.type === 'ExternalName') return undefined;
  return { type: 'ExternalName', externalName, selector: null };
}

export interface ServicePlanInput {
  svc: ServiceObject;
  tailnet: string;
  operatorNamespace: string;
  clusterDomain: string;
  /** Add `tailscale.com/finalizer` like the real operator (the test bed may turn it off). */
  manageFinalizer: boolean;
  /** Headless proxy Services already in the operator namespace for this Service (by labels). */
  proxyServices: ServiceObject[];
  /** Name and address for an ingress device; only called for valid tailscale LoadBalancers. */
  device: (wantedLabel: string, observed: { ipv4?: string; label?: string }) => TailnetDevice;
  now: Date;
}

export interface ServicePlan {
  /** skip: not ours; cleanup: no longer (or never) a Tailscale Service; invalid; provision. */
  action: 'skip' | 'cleanup' | 'invalid' | 'provision';
  /** The whole new `metadata.finalizers`, when it has to change. */
  finalizers?: string[];
  createProxyService?: ServiceObject;
  deleteProxyServices: string[];
  specPatch?: EgressSpecPatch;
  /** Status fields to merge-patch, when they differ. `ingress: []` clears the load balancer. */
  status?: { loadBalancer?: { ingress: LoadBalancerIngress[] }; conditions?: Condition[] };
  event?: { type: 'Warning' | 'Normal'; reason: string; message: string };
  /** The tailnet device of this Service should be forgotten. */
  releaseDevice: boolean;
  log: string[];
}

function withStatus(
  plan: ServicePlan,
  svc: ServiceObject,
  conditions: Condition[],
  ingress?: LoadBalancerIngress[],
): ServicePlan {
  const status: NonNullable<ServicePlan['status']> = {};
  if (!conditionsEqual(svc.status?.conditions, conditions)) status.conditions = conditions;
  if (ingress !== undefined && !ingressEqual(svc.status?.loadBalancer?.ingress, ingress)) {
    status.loadBalancer = { ingress };
  }
  if (status.conditions || status.loadBalancer) plan.status = status;
  return plan;
}

/**
 * One reconcile of a Service, as the real ServiceReconciler.Reconcile would do it, minus what the
 * stand-in does not model (StatefulSet, state Secret, auth key, metrics resources). Only fields
 * that differ are returned, so a converged Service yields a plan without writes.
 */
export function planService(input: ServicePlanInput): ServicePlan {
  const { svc, tailnet, now } = input;
  const kind = classifyService(svc);
  const finalizers = svc.metadata.finalizers ?? [];
  const hasFinalizer = finalizers.includes(FinalizerName);
  const plan: ServicePlan = { action: 'skip', deleteProxyServices: [], releaseDevice: false, log: [] };
  if (kind.kind === 'proxyGroup') {
    plan.log.push('has tailscale.com/proxy-group: ProxyGroup Services are not modelled by the stand-in');
    return plan;
  }
  const deleting = !!svc.metadata.deletionTimestamp;
  if (deleting || kind.kind === 'none') {
    plan.action = 'cleanup';
    plan.releaseDevice = true;
    plan.deleteProxyServices = input.proxyServices.map(s => s.metadata.name ?? '').filter(Boolean);
    if (hasFinalizer) plan.finalizers = finalizers.filter(f => f !== FinalizerName);
    if (!deleting) {
      const ingress = svc.status?.loadBalancer?.ingress;
      const clear = ingress && ingress.length > 0 && (hasFinalizer || ingressLooksOurs(ingress, tailnet));
      withStatus(plan, svc, removeCondition(svc.status?.conditions, ConditionProxyReady), clear ? [] : undefined);
    }
    if (plan.finalizers || plan.status || plan.deleteProxyServices.length) {
      plan.log.push('no longer a Tailscale Service: cleaning up');
    }
    return plan;
  }

  const violations = validateService(svc, tailnet);
  if (violations.length > 0) {
    const msg = invalidServiceMessage(violations);
    plan.action = 'invalid';
    plan.event = { type: 'Warning', reason: EventReasonInvalidService, message: msg };
    plan.log.push(`left unchanged: ${msg}`);
    return withStatus(
      plan,
      svc,
      setCondition(svc.status?.conditions, ConditionProxyReady, 'False', ReasonProxyInvalid, msg, 0, now),
    );
  }

  plan.action = 'provision';
  if (input.manageFinalizer && !hasFinalizer) plan.finalizers = [...finalizers, FinalizerName];
  const ready = setCondition(
    svc.status?.conditions,
    ConditionProxyReady,
    'True',
    ReasonProxyCreated,
    ReasonProxyCreated,
    0,
    now,
  );

  if (kind.kind === 'egress') {
    const [proxy, ...extra] = [...input.proxyServices].sort((a, b) =>
      (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
    );
    plan.deleteProxyServices = extra.map(s => s.metadata.name ?? '').filter(Boolean);
    if (!proxy?.metadata.name) {
      plan.createProxyService = proxyServiceManifest(svc, input.operatorNamespace);
      plan.log.push(`creating egress proxy Service for ${kind.fqdn ?? kind.ip}`);
      return plan; // externalName follows once the generated name is known
    }
    const externalName = egressExternalName(proxy.metadata.name, input.operatorNamespace, input.clusterDomain);
    plan.specPatch = desiredEgressSpec(svc, externalName);
    if (plan.specPatch) plan.log.push(`egress to ${kind.fqdn ?? kind.ip}: externalName -> ${externalName}`);
    return withStatus(plan, svc, ready);
  }

  // Ingress. A plain `tailscale.com/expose` Service gets a proxy but no load-balancer status.
  if (!kind.loadBalancer) return withStatus(plan, svc, ready);
  const device = input.device(nameForService(svc), observedDevice(svc, tailnet));
  const desired = desiredLoadBalancerIngress(svc, device);
  if ('error' in desired) {
    plan.log.push(desired.error);
    return withStatus(
      plan,
      svc,
      setCondition(svc.status?.conditions, ConditionProxyReady, 'False', ReasonProxyFailed, desired.error, 0, now),
    );
  }
  withStatus(plan, svc, ready, desired.ingress);
  if (plan.status?.loadBalancer) {
    plan.log.push(`load balancer ingress -> ${device.fqdn} ${desired.ingress[1].ip}`);
  }
  return plan;
}

// ---- DNSConfig (nameserver.go) -------------------------------------------------------------------

/** nameserver.go `nameserverResourceLabels`. */
export function nameserverResourceLabels(dnsConfigName: string, operatorNamespace: string) {
  return {
    ...childResourceLabels(dnsConfigName, operatorNamespace, 'nameserver'),
    'app.kubernetes.io/name': 'tailscale',
    'app.kubernetes.io/component': 'nameserver',
  };
}

export interface NameserverManifests {
  serviceAccount: Manifest;
  configMap: Manifest;
  deployment: Manifest;
  service: ServiceObject;
}

/**
 * nameserver.go maybeProvision: ServiceAccount, Deployment, Service and ConfigMap from the
 * embedded deploy/manifests/nameserver/*.yaml, labelled and owned (controller ref) by the
 * DNSConfig, so that the garbage collector removes them with it.
 */
export function nameserverManifests(dc: DNSConfigObject, operatorNamespace: string): NameserverManifests {
  const ns = dc.spec?.nameserver ?? {};
  const labels = nameserverResourceLabels(dc.metadata.name ?? '', operatorNamespace);
  const ownerReferences: OwnerReference[] = [
    {
      apiVersion: 'tailscale.com/v1alpha1',
      kind: 'DNSConfig',
      name: dc.metadata.name ?? '',
      uid: dc.metadata.uid ?? '',
      controller: true,
      blockOwnerDeletion: true,
    },
  ];
  const meta = (name: string): ObjectMeta => ({ name, namespace: operatorNamespace, labels, ownerReferences });
  const image = `${ns.image?.repo || DefaultNameserverImageRepo}:${ns.image?.tag || DefaultNameserverImageTag}`;
  const podSpec: Record<string, unknown> = {
    containers: [
      {
        imagePullPolicy: 'IfNotPresent',
        name: 'nameserver',
        image,
        ports: [
          { name: 'tcp', protocol: 'TCP', containerPort: 1053 },
          { name: 'udp', protocol: 'UDP', containerPort: 1053 },
        ],
        volumeMounts: [{ name: 'dnsrecords', mountPath: '/config' }],
      },
    ],
    restartPolicy: 'Always',
    serviceAccount: NameserverName,
    serviceAccountName: NameserverName,
    volumes: [{ name: 'dnsrecords', configMap: { name: NameserverConfigMapName } }],
  };
  if (ns.pod?.tolerations) podSpec.tolerations = ns.pod.tolerations;
  if (ns.pod?.affinity) podSpec.affinity = ns.pod.affinity;
  if (ns.pod?.nodeSelector) podSpec.nodeSelector = ns.pod.nodeSelector;
  const spec: ServiceSpec = {
    selector: { app: NameserverName },
    ports: [
      { name: 'udp', targetPort: 1053, port: 53, protocol: 'UDP' },
      { name: 'tcp', targetPort: 1053, port: 53, protocol: 'TCP' },
    ],
  };
  if (ns.service?.clusterIP) spec.clusterIP = ns.service.clusterIP;
  return {
    serviceAccount: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(NameserverName) },
    configMap: { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(NameserverConfigMapName) },
    deployment: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(NameserverName),
      spec: {
        replicas: ns.replicas ?? 1,
        revisionHistoryLimit: 5,
        selector: { matchLabels: { app: NameserverName } },
        strategy: { type: 'Recreate' },
        template: { metadata: { labels: { app: NameserverName } }, spec: podSpec },
      },
    },
    service: { apiVersion: 'v1', kind: 'Service', metadata: meta(NameserverName), spec },
  };
}

export interface DNSConfigPlan {
  action: 'cleanup' | 'provision';
  finalizers?: string[];
  event?: { type: 'Warning'; reason: string; message: string };
  log: string[];
}

/** nameserver.go Reconcile, up to (not including) creating the nameserver resources. */
export function planDNSConfig(dc: DNSConfigObject, dnsConfigCount: number, manageFinalizer: boolean): DNSConfigPlan {
  const finalizers = dc.metadata.finalizers ?? [];
  const has = finalizers.includes(FinalizerName);
  if (dc.metadata.deletionTimestamp) {
    // Owned resources go with the DNSConfig (garbage collector); only the finalizer is ours.
    return {
      action: 'cleanup',
      finalizers: has ? finalizers.filter(f => f !== FinalizerName) : undefined,
      log: has ? ['DNSConfig deleted: removing finalizer'] : [],
    };
  }
  const plan: DNSConfigPlan = { action: 'provision', log: [] };
  if (dnsConfigCount > 1) {
    plan.event = { type: 'Warning', reason: ReasonMultipleDNSConfigsPresent, message: MessageMultipleDNSConfigsPresent };
    plan.log.push(
      'invalid cluster configuration: more than one tailscale.com/dnsconfigs found. Please ensure that no more than one is created.',
    );
  }
  if (manageFinalizer && !has) plan.finalizers = [...finalizers, FinalizerName];
  return plan;
}

/**
 * nameserver.go: once the `nameserver` Service has a ClusterIP, `status.nameserver.ip` is that IP
 * and NameserverReady is True (reason and message NameserverCreated, observedGeneration set).
 * Returns the status to write, or undefined when there is nothing to write yet or it is current.
 */
export function desiredDNSConfigStatus(
  dc: DNSConfigObject,
  nameserverClusterIP: string | undefined,
  now: Date,
): { conditions: Condition[]; nameserver: { ip: string } } | undefined {
  if (!nameserverClusterIP || nameserverClusterIP === 'None') return undefined;
  const conditions = setCondition(
    dc.status?.conditions,
    ConditionNameserverReady,
    'True',
    ReasonNameserverCreated,
    ReasonNameserverCreated,
    dc.metadata.generation ?? 0,
    now,
  );
  if (dc.status?.nameserver?.ip === nameserverClusterIP && conditionsEqual(dc.status?.conditions, conditions)) {
    return undefined;
  }
  return { conditions, nameserver: { ip: nameserverClusterIP } };
}
