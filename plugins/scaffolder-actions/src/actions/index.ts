import { MeshActionDeps } from '../service/MeshActionDeps';
import { createIstioInstallAction } from './istio/install';

/** Every mesh action, built once from the module's dependencies. */
export function createMeshActions(deps: MeshActionDeps) {
  return [createIstioInstallAction(deps)];
}
