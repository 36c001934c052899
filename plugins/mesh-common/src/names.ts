import { validateClusterName, validateTailnet } from './cluster';
import { assertValidInput } from './inputErrors';
import {
  EAST_WEST_GATEWAY_HOSTNAME_SUFFIX,
  REMOTE_SECRET_PREFIX,
} from './istio';
import { validateDnsLabel } from './kubernetesNames';
import { OPERATOR_HOSTNAME_SUFFIX, TAILSCALE_NAMESPACE } from './tailscale';

function assertClusterName(cluster: string): void {
  assertValidInput('cluster name', cluster, validateClusterName);
}

function assertTailnet(tailnet: string): void {
  assertValidInput('tailnet', tailnet, validateTailnet);
}

/**
 * Tailnet hostname of a cluster's Tailscale operator (`operatorConfig.hostname`), which serves
 * the cluster's API server proxy.
 *
 * @public
 */
export function operatorHostname(cluster: string): string {
  assertClusterName(cluster);
  return `${cluster}${OPERATOR_HOSTNAME_SUFFIX}`;
}

/**
 * Tailnet hostname of a cluster's east-west gateway (its `tailscale.com/hostname` annotation).
 *
 * @public
 */
export function eastWestGatewayHostname(cluster: string): string {
  assertClusterName(cluster);
  return `${cluster}${EAST_WEST_GATEWAY_HOSTNAME_SUFFIX}`;
}

/**
 * MagicDNS name of a tailnet host.
 *
 * @public
 */
export function tailnetFqdn(host: string, tailnet: string): string {
  assertValidInput('tailnet hostname', host, validateDnsLabel);
  assertTailnet(tailnet);
  return `${host}.${tailnet}`;
}

/**
 * MagicDNS name of a cluster's Tailscale operator.
 *
 * @public
 */
export function operatorFqdn(cluster: string, tailnet: string): string {
  return tailnetFqdn(operatorHostname(cluster), tailnet);
}

/**
 * MagicDNS name of a cluster's east-west gateway.
 *
 * @public
 */
export function eastWestGatewayFqdn(cluster: string, tailnet: string): string {
  return tailnetFqdn(eastWestGatewayHostname(cluster), tailnet);
}

/**
 * URL of a cluster's API server as peers reach it: through its operator's proxy, which serves a
 * publicly trusted certificate for this name, so kubeconfigs need no CA data.
 *
 * @public
 */
export function operatorApiUrl(cluster: string, tailnet: string): string {
  return `https://${operatorFqdn(cluster, tailnet)}`;
}

/**
 * Name of the Istio remote secret through which a cluster's istiod reads `cluster`.
 *
 * @public
 */
export function remoteSecretName(cluster: string): string {
  assertClusterName(cluster);
  return `${REMOTE_SECRET_PREFIX}${cluster}`;
}

/**
 * The cluster a remote secret is named for, or undefined when the name is not a remote secret's.
 * Accepts any DNS-1123 label after the prefix, not only names Tailmesh would create, so that an
 * audit still attributes secrets made by hand or by `istioctl`.
 *
 * @public
 */
export function clusterOfRemoteSecret(secretName: string): string | undefined {
  if (!secretName.startsWith(REMOTE_SECRET_PREFIX)) {
    return undefined;
  }
  const cluster = secretName.slice(REMOTE_SECRET_PREFIX.length);
  return validateDnsLabel(cluster) === undefined ? cluster : undefined;
}

/**
 * Namespace of the egress Services to peer clusters' API server proxies.
 *
 * @public
 */
export const EGRESS_SERVICE_NAMESPACE = TAILSCALE_NAMESPACE;

/**
 * Name of the ExternalName Service (in {@link EGRESS_SERVICE_NAMESPACE}) through which a cluster
 * reaches `peer`'s API server proxy; named like the proxy's hostname, as in the recipe.
 *
 * @public
 */
export function egressServiceName(peer: string): string {
  return operatorHostname(peer);
}

/**
 * Name of the ExternalName Service (in {@link EGRESS_SERVICE_NAMESPACE}) through which a cluster's
 * pods reach `peer`'s east-west gateway; named like the gateway's hostname, so the operator's
 * nameserver answers the gateway's MagicDNS name (meshNetworks' address) with this cluster's
 * egress proxy (tailscale `cmd/k8s-operator/dnsrecords.go`).
 *
 * @public
 */
export function gatewayEgressServiceName(peer: string): string {
  return eastWestGatewayHostname(peer);
}

/**
 * What an egress Service of Tailmesh leads to: a peer's API server proxy or its east-west gateway.
 *
 * @public
 */
export type EgressTarget = 'api-server-proxy' | 'east-west-gateway';

/**
 * Which of a peer's devices the egress Service `name` leads to, by its name; undefined for a
 * Service that is neither.
 *
 * @public
 */
export function egressTargetOf(
  name: string,
  peer: string,
): EgressTarget | undefined {
  if (validateClusterName(peer) !== undefined) return undefined;
  if (name === egressServiceName(peer)) return 'api-server-proxy';
  if (name === gatewayEgressServiceName(peer)) return 'east-west-gateway';
  return undefined;
}

/**
 * First and last comment lines of the one CoreDNS server block Tailmesh owns in a Corefile.
 *
 * @public
 */
export interface CoreDnsStanzaMarkers {
  begin: string;
  end: string;
}

/**
 * Markers delimiting Tailmesh's CoreDNS server block for a tailnet. They name the tailnet so the
 * block can be found, replaced or removed without parsing the rest of the Corefile.
 *
 * @public
 */
export function coreDnsStanzaMarkers(tailnet: string): CoreDnsStanzaMarkers {
  assertTailnet(tailnet);
  return {
    begin: `# tailmesh:begin ${tailnet}`,
    end: `# tailmesh:end ${tailnet}`,
  };
}

/**
 * Whether a Corefile carries Tailmesh's server block for the tailnet; undefined when this Corefile
 * cannot tell: it imports `custom/*.server` (AKS's coredns-custom ConfigMap, where
 * mesh:tailscale:configure-dns then puts the block) and has no block of its own.
 *
 * @public
 */
export function corefileHasTailnetStanza(
  corefile: string,
  tailnet: string,
): boolean | undefined {
  if (corefile.includes(coreDnsStanzaMarkers(tailnet).begin)) return true;
  return /^\s*import\s+custom\/\*\.server\s*$/m.test(corefile)
    ? undefined
    : false;
}
