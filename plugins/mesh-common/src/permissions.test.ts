import { isPermission } from '@backstage/plugin-permission-common';
import {
  meshMembershipReadPermission,
  meshPermissions,
  meshStatusReadPermission,
} from './permissions';

describe('permissions', () => {
  it('defines basic read permissions', () => {
    expect(meshStatusReadPermission).toEqual({
      type: 'basic',
      name: 'mesh.status.read',
      attributes: { action: 'read' },
    });
    expect(meshMembershipReadPermission).toEqual({
      type: 'basic',
      name: 'mesh.membership.read',
      attributes: { action: 'read' },
    });
  });

  it('lists every permission once', () => {
    expect(meshPermissions.map(p => p.name)).toEqual([
      'mesh.status.read',
      'mesh.membership.read',
    ]);
    expect(isPermission(meshPermissions[0], meshStatusReadPermission)).toBe(
      true,
    );
  });
});
