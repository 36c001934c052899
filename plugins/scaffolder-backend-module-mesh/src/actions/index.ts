import { MeshActionDeps } from '../service/MeshActionDeps';
import { createCaIssueIntermediateAction } from './ca/issueIntermediate';
import { createIstioConfigureNetworksAction } from './istio/configureNetworks';
import { createIstioCreateRemoteSecretsAction } from './istio/createRemoteSecrets';
import { createIstioDeployEastWestGatewayAction } from './istio/deployEastWestGateway';
import { createIstioInstallAction } from './istio/install';
import { createIstioLeaveAction } from './istio/leave';
import { createIstioRemoveRemoteSecretsAction } from './istio/removeRemoteSecrets';
import { createIstioUninstallAction } from './istio/uninstall';
import { createMeshCheckJoinAction } from './mesh/checkJoin';
import { createMeshCheckTrafficAction } from './mesh/checkTraffic';
import { createMeshMembersAction } from './mesh/listMembers';
import { createVerifyAction } from './mesh/verify';
import { createTailscaleConfigureDnsAction } from './tailscale/configureDns';
import { createTailscaleCreateEgressAction } from './tailscale/createEgress';
import { createTailscaleGrantAccessAction } from './tailscale/grantAccess';
import { createTailscaleInstallOperatorAction } from './tailscale/installOperator';
import { createTailscaleRemoveEgressAction } from './tailscale/removeEgress';

/**
 * Every mesh action, built once from the module's dependencies: joining, then leaving.
 *
 * @public
 */
export function createMeshActions(deps: MeshActionDeps) {
  return [
    createMeshMembersAction(deps),
    createMeshCheckJoinAction(deps),
    createTailscaleInstallOperatorAction(deps),
    createTailscaleGrantAccessAction(deps),
    createTailscaleConfigureDnsAction(deps),
    createTailscaleCreateEgressAction(deps),
    createCaIssueIntermediateAction(deps),
    createIstioInstallAction(deps),
    createIstioCreateRemoteSecretsAction(deps),
    createIstioDeployEastWestGatewayAction(deps),
    createIstioConfigureNetworksAction(deps),
    createVerifyAction(deps),
    createMeshCheckTrafficAction(deps),
    createIstioRemoveRemoteSecretsAction(deps),
    createTailscaleRemoveEgressAction(deps),
    createIstioLeaveAction(deps),
    createIstioUninstallAction(deps),
  ];
}
