/**
 * Namespace of CoreDNS.
 *
 * @public
 */
export const KUBE_SYSTEM_NAMESPACE = 'kube-system';

/**
 * CoreDNS's ConfigMap, into which Tailmesh adds one server block for the tailnet domain.
 *
 * @public
 */
export const COREDNS_CONFIGMAP = 'coredns';

/**
 * Key of {@link COREDNS_CONFIGMAP} holding the Corefile.
 *
 * @public
 */
export const COREDNS_COREFILE_KEY = 'Corefile';

/**
 * Server-side apply field manager of everything Tailmesh writes, so that its fields can be told
 * apart from (and never fight with) those of Helm, kubectl or the operators.
 *
 * @public
 */
export const FIELD_MANAGER = 'tailmesh';
