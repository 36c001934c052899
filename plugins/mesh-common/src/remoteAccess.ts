import { ISTIO_NAMESPACE } from './istio';

/**
 * Kubernetes group the tailnet grant impersonates when one cluster's istiod reads another's API
 * through the operator's proxy. Bound only to Istio's reader ClusterRole, unlike the recipe's
 * `system:masters`, which made every cluster an admin of every other.
 *
 * @public
 */
export const ISTIO_REMOTE_READERS_GROUP = 'tailmesh:istio-remote-readers';

/**
 * ClusterRoleBinding that binds {@link ISTIO_REMOTE_READERS_GROUP} to Istio's reader ClusterRole.
 *
 * @public
 */
export const ISTIO_REMOTE_READERS_BINDING = 'tailmesh-istio-remote-readers';

/**
 * Where istiod is installed; both parts appear in the name of its reader ClusterRole.
 *
 * @public
 */
export interface IstioInstallation {
  /** Defaults to `istio-system`. */
  namespace?: string;
  /** Empty (the default) for the default revision. */
  revision?: string;
}

/**
 * Name of the reader ClusterRole the istiod chart creates for multicluster access:
 * `istio-reader-clusterrole[-<revision>]-<namespace>`.
 *
 * @public
 */
export function istioReaderClusterRoleName(
  installation: IstioInstallation = {},
): string {
  const namespace = installation.namespace ?? ISTIO_NAMESPACE;
  const revision = installation.revision ?? '';
  const revisionPart = revision === '' ? '' : `-${revision}`;
  return `istio-reader-clusterrole${revisionPart}-${namespace}`;
}
