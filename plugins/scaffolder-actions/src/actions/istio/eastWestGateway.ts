import {
  KubernetesObject,
  V1LoadBalancerIngress,
} from '@kubernetes/client-node';
import {
  ANNOTATION_TAILSCALE_HOSTNAME,
  ANNOTATION_TAILSCALE_TAGS,
  CROSS_NETWORK_GATEWAY,
  EAST_WEST_GATEWAY_PORTS,
  EAST_WEST_GATEWAY_SELECTOR,
  EAST_WEST_GATEWAY_SERVICE,
  EAST_WEST_TLS_PORT,
  ISTIO_NAMESPACE,
  LABEL_ISTIO_NETWORK,
  LABEL_MANAGED_BY,
  MANAGED_BY_TAILMESH,
  TAG_ISTIO_EAST_WEST_GATEWAY,
  TAILSCALE_LOAD_BALANCER_CLASS,
  eastWestGatewayHostname,
} from '@tailmesh/plugin-mesh-common';

/**
 * Values of Istio's gateway chart for the east-west gateway of `cluster` (recipe step 7), keyed
 * as the chart's values.yaml and templates read them:
 * - `labels` is a map, so the dotted network label is one key (the recipe's
 *   `--set labels.topology.istio.io/network=...` would nest it under `topology`). The chart adds
 *   `topology.istio.io/network` itself from `networkGateway` to the Service and the pods, and
 *   renders `labels` onto the same objects again, so giving it in both places writes the key
 *   twice in one mapping (helm 3 keeps the last one; stricter YAML readers refuse it).
 *   `networkGateway` alone labels every object istiod looks at.
 * - With `networkGateway` set the chart ignores `service.ports` and renders
 *   `networkGatewayPorts` (a map by port name), so the ports go there.
 * - `service.loadBalancerClass` is rendered only when the key is present (`hasKey`).
 */
export function eastWestGatewayValues(
  cluster: string,
  network: string,
): Record<string, unknown> {
  return {
    name: EAST_WEST_GATEWAY_SERVICE,
    labels: { app: EAST_WEST_GATEWAY_SERVICE, ...EAST_WEST_GATEWAY_SELECTOR },
    networkGateway: network,
    service: {
      type: 'LoadBalancer',
      loadBalancerClass: TAILSCALE_LOAD_BALANCER_CLASS,
      annotations: {
        [ANNOTATION_TAILSCALE_HOSTNAME]: eastWestGatewayHostname(cluster),
        [ANNOTATION_TAILSCALE_TAGS]: TAG_ISTIO_EAST_WEST_GATEWAY,
      },
    },
    networkGatewayPorts: Object.fromEntries(
      EAST_WEST_GATEWAY_PORTS.map(({ name, port }) => [
        name,
        { port, targetPort: port },
      ]),
    ),
  };
}

/** Name of the east-west gateway's cross-network mTLS port, as the chart names it. */
const TLS_PORT_NAME = EAST_WEST_GATEWAY_PORTS.find(
  p => p.port === EAST_WEST_TLS_PORT,
)!.name;

/**
 * The Gateway that lets other networks reach every `*.local` service through the east-west
 * gateway: AUTO_PASSTHROUGH routes on SNI without terminating the workloads' mTLS.
 */
export function crossNetworkGateway(): KubernetesObject & {
  spec: Record<string, unknown>;
} {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: {
      name: CROSS_NETWORK_GATEWAY,
      namespace: ISTIO_NAMESPACE,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY_TAILMESH },
    },
    spec: {
      selector: { ...EAST_WEST_GATEWAY_SELECTOR },
      servers: [
        {
          port: {
            number: EAST_WEST_TLS_PORT,
            name: TLS_PORT_NAME,
            protocol: 'TLS',
          },
          tls: { mode: 'AUTO_PASSTHROUGH' },
          hosts: ['*.local'],
        },
      ],
    },
  };
}

/** What the Tailscale operator wrote into the Service's load-balancer status. */
export interface GatewayIngress {
  hostname?: string;
  ip?: string;
}

/**
 * The operator writes the device's MagicDNS name and its tailnet IPs as separate ingress entries;
 * undefined while there is none.
 */
export function gatewayIngress(
  ingress: ReadonlyArray<V1LoadBalancerIngress> | undefined,
): GatewayIngress | undefined {
  if (!ingress?.length) return undefined;
  const hostname = ingress.find(i => i.hostname)?.hostname;
  const ip = ingress.find(i => i.ip)?.ip;
  if (!hostname && !ip) return undefined;
  return { ...(hostname ? { hostname } : {}), ...(ip ? { ip } : {}) };
}

/** The label of the istio-system namespace that names the cluster's network, if any. */
export function namespaceNetwork(ns: KubernetesObject): string | undefined {
  return ns.metadata?.labels?.[LABEL_ISTIO_NETWORK];
}
