import {
  V1LabelSelector,
  V1NetworkPolicy,
  V1NetworkPolicyIngressRule,
  V1NetworkPolicyPeer,
} from '@kubernetes/client-node';
import {
  LabelSelectorView,
  NetworkPolicyView,
} from '@tailmesh/plugin-mesh-common';

/**
 * A rule's peers: client-node's models name the field `_from` (`from` is reserved in its
 * generator), while an object parsed from the API's JSON, as the backend's watches get it, has
 * `from`.
 */
function fromOf(
  rule: V1NetworkPolicyIngressRule,
): V1NetworkPolicyPeer[] | undefined {
  return rule._from ?? (rule as { from?: V1NetworkPolicyPeer[] }).from;
}

/**
 * What the audit reads of a NetworkPolicy: its name and its ingress rules (see mesh-common
 * `apiEgressOpenTo`), without what the API server adds (status, managed fields).
 *
 * @public
 */
export function networkPolicyView(p: V1NetworkPolicy): NetworkPolicyView {
  const selector = (s?: V1LabelSelector): LabelSelectorView | undefined =>
    s
      ? {
          ...(s.matchLabels ? { matchLabels: { ...s.matchLabels } } : {}),
          ...(s.matchExpressions
            ? {
                matchExpressions: s.matchExpressions.map(e => ({
                  key: e.key,
                  operator: e.operator,
                  ...(e.values ? { values: [...e.values] } : {}),
                })),
              }
            : {}),
        }
      : undefined;
  const spec = p.spec;
  return {
    name: p.metadata?.name ?? '',
    podSelector: selector(spec?.podSelector),
    ...(spec?.policyTypes ? { policyTypes: [...spec.policyTypes] } : {}),
    ...(spec?.ingress
      ? {
          ingress: spec.ingress.map(rule => ({
            ...(rule.ports
              ? {
                  ports: rule.ports.map(port => ({
                    ...(port.protocol ? { protocol: port.protocol } : {}),
                    ...(port.port !== undefined ? { port: port.port } : {}),
                    ...(port.endPort !== undefined
                      ? { endPort: port.endPort }
                      : {}),
                  })),
                }
              : {}),
            ...(fromOf(rule)
              ? {
                  from: fromOf(rule)!.map(peer => ({
                    ...(peer.podSelector
                      ? { podSelector: selector(peer.podSelector) }
                      : {}),
                    ...(peer.namespaceSelector
                      ? { namespaceSelector: selector(peer.namespaceSelector) }
                      : {}),
                    ...(peer.ipBlock
                      ? {
                          ipBlock: {
                            cidr: peer.ipBlock.cidr,
                            ...(peer.ipBlock.except
                              ? { except: [...peer.ipBlock.except] }
                              : {}),
                          },
                        }
                      : {}),
                  })),
                }
              : {}),
          })),
        }
      : {}),
  };
}
