/**
 * Scaffolder actions that join a Kubernetes cluster to a multi-primary Istio mesh over Tailscale.
 *
 * @packageDocumentation
 */
export { scaffolderModuleMesh as default } from './module';
export { createMeshActions } from './actions';
export { createMeshActionDeps } from './service/MeshActionDeps';
export type { MeshActionDeps } from './service/MeshActionDeps';
export type { MeshCharts } from './service/charts';
export type {
  ChartRef,
  Helm,
  HelmOutcome,
  HelmReleaseSpec,
  HelmRunOptions,
  ReleaseOwnership,
} from './service/helm';
export {
  createIstioInstallAction,
  ISTIO_INSTALL_ACTION_ID,
} from './actions/istio/install';
export { createVerifyAction, VERIFY_ACTION_ID } from './actions/mesh/verify';
export {
  createMeshCheckJoinAction,
  MESH_CHECK_JOIN_ACTION_ID,
} from './actions/mesh/checkJoin';
export {
  createMeshCheckTrafficAction,
  MESH_CHECK_TRAFFIC_ACTION_ID,
} from './actions/mesh/checkTraffic';
export { TRAFFIC_CHECK_LABEL } from './actions/mesh/trafficCheckJob';
export {
  createCaIssueIntermediateAction,
  CA_ISSUE_INTERMEDIATE_ACTION_ID,
} from './actions/ca/issueIntermediate';
export {
  createIstioCreateRemoteSecretsAction,
  ISTIO_CREATE_REMOTE_SECRETS_ACTION_ID,
} from './actions/istio/createRemoteSecrets';
export {
  createIstioDeployEastWestGatewayAction,
  ISTIO_DEPLOY_EAST_WEST_GATEWAY_ACTION_ID,
} from './actions/istio/deployEastWestGateway';
export {
  createIstioConfigureNetworksAction,
  ISTIO_CONFIGURE_NETWORKS_ACTION_ID,
} from './actions/istio/configureNetworks';
export {
  createTailscaleInstallOperatorAction,
  TAILSCALE_INSTALL_OPERATOR_ACTION_ID,
} from './actions/tailscale/installOperator';
export {
  createTailscaleGrantAccessAction,
  TAILSCALE_GRANT_ACCESS_ACTION_ID,
} from './actions/tailscale/grantAccess';
export {
  createTailscaleConfigureDnsAction,
  TAILSCALE_CONFIGURE_DNS_ACTION_ID,
} from './actions/tailscale/configureDns';
export {
  createTailscaleCreateEgressAction,
  TAILSCALE_CREATE_EGRESS_ACTION_ID,
} from './actions/tailscale/createEgress';
export {
  createMeshMembersAction,
  MESH_MEMBERS_ACTION_ID,
} from './actions/mesh/listMembers';
export {
  createIstioRemoveRemoteSecretsAction,
  ISTIO_REMOVE_REMOTE_SECRETS_ACTION_ID,
} from './actions/istio/removeRemoteSecrets';
export {
  createTailscaleRemoveEgressAction,
  TAILSCALE_REMOVE_EGRESS_ACTION_ID,
} from './actions/tailscale/removeEgress';
export {
  createIstioLeaveAction,
  ISTIO_LEAVE_ACTION_ID,
} from './actions/istio/leave';
export {
  createIstioUninstallAction,
  ISTIO_UNINSTALL_ACTION_ID,
} from './actions/istio/uninstall';
