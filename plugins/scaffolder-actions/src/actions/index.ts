import { MeshActionDeps } from '../service/MeshActionDeps';
import { createIstioInstallAction } from './istio/install';
import { createVerifyAction } from './mesh/verify';

/** Every mesh action, built once from the module's dependencies. */
export function createMeshActions(deps: MeshActionDeps) {
  return [createIstioInstallAction(deps), createVerifyAction(deps)];
}
