import { MeshActionDeps } from '../service/MeshActionDeps';
import { createCaIssueIntermediateAction } from './ca/issueIntermediate';
import { createIstioConfigureNetworksAction } from './istio/configureNetworks';
import { createIstioCreateRemoteSecretsAction } from './istio/createRemoteSecrets';
import { createIstioDeployEastWestGatewayAction } from './istio/deployEastWestGateway';
import { createIstioInstallAction } from './istio/install';
import { createVerifyAction } from './mesh/verify';

/** Every mesh action, built once from the module's dependencies. */
export function createMeshActions(deps: MeshActionDeps) {
  return [createCaIssueIntermediateAction(deps), createIstioInstallAction(deps), createIstioCreateRemoteSecretsAction(deps), createIstioDeployEastWestGatewayAction(deps), createIstioConfigureNetworksAction(deps), createVerifyAction(deps)];
}
