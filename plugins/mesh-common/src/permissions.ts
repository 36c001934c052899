import { createPermission } from '@backstage/plugin-permission-common';

/**
 * Read the clusters' and services' mesh status.
 *
 * @public
 */
export const meshStatusReadPermission = createPermission({
  name: 'mesh.status.read',
  attributes: { action: 'read' },
});

/**
 * Read the membership matrix, the audit's findings and the membership history.
 *
 * @public
 */
export const meshMembershipReadPermission = createPermission({
  name: 'mesh.membership.read',
  attributes: { action: 'read' },
});

/**
 * Every permission of the mesh plugins, for the backend to register.
 *
 * @public
 */
export const meshPermissions = [
  meshStatusReadPermission,
  meshMembershipReadPermission,
];

/**
 * The id of every scaffolder action of the mesh module (`@tailmesh/plugin-scaffolder-backend-module-mesh`),
 * for permission policies: the scaffolder checks `actionExecutePermission` for each step, and a
 * conditional decision on these ids (the scaffolder's `hasActionId` rule) lets only mesh admins
 * run them, so a user who may read the mesh may not join or remove a cluster. The module's tests
 * check that this list is exactly its actions.
 *
 * @public
 */
export const MESH_ACTION_IDS: readonly string[] = [
  'mesh:members',
  'mesh:check-join',
  'mesh:tailscale:install-operator',
  'mesh:tailscale:grant-access',
  'mesh:tailscale:configure-dns',
  'mesh:tailscale:create-egress',
  'mesh:ca:issue-intermediate',
  'mesh:istio:install',
  'mesh:istio:create-remote-secrets',
  'mesh:istio:deploy-eastwest-gateway',
  'mesh:istio:configure-networks',
  'mesh:verify',
  'mesh:check-traffic',
  'mesh:istio:remove-remote-secrets',
  'mesh:tailscale:remove-egress',
  'mesh:istio:leave',
  'mesh:istio:uninstall',
];
