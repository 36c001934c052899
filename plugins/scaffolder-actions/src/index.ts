/**
 * Scaffolder actions that join a Kubernetes cluster to a multi-primary Istio mesh over Tailscale.
 *
 * @packageDocumentation
 */
export { scaffolderModuleMesh as default } from './module';
export { createMeshActions } from './actions';
export { createMeshActionDeps } from './service/MeshActionDeps';
export type { MeshActionDeps } from './service/MeshActionDeps';
export {
  createIstioInstallAction,
  ISTIO_INSTALL_ACTION_ID,
} from './actions/istio/install';
export { createVerifyAction, VERIFY_ACTION_ID } from './actions/mesh/verify';
