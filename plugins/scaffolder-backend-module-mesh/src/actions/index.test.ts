import { ConfigReader } from '@backstage/config';
import { MESH_ACTION_IDS } from '@tailmesh/plugin-mesh-common';
import { createMeshActionDeps } from '../service/MeshActionDeps';
import { createMeshActions } from '.';

describe('createMeshActions', () => {
  it('registers exactly the actions MESH_ACTION_IDS names, which permission policies guard', () => {
    const deps = createMeshActionDeps(
      new ConfigReader({ mesh: { clusters: [] } }),
    );
    expect(createMeshActions(deps).map(a => a.id)).toEqual(MESH_ACTION_IDS);
  });
});
