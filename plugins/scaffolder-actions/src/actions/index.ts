import { MeshActionDeps } from '../service/MeshActionDeps';
import { createCaIssueIntermediateAction } from './ca/issueIntermediate';
import { createIstioConfigureNetworksAction } from './istio/configureNetworks';
import { createIstioCreateRemoteSecretsAction } from './istio/createRemoteSecrets';
import { createIstioDeployEastWestGatewayAction } from './istio/deployEastWestGateway';
import { createIstioInstallAction } from './istio/install';
import { createVerifyAction } from './mesh/verify';
import { createTailscaleConfigureDnsAction } from './tailscale/configureDns';
import { createTailscaleCreateEgressAction } from './tailscale/createEgress';
import { createTailscaleGrantAccessAction } from './tailscale/grantAccess';
import { createTailscaleInstallOperatorAction } from './tailscale/installOperator';

/** Every mesh action, built once from the module's dependencies. */
export function createMeshActions(deps: MeshActionDeps) {
  return [
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
  ];
}
