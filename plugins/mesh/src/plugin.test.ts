import * as mesh from './index';

describe('@tailmesh/plugin-mesh', () => {
  it('exports the plugin, its extensions and its API under the agreed names', () => {
    expect(mesh.meshPlugin.getId()).toBe('mesh');
    expect(mesh.meshApiRef.id).toBe('plugin.mesh.service');
    expect(mesh.rootRouteRef).toBeDefined();
    expect(typeof mesh.MeshClient).toBe('function');
    expect(typeof mesh.isMeshAvailable).toBe('function');
    for (const extension of [
      mesh.MeshPage,
      mesh.EntityMeshCard,
      mesh.MeshClusterPickerFieldExtension,
    ]) {
      expect(extension).toBeDefined();
    }
  });

  it('provides the mesh client through the plugin', () => {
    const apiIds = [...mesh.meshPlugin.getApis()].map(
      factory => factory.api.id,
    );
    expect(apiIds).toEqual([mesh.meshApiRef.id]);
  });

  it('offers the card for entities with the mesh annotation or the Kubernetes fallback', () => {
    const entity = (annotations: Record<string, string>) => ({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Component',
      metadata: { name: 'echo', annotations },
    });
    expect(
      mesh.isMeshAvailable(entity({ 'tailmesh.dev/service': 'default/echo' })),
    ).toBe(true);
    expect(
      mesh.isMeshAvailable(entity({ 'backstage.io/kubernetes-id': 'echo' })),
    ).toBe(true);
    expect(mesh.isMeshAvailable(entity({}))).toBe(false);
  });
});
