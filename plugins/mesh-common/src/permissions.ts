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
