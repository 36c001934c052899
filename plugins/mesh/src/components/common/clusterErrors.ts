import { ClusterError, ClusterErrorKind } from '@tailmesh/plugin-mesh-common';

/** A few words per kind of failure, ahead of the backend's message that names the cause. */
const CLUSTER_ERROR_LABELS: Record<ClusterErrorKind, string> = {
  unauthorized: 'Credentials rejected',
  forbidden: 'Not allowed by the cluster',
  tls: 'TLS verification failed',
  timeout: 'Timed out',
  dns: 'Host does not resolve',
  'connection-refused': 'Cannot connect',
  unknown: 'Cannot read the cluster',
};

/** The kind of a cluster failure in words, e.g. "Cannot connect". */
export function clusterErrorLabel(error: ClusterError): string {
  return CLUSTER_ERROR_LABELS[error.kind] ?? CLUSTER_ERROR_LABELS.unknown;
}

/** A cluster failure in one line: its kind in words, then the backend's explanation. */
export function describeClusterError(error: ClusterError): string {
  return `${clusterErrorLabel(error)}: ${error.message}`;
}
