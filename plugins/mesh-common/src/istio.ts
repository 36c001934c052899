/**
 * Namespace of the Istio control plane, its CA secret and its east-west gateway.
 *
 * @public
 */
export const ISTIO_NAMESPACE = 'istio-system';

/**
 * Helm release of Istio's base chart (CRDs and cluster-wide resources).
 *
 * @public
 */
export const ISTIO_BASE_RELEASE = 'istio-base';

/**
 * Helm release of the istiod chart.
 *
 * @public
 */
export const ISTIOD_RELEASE = 'istiod';

/**
 * Helm release of the east-west gateway (Istio's gateway chart).
 *
 * @public
 */
export const EAST_WEST_GATEWAY_RELEASE = 'istio-eastwestgateway';

/**
 * Name of istiod's Deployment for the default revision; see {@link istiodDeploymentName}.
 *
 * @public
 */
export const ISTIOD_DEPLOYMENT = 'istiod';

/**
 * Name of istiod's Deployment: the istiod chart appends `-<revision>` for a revisioned install.
 *
 * @public
 */
export function istiodDeploymentName(revision: string = ''): string {
  return revision === ''
    ? ISTIOD_DEPLOYMENT
    : `${ISTIOD_DEPLOYMENT}-${revision}`;
}

/**
 * Name of the east-west gateway's Service and Deployment (the gateway chart's `name` value).
 *
 * @public
 */
export const EAST_WEST_GATEWAY_SERVICE = 'istio-eastwestgateway';

/**
 * Labels selecting the east-west gateway's pods: set through the gateway chart's `labels` value
 * and used as the selector of {@link CROSS_NETWORK_GATEWAY}, so both must come from here.
 *
 * @public
 */
export const EAST_WEST_GATEWAY_SELECTOR: Readonly<Record<string, string>> = {
  istio: 'eastwestgateway',
};

/**
 * Istio Gateway resource that exposes all `*.local` services on the east-west gateway with
 * AUTO_PASSTHROUGH.
 *
 * @public
 */
export const CROSS_NETWORK_GATEWAY = 'cross-network-gateway';

/**
 * East-west gateway port for the readiness probe.
 *
 * @public
 */
export const EAST_WEST_STATUS_PORT = 15021;

/**
 * East-west gateway port that carries cross-network mTLS traffic; meshNetworks gateways use it.
 *
 * @public
 */
export const EAST_WEST_TLS_PORT = 15443;

/**
 * A named port of the east-west gateway Service.
 *
 * @public
 */
export interface EastWestGatewayPort {
  name: string;
  port: number;
}

/**
 * The east-west gateway Service's ports, named as the gateway chart names them for a network
 * gateway (istio/istio `manifests/charts/gateway/templates/service.yaml`). Multi-primary needs
 * only the readiness port and the cross-network mTLS port: the chart's `tls-istiod` (15012) and
 * `tls-webhook` (15017) serve remote (primary-remote) clusters, and exposing istiod on the
 * tailnet would only widen what a peer can reach.
 *
 * @public
 */
export const EAST_WEST_GATEWAY_PORTS: ReadonlyArray<EastWestGatewayPort> = [
  { name: 'status-port', port: EAST_WEST_STATUS_PORT },
  { name: 'tls', port: EAST_WEST_TLS_PORT },
];

/**
 * istiod's ConfigMap for the default revision (`istio-<revision>` otherwise).
 *
 * @public
 */
export const ISTIO_MESH_CONFIGMAP = 'istio';

/**
 * Key of {@link ISTIO_MESH_CONFIGMAP} holding the MeshConfig.
 *
 * @public
 */
export const ISTIO_MESH_CONFIG_KEY = 'mesh';

/**
 * Key of {@link ISTIO_MESH_CONFIGMAP} holding meshNetworks (`networks: ...`), which istiod watches
 * on its own. meshNetworks is not a MeshConfig field: the recipe nests it under `mesh`, where
 * istiod does not look for it.
 *
 * @public
 */
export const ISTIO_MESH_NETWORKS_KEY = 'meshNetworks';

/**
 * ConfigMap istiod writes into every namespace with the mesh's root certificate; public, so read
 * it rather than `cacerts`.
 *
 * @public
 */
export const ISTIO_CA_ROOT_CERT_CONFIGMAP = 'istio-ca-root-cert';

/**
 * Key of {@link ISTIO_CA_ROOT_CERT_CONFIGMAP} holding the PEM root certificate.
 *
 * @public
 */
export const ISTIO_CA_ROOT_CERT_KEY = 'root-cert.pem';

/**
 * Secret in {@link ISTIO_NAMESPACE} holding istiod's plugged-in CA.
 *
 * @public
 */
export const CACERTS_SECRET = 'cacerts';

/**
 * Keys of {@link CACERTS_SECRET}. `certChain` is the intermediate followed by the root.
 *
 * @public
 */
export const CACERTS_KEYS = {
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  rootCert: 'root-cert.pem',
  certChain: 'cert-chain.pem',
} as const;

/**
 * Prefix of Istio remote secrets; see `remoteSecretName`.
 *
 * @public
 */
export const REMOTE_SECRET_PREFIX = 'istio-remote-secret-';

/**
 * Suffix of the east-west gateway's tailnet hostname; see `eastWestGatewayHostname`.
 *
 * @public
 */
export const EAST_WEST_GATEWAY_HOSTNAME_SUFFIX = `-${EAST_WEST_GATEWAY_SERVICE}`;
