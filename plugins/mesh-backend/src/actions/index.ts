import { ActionsRegistryService } from '@backstage/backend-plugin-api/alpha';
import { MeshStatusService } from '../service/MeshStatusService';
import { registerGetEntityReachabilityAction } from './getEntityReachability';
import { registerGetMeshAuditAction } from './getMeshAudit';
import { registerGetMeshStatusAction } from './getMeshStatus';

/**
 * Registers the mesh's read-only answers in Backstage's actions registry, where the MCP actions
 * backend (`@backstage/plugin-mcp-actions-backend`) serves them to AI agents. Each is guarded by
 * the permission of the route it mirrors (`visibilityPermission`: a caller without it neither
 * sees nor runs it).
 */
export function registerMeshActions(
  registry: ActionsRegistryService,
  service: Pick<
    MeshStatusService,
    'clusters' | 'membership' | 'entityReachability'
  >,
): void {
  registerGetMeshStatusAction(registry, service);
  registerGetEntityReachabilityAction(registry, service);
  registerGetMeshAuditAction(registry, service);
}
