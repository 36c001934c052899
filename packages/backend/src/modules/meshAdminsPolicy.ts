import { createBackendModule } from '@backstage/backend-plugin-api';
import {
  AuthorizeResult,
  PolicyDecision,
  isPermission,
} from '@backstage/plugin-permission-common';
import {
  PermissionPolicy,
  PolicyQuery,
  PolicyQueryUser,
} from '@backstage/plugin-permission-node';
import { policyExtensionPoint } from '@backstage/plugin-permission-node/alpha';
import {
  createScaffolderActionConditionalDecision,
  scaffolderActionConditions,
} from '@backstage/plugin-scaffolder-backend/alpha';
import { actionExecutePermission } from '@backstage/plugin-scaffolder-common/alpha';
import { MESH_ACTION_IDS } from '@tailmesh/plugin-mesh-common';

/** Members of this group may run the mesh actions (join, leave); everyone else reads. */
export const MESH_ADMINS_GROUP = 'group:default/mesh-admins';

/**
 * The local product's policy, the one the README shows: everything is allowed except the mesh
 * scaffolder actions, which only members of group mesh-admins may run. The scaffolder asks for
 * actionExecutePermission before every step and applies the conditions on the action id itself,
 * so a reader's Join or Leave fails before its first step and writes nothing.
 */
export class MeshAdminsPolicy implements PermissionPolicy {
  async handle(
    request: PolicyQuery,
    user?: PolicyQueryUser,
  ): Promise<PolicyDecision> {
    if (
      isPermission(request.permission, actionExecutePermission) &&
      !user?.info.ownershipEntityRefs.includes(MESH_ADMINS_GROUP)
    ) {
      const [first, ...rest] = MESH_ACTION_IDS.map(actionId =>
        scaffolderActionConditions.hasActionId({ actionId }),
      );
      return createScaffolderActionConditionalDecision(request.permission, {
        not: { anyOf: [first, ...rest] },
      });
    }
    return { result: AuthorizeResult.ALLOW };
  }
}

export const permissionModuleMeshAdminsPolicy = createBackendModule({
  pluginId: 'permission',
  moduleId: 'mesh-admins-policy',
  register(reg) {
    reg.registerInit({
      deps: { policy: policyExtensionPoint },
      async init({ policy }) {
        policy.setPolicy(new MeshAdminsPolicy());
      },
    });
  },
});
