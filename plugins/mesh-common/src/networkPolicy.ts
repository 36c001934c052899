import { ISTIO_NAMESPACE } from './istio';
import { egressServiceName } from './names';
import { TAILSCALE_API_PROXY_PORT } from './auditTailnetPolicy';

/**
 * The label every pod of a Tailscale egress proxy carries: `app` set to the UID of the egress
 * Service it serves. The operator's headless proxy Service selects its pods by exactly this
 * (tailscale.com cmd/k8s-operator/sts.go `reconcileHeadlessService`, selector
 * `"app": sts.ParentResourceUID`), in every operator release, so a NetworkPolicy that selects by
 * it selects exactly that proxy's pods.
 *
 * @public
 */
export const LABEL_EGRESS_PROXY_APP = 'app';

/**
 * Label of istiod's pods in the Istio charts (manifests/charts/istio-control/istio-discovery
 * templates/deployment.yaml: `app: istiod`), whatever the revision.
 *
 * @public
 */
export const ISTIOD_POD_LABELS: Readonly<Record<string, string>> = {
  app: 'istiod',
};

/**
 * The label the API server sets on every Namespace to its own name
 * (https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name).
 *
 * @public
 */
export const LABEL_NAMESPACE_NAME = 'kubernetes.io/metadata.name';

/**
 * Name of the NetworkPolicy (in the egress Services' namespace) that lets only istiod reach the
 * egress proxy to `peer`'s API server proxy.
 *
 * @public
 */
export function apiEgressPolicyName(peer: string): string {
  return `${egressServiceName(peer)}-istiod-only`;
}

/**
 * A Kubernetes label selector (meta/v1 LabelSelector).
 *
 * @public
 */
export interface LabelSelectorView {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{
    key: string;
    operator: string;
    values?: string[];
  }>;
}

/**
 * What the audit reads of a NetworkPolicy (networking.k8s.io/v1): its name and the ingress half
 * of its spec.
 *
 * @public
 */
export interface NetworkPolicyView {
  name: string;
  podSelector?: LabelSelectorView;
  policyTypes?: string[];
  ingress?: Array<{
    ports?: Array<{
      protocol?: string;
      port?: number | string;
      endPort?: number;
    }>;
    from?: Array<{
      podSelector?: LabelSelectorView;
      namespaceSelector?: LabelSelectorView;
      ipBlock?: { cidr: string; except?: string[] };
    }>;
  }>;
}

/**
 * Whether `selector` matches `labels` (meta/v1 LabelSelector semantics; empty matches all).
 *
 * @public
 */
export function selectorMatches(
  selector: LabelSelectorView | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const e of selector?.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const values = e.values ?? [];
    const ok =
      e.operator === 'In'
        ? has && values.includes(labels[e.key])
        : e.operator === 'NotIn'
          ? !has || !values.includes(labels[e.key])
          : e.operator === 'Exists'
            ? has
            : e.operator === 'DoesNotExist'
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

/** Whether every object `selector` matches must carry `key=value`. */
function requires(
  selector: LabelSelectorView | undefined,
  key: string,
  value: string,
): boolean {
  if (selector?.matchLabels?.[key] === value) return true;
  return (selector?.matchExpressions ?? []).some(
    e =>
      e.key === key &&
      e.operator === 'In' &&
      (e.values ?? []).length > 0 &&
      (e.values ?? []).every(v => v === value),
  );
}

function coversPort(
  ports: NonNullable<NetworkPolicyView['ingress']>[number]['ports'],
  port: number,
): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some(p => {
    if ((p.protocol ?? 'TCP') !== 'TCP') return false;
    if (p.port === undefined) return true;
    // A named port could name any container port: count it as covering.
    if (typeof p.port === 'string') return true;
    return p.endPort === undefined
      ? p.port === port
      : p.port <= port && port <= p.endPort;
  });
}

/**
 * Which pods other than istiod a set of NetworkPolicies lets reach the egress proxy of the
 * egress Service with UID `serviceUid` on the API server proxy's port, following the
 * NetworkPolicy API (https://kubernetes.io/docs/concepts/services-networking/network-policies/):
 * a pod no policy isolates for ingress admits every source; policies are additive, so one rule
 * that admits more than istiod is enough. Returns undefined when only istiod's pods (label
 * `app: istiod` in namespace istio-system) are admitted, else a phrase saying why others are.
 *
 * Judged on the one label every proxy pod is known to carry ({@link LABEL_EGRESS_PROXY_APP}):
 * a policy that selects the pods by other labels is not counted, so the answer errs toward
 * "open". Whether the cluster's network plugin enforces NetworkPolicy at all cannot be read from
 * the API.
 *
 * @public
 */
export function apiEgressOpenTo(
  policies: ReadonlyArray<NetworkPolicyView>,
  serviceUid: string,
): string | undefined {
  const pod = { [LABEL_EGRESS_PROXY_APP]: serviceUid };
  const isolating = policies.filter(
    p =>
      selectorMatches(p.podSelector, pod) &&
      (p.policyTypes === undefined ||
        p.policyTypes.length === 0 ||
        p.policyTypes.includes('Ingress')),
  );
  if (isolating.length === 0) return 'no NetworkPolicy selects its proxy pods';
  for (const p of isolating) {
    for (const rule of p.ingress ?? []) {
      if (!coversPort(rule.ports, TAILSCALE_API_PROXY_PORT)) continue;
      if (!rule.from || rule.from.length === 0)
        return `NetworkPolicy ${p.name} admits every source`;
      for (const peer of rule.from) {
        if (peer.ipBlock)
          return `NetworkPolicy ${p.name} admits the addresses ${peer.ipBlock.cidr}`;
        const istiodOnly =
          Object.entries(ISTIOD_POD_LABELS).every(([k, v]) =>
            requires(peer.podSelector, k, v),
          ) &&
          requires(
            peer.namespaceSelector,
            LABEL_NAMESPACE_NAME,
            ISTIO_NAMESPACE,
          );
        if (!istiodOnly)
          return `NetworkPolicy ${p.name} admits pods other than istiod's`;
      }
    }
  }
  return undefined;
}
