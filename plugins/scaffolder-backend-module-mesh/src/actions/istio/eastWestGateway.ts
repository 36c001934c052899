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
 * as the chart's values.yaml and templates read them (istio/istio
 * `manifests/charts/gateway/templates/service.yaml` and `deployment.yaml`, the same in the 1.28
 * and 1.29 releases and the development chart):
 * - No `networkGateway`: the chart would label the Service `topology.istio.io/network`, and istiod
 *   then takes that network's gateway address from the Service's load-balancer status
 *   (`pilot/pkg/serviceregistry/kube/controller/network.go`), which the Tailscale operator fills
 *   with the device's 100.x address: pods cannot route there. The gateways are stated in
 *   meshNetworks instead, by MagicDNS name, which each member resolves to its own egress proxy.
 * - So the ports go in `service.ports` (with `networkGateway` set the chart ignores them; the
 *   `networkGatewayPorts` map exists only from Istio 1.30 and the 1.28/1.29 schemas refuse unknown
 *   values), and the network view the chart would set from `networkGateway`
 *   (`ISTIO_META_REQUESTED_NETWORK_VIEW`: the gateway only forwards to its own network) goes in
 *   `env`. The pods' network comes from the injector (`global.network` of the istiod install).
 * - `labels` carries the selector (`istio: eastwestgateway`) the cross-network Gateway selects.
 * - `service.loadBalancerClass` is rendered only when the key is present (`hasKey`).
 */
export function eastWestGatewayValues(
  cluster: string,
  network: string,
): Record<string, unknown> {
  return {
    name: EAST_WEST_GATEWAY_SERVICE,
    labels: { app: EAST_WEST_GATEWAY_SERVICE, ...EAST_WEST_GATEWAY_SELECTOR },
    env: { ISTIO_META_REQUESTED_NETWORK_VIEW: network },
    service: {
      type: 'LoadBalancer',
      loadBalancerClass: TAILSCALE_LOAD_BALANCER_CLASS,
      annotations: {
        [ANNOTATION_TAILSCALE_HOSTNAME]: eastWestGatewayHostname(cluster),
        [ANNOTATION_TAILSCALE_TAGS]: TAG_ISTIO_EAST_WEST_GATEWAY,
      },
      ports: EAST_WEST_GATEWAY_PORTS.map(({ name, port }) => ({
        name,
        port,
        protocol: 'TCP',
        targetPort: port,
      })),
    },
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
