/**
 * Node-side pieces that the mesh backend and the scaffolder module share: reading the cluster
 * configuration, building cluster clients, describing cluster errors, the Tailscale API client.
 *
 * @packageDocumentation
 */
export { ClusterAccess } from './clusters/ClusterAccess';
export type { ClusterListChange } from './clusters/ClusterAccess';
export { readClusterConfig } from './clusters/readClusterConfig';
export type { MeshClusterConnection } from './clusters/readClusterConfig';
export {
  clusterAccessFromSupplier,
  configMeshClustersSupplier,
  meshClustersSupplierServiceRef,
} from './clusters/supplier';
export type { MeshClustersSupplier } from './clusters/supplier';
export {
  describeClusterError,
  describeClusterErrorForReaders,
} from './clusters/describeClusterError';
export {
  DEFAULT_CLUSTER_REQUEST_TIMEOUT_SECONDS,
  clusterRequestTimeoutError,
  makeApiClientWithTimeout,
  readClusterRequestTimeoutMs,
} from './clusters/requestTimeout';
export {
  TailscaleClient,
  PolicyChangedError,
} from './tailscale/TailscaleClient';
export { parsePolicyFile } from './tailscale/parsePolicyFile';
export type {
  PolicyFile,
  PolicyValidation,
  TailnetSettings,
  TailscaleClientOptions,
} from './tailscale/TailscaleClient';
export {
  readClusterSnapshot,
  readIstiodRemoteView,
  certificateFingerprint,
  certificateNotAfter,
  deploymentReady,
  deploymentReplicas,
  imageTag,
} from './snapshot/readClusterSnapshot';
export { networkPolicyView } from './snapshot/networkPolicyView';
