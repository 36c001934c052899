import { coreExtensionData } from '@backstage/frontend-plugin-api';
import {
  createExtensionTester,
  renderInTestApp,
} from '@backstage/frontend-test-utils';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import { EntityCardBlueprint } from '@backstage/plugin-catalog-react/alpha';
import { FormFieldBlueprint } from '@backstage/plugin-scaffolder-react/alpha';
import { screen } from '@testing-library/react';
import { meshApiRef } from '../api';
import {
  serviceEntity,
  echoServedByTwoOfThree,
  fakeMeshApi,
} from '../testUtils/meshFixtures';
import meshPlugin, {
  entityMeshCard,
  meshClusterPickerFormField,
  meshPage,
} from '.';

const entity = serviceEntity;

describe('the mesh plugin in the new frontend system', () => {
  it('is the mesh plugin with its API, page, entity card and form field', () => {
    expect(meshPlugin.getExtension('api:mesh')).toBeDefined();
    expect(meshPlugin.getExtension('page:mesh')).toBeDefined();
    expect(meshPlugin.getExtension('entity-card:mesh')).toBeDefined();
    expect(
      meshPlugin.getExtension('scaffolder-form-field:mesh/mesh-cluster-picker'),
    ).toBeDefined();
  });

  it('mounts the mesh page at /mesh with the title the navigation shows', () => {
    const tester = createExtensionTester(meshPage);
    expect(tester.get(coreExtensionData.routePath)).toBe('/mesh');
    expect(tester.get(coreExtensionData.title)).toBe('Mesh');
  });

  it('offers the card only for entities that name a mesh Service', () => {
    const filter = createExtensionTester(entityMeshCard).get(
      EntityCardBlueprint.dataRefs.filterFunction,
    )!;
    expect(filter(entity({ 'tailmesh.dev/service': 'default/echo' }))).toBe(
      true,
    );
    expect(filter(entity({ 'backstage.io/kubernetes-id': 'echo' }))).toBe(true);
    expect(filter(entity({}))).toBe(false);
  });

  it("renders the card with the entity's Service across the mesh", async () => {
    const meshApi = fakeMeshApi({
      getServiceStatus: jest.fn(async () => echoServedByTwoOfThree()),
    });
    const tester = createExtensionTester(entityMeshCard, {
      apis: [[meshApiRef, meshApi]],
    });
    await renderInTestApp(
      <EntityProvider
        entity={entity({ 'tailmesh.dev/service': 'default/echo' })}
      >
        {tester.reactElement()}
      </EntityProvider>,
      { apis: [[meshApiRef, meshApi]] },
    );
    expect(
      await screen.findByRole('rowheader', { name: 'cluster1' }),
    ).toBeInTheDocument();
    expect(meshApi.getServiceStatus).toHaveBeenCalledWith({
      namespace: 'default',
      name: 'echo',
    });
  });

  it('loads the MeshClusterPicker form field', async () => {
    const load = createExtensionTester(meshClusterPickerFormField).get(
      FormFieldBlueprint.dataRefs.formFieldLoader,
    );
    const field = await load();
    expect(field.$$type).toBe('@backstage/scaffolder/FormField');
  });
});
