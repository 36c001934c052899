import { FieldExtensionComponentProps } from '@backstage/plugin-scaffolder-react';
import { renderInTestApp, TestApiProvider } from '@backstage/test-utils';
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { MeshApi, meshApiRef } from '../../api';
import { fakeMeshApi, healthyClusters } from '../../testUtils/meshFixtures';
import { MeshClusterPicker } from './MeshClusterPicker';

async function renderPicker(meshApi: MeshApi, formData?: string) {
  const onChange = jest.fn();
  // Only the props the field reads; the rest of rjsf's field props do not matter here.
  const props = {
    onChange,
    required: true,
    schema: {
      title: 'Cluster',
      description: 'A cluster configured in mesh.clusters.',
    },
    uiSchema: {},
    rawErrors: [],
    formData,
    idSchema: { $id: 'root_cluster' },
  } as unknown as FieldExtensionComponentProps<string>;
  await renderInTestApp(
    <TestApiProvider apis={[[meshApiRef, meshApi]]}>
      <MeshClusterPicker {...props} />
    </TestApiProvider>,
  );
  return { onChange };
}

describe('MeshClusterPicker', () => {
  it('lists the configured clusters, marking members and sync health', async () => {
    const meshApi = fakeMeshApi({
      getClusters: jest.fn(async () => healthyClusters()),
    });
    await renderPicker(meshApi);
    await userEvent.click(
      await screen.findByRole('button', { name: /Cluster/ }),
    );
    const options = await screen.findAllByRole('option');
    expect(options.map(option => option.getAttribute('data-value'))).toEqual([
      'cluster1',
      'cluster2',
      'cluster3',
      'cluster4',
    ]);
    expect(options[0]).toHaveAccessibleName('cluster1, member, reachable');
    expect(options[3]).toHaveAccessibleName(
      /^cluster4, not a member, unreachable: Cannot connect/,
    );
    expect(within(options[0]).getByText('member')).toBeInTheDocument();
    expect(within(options[0]).getByText('reachable')).toBeInTheDocument();
    expect(within(options[3]).getByText('not a member')).toBeInTheDocument();
    expect(
      within(options[3]).getByText(
        /unreachable: Cannot connect: cluster4: cannot connect/,
      ),
    ).toBeInTheDocument();
  });

  it('returns the picked cluster name', async () => {
    const meshApi = fakeMeshApi({
      getClusters: jest.fn(async () => healthyClusters()),
    });
    const { onChange } = await renderPicker(meshApi);
    await userEvent.click(
      await screen.findByRole('button', { name: /Cluster/ }),
    );
    await userEvent.click(
      within(await screen.findByRole('listbox')).getByText('cluster2'),
    );
    expect(onChange).toHaveBeenCalledWith('cluster2');
  });

  it('allows a member but says that joining it again is a re-run', async () => {
    const meshApi = fakeMeshApi({
      getClusters: jest.fn(async () => healthyClusters()),
    });
    await renderPicker(meshApi, 'cluster1');
    expect(
      await screen.findByText(
        /cluster1 is already a member: joining it again re-applies/,
      ),
    ).toBeInTheDocument();
  });

  it('warns when the picked cluster cannot be read', async () => {
    const meshApi = fakeMeshApi({
      getClusters: jest.fn(async () => healthyClusters()),
    });
    await renderPicker(meshApi, 'cluster4');
    expect(
      await screen.findByText(
        /cannot read cluster4 right now, so the join will probably fail/,
      ),
    ).toBeInTheDocument();
    expect(screen.queryByText(/already a member/)).not.toBeInTheDocument();
  });

  it('says when the mesh backend cannot be reached, and retries', async () => {
    const getClusters = jest
      .fn()
      .mockRejectedValueOnce(new Error('Failed to fetch'))
      .mockResolvedValue(healthyClusters());
    await renderPicker(fakeMeshApi({ getClusters }));
    expect(
      await screen.findByText(
        /Cannot load the clusters from the mesh backend: Failed to fetch/,
      ),
    ).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Retry' }));
    await userEvent.click(
      await screen.findByRole('button', { name: /Cluster/ }),
    );
    expect(await screen.findAllByRole('option')).toHaveLength(4);
  });
});
