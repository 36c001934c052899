/**
 * Istio's network label: on the `istio-system` namespace it sets the cluster's network; on the
 * east-west gateway it marks the gateway of that network.
 *
 * @public
 */
export const LABEL_ISTIO_NETWORK = 'topology.istio.io/network';

/**
 * Label istiod watches for remote secrets; its value must be {@link ISTIO_MULTI_CLUSTER_VALUE}.
 *
 * @public
 */
export const LABEL_ISTIO_MULTI_CLUSTER = 'istio/multiCluster';

/**
 * Value of {@link LABEL_ISTIO_MULTI_CLUSTER} on a remote secret.
 *
 * @public
 */
export const ISTIO_MULTI_CLUSTER_VALUE = 'true';

/**
 * Annotation naming the cluster a remote secret gives access to.
 *
 * @public
 */
export const ANNOTATION_ISTIO_CLUSTER = 'networking.istio.io/cluster';

/**
 * Annotation of an egress (ExternalName) Service naming the tailnet host it forwards to.
 *
 * @public
 */
export const ANNOTATION_TAILSCALE_TAILNET_FQDN = 'tailscale.com/tailnet-fqdn';

/**
 * Annotation setting the tailnet hostname of a Service the operator exposes.
 *
 * @public
 */
export const ANNOTATION_TAILSCALE_HOSTNAME = 'tailscale.com/hostname';

/**
 * Annotation setting the tags (comma-separated) of a Service the operator exposes.
 *
 * @public
 */
export const ANNOTATION_TAILSCALE_TAGS = 'tailscale.com/tags';

/**
 * Annotation mesh:ca:issue-intermediate puts on the `cacerts` Secret: when the intermediate in it
 * expires (ISO 8601). The mesh backend reads it from the Secret's metadata, so it never needs the
 * Secret's data (which holds the intermediate's key).
 *
 * @public
 */
export const ANNOTATION_INTERMEDIATE_NOT_AFTER =
  'tailmesh.dev/intermediate-not-after';

/**
 * Annotation mesh:ca:issue-intermediate puts on the `cacerts` Secret: the SHA-256 fingerprint of
 * the root certificate in it (as openssl prints it). Until istiod publishes `istio-ca-root-cert`,
 * the mesh backend learns the root from this metadata, never from the Secret's data.
 *
 * @public
 */
export const ANNOTATION_ROOT_FINGERPRINT = 'tailmesh.dev/root-fingerprint';

/**
 * Well-known node label for the locality region.
 *
 * @public
 */
export const LABEL_TOPOLOGY_REGION = 'topology.kubernetes.io/region';

/**
 * Well-known node label (and EndpointSlice zone source) for the locality zone.
 *
 * @public
 */
export const LABEL_TOPOLOGY_ZONE = 'topology.kubernetes.io/zone';

/**
 * Recommended label naming the tool that manages an object.
 *
 * @public
 */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';

/**
 * Value of {@link LABEL_MANAGED_BY} on every object Tailmesh creates, so that it only ever
 * updates or deletes its own objects.
 *
 * @public
 */
export const MANAGED_BY_TAILMESH = 'tailmesh';

/**
 * Prefix of Tailmesh's own label and annotation keys.
 *
 * @public
 */
export const TAILMESH_KEY_PREFIX = 'tailmesh.dev/';

/**
 * Label carrying the mesh ID on the objects Tailmesh creates for a mesh.
 *
 * @public
 */
export const LABEL_MESH_ID = `${TAILMESH_KEY_PREFIX}mesh-id`;

/**
 * Label on an egress Service naming the peer cluster it leads to.
 *
 * @public
 */
export const LABEL_PEER = `${TAILMESH_KEY_PREFIX}peer`;
