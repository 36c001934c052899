/**
 * Kubernetes NetworkPolicy (networking.k8s.io/v1), ingress only, as the test bed's stand-in for a
 * CNI that enforces it: given the policies of a cluster, a destination pod, a source and a port,
 * is the connection admitted? Written from the API's own field documentation and the concept
 * page, not from any CNI's code, and independent of the product (nothing here comes from
 * plugins/):
 *
 *  - k8s.io/api networking/v1/types.go (NetworkPolicySpec, NetworkPolicyIngressRule,
 *    NetworkPolicyPort, NetworkPolicyPeer, IPBlock) and k8s.io/apimachinery meta/v1 types.go
 *    (LabelSelector, LabelSelectorRequirement);
 *  - https://kubernetes.io/docs/concepts/services-networking/network-policies/ ("The two sorts of
 *    pod isolation", "Behavior of to and from selectors", "Targeting a range of ports",
 *    "Targeting a Namespace by its name");
 *  - kubernetes pkg/apis/networking/v1/defaults.go SetDefaults_NetworkPolicySpec (policyTypes).
 *
 * The rules, each applied where cited below:
 *  - a policy applies to the pods of its own namespace that its `podSelector` selects (an empty
 *    selector selects them all); it isolates them for ingress when its `policyTypes` holds
 *    `Ingress`, or when `policyTypes` is absent or empty (Ingress is then always implied, Egress
 *    only when `egress` rules exist);
 *  - a pod that no ingress-isolating policy selects admits every connection;
 *  - an isolated pod admits a connection when at least one ingress rule of at least one of those
 *    policies admits it: policies are additive, there is no deny rule;
 *  - a rule admits a connection when its `ports` (absent or empty: every port) and its `from`
 *    (absent or empty: every source) both match it.
 *
 * Not modelled: egress isolation (nothing in the test bed routes a pod's outgoing traffic through
 * a model of it); the concept page's exception for connections "from the pod's node" (the test
 * bed's nodes have no address of their own to tell such a connection by); SCTP semantics beyond
 * matching the protocol name; and what the concept page
 * leaves to the implementation (whether a policy change affects established connections, whether
 * `ipBlock` sees a source before or after SNAT): the caller decides those, per connection.
 * Objects the apiserver would refuse (an unknown selector operator, a peer with no selector) are
 * not errors here: they match nothing.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

// ---- API shapes (the fields read; names as in networking/v1) --------------------------------------

export interface LabelSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface NetworkPolicyPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}

export interface IPBlock {
  cidr: string;
  except?: string[];
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

export interface NetworkPolicyIngressRule {
  ports?: NetworkPolicyPort[];
  from?: NetworkPolicyPeer[];
}

export interface NetworkPolicySpec {
  podSelector?: LabelSelector;
  policyTypes?: string[];
  ingress?: NetworkPolicyIngressRule[];
  egress?: unknown[];
}

export interface NetworkPolicyObject {
  metadata: { name: string; namespace?: string };
  spec?: NetworkPolicySpec;
}

/** What is known of a cluster for the verdict: its policies and its namespaces' labels. */
export interface PolicyContext {
  policies: readonly NetworkPolicyObject[];
  /** The labels of a namespace, or undefined when it is not known. */
  namespaceLabels(namespace: string): Record<string, string> | undefined;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface DestinationPod {
  namespace: string;
  labels?: Record<string, string>;
  /** The ports of the pod's containers, for named ports in policies. */
  containerPorts?: readonly ContainerPort[];
}

export interface SourcePod {
  namespace: string;
  labels?: Record<string, string>;
}

export interface Source {
  /** The source address of the connection (what `ipBlock` peers match). */
  ip: string;
  /**
   * The pods the connection may come from: admitted if any of them is. Empty when the source is
   * not a pod, then only `ipBlock` peers can admit it.
   */
  pods: readonly SourcePod[];
}

export interface IngressVerdict {
  allowed: boolean;
  /** `namespace/name` of the policies that isolate the destination for ingress, sorted. */
  policies: string[];
}

// ---- Evaluation ---------------------------------------------------------------------------------

/**
 * Whether a connection from `source` to `dest` on `port`/`protocol` is admitted by the ingress
 * side of the cluster's NetworkPolicies.
 */
export function ingressVerdict(
  ctx: PolicyContext,
  dest: DestinationPod,
  source: Source,
  port: number,
  protocol = 'TCP',
): IngressVerdict {
  const isolating = ctx.policies.filter(
    p =>
      p.metadata.namespace === dest.namespace &&
      isolatesIngress(p) &&
      // NetworkPolicySpec.podSelector: "An empty podSelector selects all pods in this namespace."
      selectorMatches(p.spec?.podSelector ?? {}, dest.labels ?? {}),
  );
  const policies = isolating.map(p => `${p.metadata.namespace}/${p.metadata.name}`).sort();
  // Concept page, "The two sorts of pod isolation": "By default, a pod is non-isolated for
  // ingress; all inbound connections are allowed."
  if (!isolating.length) return { allowed: true, policies };
  // "... the only allowed connections into the pod are those from the pod's node and those allowed
  // by the ingress list of some NetworkPolicy object that applies to the pod for ingress. The
  // effects of those ingress lists combine additively."
  const allowed = isolating.some(p =>
    (p.spec?.ingress ?? []).some(
      rule =>
        rulePortsMatch(rule.ports, dest, port, protocol) && ruleSourcesMatch(rule.from, p.metadata.namespace ?? '', ctx, source),
    ),
  );
  return { allowed, policies };
}

/**
 * NetworkPolicySpec.policyTypes: "If this field is not specified, it will default based on the
 * existence of ingress or egress rules; policies that contain an egress section are assumed to
 * affect egress, and all policies (whether or not they contain an ingress section) are assumed to
 * affect ingress." The apiserver's defaulting (defaults.go) treats an empty list as unspecified.
 */
export function isolatesIngress(policy: NetworkPolicyObject): boolean {
  const types = policy.spec?.policyTypes;
  if (!types || types.length === 0) return true;
  return types.includes('Ingress');
}

/**
 * meta/v1 LabelSelector: "The requirements are ANDed. An empty label selector matches all
 * objects." matchLabels entries are equality requirements; matchExpressions operators are In,
 * NotIn, Exists and DoesNotExist (NotIn also matches an object without the key, as
 * labels.Requirement.Matches does). Any other operator is refused by the apiserver's validation;
 * here it matches nothing.
 */
export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (!has || !values.includes(labels[req.key])) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[req.key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/**
 * NetworkPolicyIngressRule.ports: "If this field is empty or missing, this rule matches all ports
 * (traffic not restricted by port). If this field is present and contains at least one item, then
 * this rule allows traffic only if the traffic matches at least one port in the list."
 */
function rulePortsMatch(
  ports: NetworkPolicyPort[] | undefined,
  dest: DestinationPod,
  port: number,
  protocol: string,
): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some(p => portMatches(p, dest, port, protocol));
}

/**
 * NetworkPolicyPort: `protocol` defaults to TCP; `port` "can either be a numerical or named port
 * on a pod. If this field is not provided, this matches all port names and numbers. If present,
 * only traffic on the specified protocol AND port will be matched"; `endPort` makes the range
 * port..endPort, inclusive (only with a numeric port). A named port is the destination pod's
 * container port of that name and protocol (concept page, "Targeting a range of ports" and the
 * rule's `ports` example; a container port's protocol defaults to TCP too).
 */
function portMatches(p: NetworkPolicyPort, dest: DestinationPod, port: number, protocol: string): boolean {
  if ((p.protocol ?? 'TCP').toUpperCase() !== protocol.toUpperCase()) return false;
  if (p.port === undefined) return true;
  if (typeof p.port === 'number') {
    if (p.endPort !== undefined) return port >= p.port && port <= p.endPort;
    return port === p.port;
  }
  const name = p.port;
  return (dest.containerPorts ?? []).some(
    cp =>
      cp.name === name &&
      (cp.protocol ?? 'TCP').toUpperCase() === protocol.toUpperCase() &&
      cp.containerPort === port,
  );
}

/**
 * NetworkPolicyIngressRule.from: "If this field is empty or missing, this rule matches all sources
 * (traffic not restricted by source). If this field is present and contains at least one item,
 * this rule allows traffic only if the traffic matches at least one item in the from list."
 */
function ruleSourcesMatch(
  from: NetworkPolicyPeer[] | undefined,
  policyNamespace: string,
  ctx: PolicyContext,
  source: Source,
): boolean {
  if (!from || from.length === 0) return true;
  return from.some(peer => peerMatches(peer, policyNamespace, ctx, source));
}

/**
 * NetworkPolicyPeer:
 *  - `podSelector` alone "selects the pods matching podSelector in the policy's own namespace";
 *  - `namespaceSelector` alone "selects all pods in the namespaces selected by
 *    namespaceSelector" (an empty one, all namespaces);
 *  - both: "the pods matching podSelector in the Namespaces selected by NamespaceSelector";
 *  - `ipBlock` (then neither of the others): the source address is within `cidr` and in none of
 *    the `except` ranges, whether or not the source is a pod.
 */
function peerMatches(peer: NetworkPolicyPeer, policyNamespace: string, ctx: PolicyContext, source: Source): boolean {
  if (peer.ipBlock) return ipBlockMatches(peer.ipBlock, source.ip);
  const { podSelector, namespaceSelector } = peer;
  if (!podSelector && !namespaceSelector) return false; // refused by validation: "must specify a peer"
  return source.pods.some(pod => {
    if (namespaceSelector) {
      if (!selectorMatches(namespaceSelector, namespaceLabelsOf(ctx, pod.namespace))) return false;
    } else if (pod.namespace !== policyNamespace) return false;
    return !podSelector || selectorMatches(podSelector, pod.labels ?? {});
  });
}

/**
 * A namespace's labels, with the one the control plane always sets: "The Kubernetes control plane
 * sets an immutable label kubernetes.io/metadata.name on all namespaces, the value of the label is
 * the namespace name" (concept page, "Targeting a Namespace by its name").
 */
function namespaceLabelsOf(ctx: PolicyContext, namespace: string): Record<string, string> {
  return { ...(ctx.namespaceLabels(namespace) ?? {}), 'kubernetes.io/metadata.name': namespace };
}

/** IPBlock: `cidr` "is a string representing the IPBlock"; `except` "CIDRs that should not be included". */
export function ipBlockMatches(block: IPBlock, ip: string): boolean {
  const addr = normalizeIp(ip);
  if (!addr) return false;
  return cidrContains(block.cidr, addr) && !(block.except ?? []).some(e => cidrContains(e, addr));
}

/** An IPv4-mapped IPv6 address (how a dual-stack socket reports an IPv4 peer) as IPv4. */
function normalizeIp(ip: string): { ip: string; family: 'ipv4' | 'ipv6' } | undefined {
  const v4 = ip.replace(/^::ffff:/i, '');
  if (isIPv4(v4)) return { ip: v4, family: 'ipv4' };
  if (isIPv6(ip)) return { ip, family: 'ipv6' };
  return undefined;
}

function cidrContains(cidr: string, addr: { ip: string; family: 'ipv4' | 'ipv6' }): boolean {
  const [network, bits, extra] = cidr.split('/');
  if (extra !== undefined || bits === undefined || !/^\d+$/.test(bits)) return false;
  const family = isIPv4(network) ? 'ipv4' : isIPv6(network) ? 'ipv6' : undefined;
  const prefix = Number(bits);
  if (!family || family !== addr.family || prefix > (family === 'ipv4' ? 32 : 128)) return false;
  const list = new BlockList();
  list.addSubnet(network, prefix, family);
  return list.check(addr.ip, family);
}
