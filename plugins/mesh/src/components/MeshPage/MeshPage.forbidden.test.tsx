import { AuthorizeResult } from '@backstage/plugin-permission-common';
import { permissionApiRef } from '@backstage/plugin-permission-react';
import {
  mockApis,
  renderInTestApp,
  TestApiProvider,
} from '@backstage/test-utils';
import { screen } from '@testing-library/react';
import { meshApiRef } from '../../api';
import { fakeMeshApi } from '../../testUtils/meshFixtures';
import { MeshPage } from './MeshPage';

// A file of its own: usePermission caches decisions per permission for the whole test file.
describe('MeshPage without mesh.membership.read', () => {
  it('says the user is not allowed and asks the backend for nothing', async () => {
    const meshApi = fakeMeshApi();
    const permissionApi = mockApis.permission({
      authorize: AuthorizeResult.DENY,
    });
    await renderInTestApp(
      <TestApiProvider
        apis={[
          [meshApiRef, meshApi],
          [permissionApiRef, permissionApi],
        ]}
      >
        <MeshPage />
      </TestApiProvider>,
    );
    expect(await screen.findByText('Not allowed')).toBeInTheDocument();
    expect(
      screen.getByText(/needs the mesh\.membership\.read permission/),
    ).toBeInTheDocument();
    expect(meshApi.getClusters).not.toHaveBeenCalled();
    expect(meshApi.getMembership).not.toHaveBeenCalled();
  });
});
