/**
 * Namespace of the Tailscale operator, its proxies and the egress Services to peer clusters.
 *
 * @public
 */
export const TAILSCALE_NAMESPACE = 'tailscale';

/**
 * Helm release of the Tailscale operator chart.
 *
 * @public
 */
export const TAILSCALE_OPERATOR_RELEASE = 'tailscale-operator';

/**
 * Name of the operator's Deployment: the chart hard-codes `operator` whatever the release is
 * called.
 *
 * @public
 */
export const TAILSCALE_OPERATOR_DEPLOYMENT = 'operator';

/**
 * Name of the operator's DNSConfig (tailscale.com/v1alpha1), which runs the nameserver CoreDNS
 * forwards the tailnet domain to.
 *
 * @public
 */
export const TAILSCALE_DNS_CONFIG = 'ts-dns';

/**
 * `loadBalancerClass` that makes the Tailscale operator expose a Service on the tailnet.
 *
 * @public
 */
export const TAILSCALE_LOAD_BALANCER_CLASS = 'tailscale';

/**
 * Tag the operators' devices carry, and so the API server proxies peers reach.
 *
 * @public
 */
export const TAG_K8S_OPERATOR = 'tag:k8s-operator';

/**
 * Tag of the east-west gateways' devices.
 *
 * @public
 */
export const TAG_ISTIO_EAST_WEST_GATEWAY = 'tag:istio-eastwestgateway';

/**
 * Tailnet policy capability through which the operator's API server proxy (auth mode) learns whom
 * to impersonate.
 *
 * @public
 */
export const TAILSCALE_KUBERNETES_CAPABILITY = 'tailscale.com/cap/kubernetes';

/**
 * Suffix of the operator's tailnet hostname; see `operatorHostname`.
 *
 * @public
 */
export const OPERATOR_HOSTNAME_SUFFIX = '-k8s-operator';

/**
 * Condition the Tailscale operator sets on a Service once its proxy (ingress or egress) is ready.
 *
 * @public
 */
export const TAILSCALE_PROXY_READY_CONDITION = 'TailscaleProxyReady';

/**
 * Tag of every proxy device the Tailscale operator creates (the chart's `proxyConfig.defaultTags`),
 * egress proxies included: a cluster's istiod reaches a peer's API server proxy through its own
 * egress proxy, so this is the identity the peer's proxy sees.
 *
 * @public
 */
export const TAG_K8S_PROXY = 'tag:k8s';

/**
 * Tag of the egress proxies Tailmesh creates (the `tailscale.com/tags` annotation of its egress
 * Services): the only devices that send mesh traffic (istiod's API calls to peers, and pods'
 * requests to peers' east-west gateways), so the mesh's grants name exactly them and no other
 * proxy of the operator. Owned by {@link TAG_K8S_OPERATOR}, as the operator may only create
 * devices with tags it owns (tailscale.com/kb/1236).
 *
 * @public
 */
export const TAG_MESH_EGRESS = 'tag:tailmesh-egress';
