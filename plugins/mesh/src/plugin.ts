import type { MeshPageProps } from './components/MeshPage/MeshPage';
import type { EntityMeshCardProps } from './components/EntityMeshCard/EntityMeshCard';
import {
  createApiFactory,
  createComponentExtension,
  createPlugin,
  createRoutableExtension,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/core-plugin-api';
import { createScaffolderFieldExtension } from '@backstage/plugin-scaffolder-react';
import { MeshClient, meshApiRef } from './api';
import {
  MeshClusterPicker,
  meshClusterPickerValidation,
} from './components/MeshClusterPicker';
import { rootRouteRef } from './routes';

/**
 * The mesh frontend plugin.
 *
 * @public
 */
export const meshPlugin = createPlugin({
  id: 'mesh',
  apis: [
    createApiFactory({
      api: meshApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) =>
        new MeshClient({ discoveryApi, fetchApi }),
    }),
  ],
  routes: {
    root: rootRouteRef,
  },
});

/**
 * The mesh page for platform admins: clusters, membership matrix, audit findings, history and a
 * graph of the mesh. Reads an optional `?cluster=<name>` to highlight that cluster's row.
 *
 * @public
 */
export const MeshPage: (props: MeshPageProps) => JSX.Element =
  meshPlugin.provide(
    createRoutableExtension({
      name: 'MeshPage',
      component: () => import('./components/MeshPage').then(m => m.MeshPage),
      mountPoint: rootRouteRef,
    }),
  );

/**
 * Entity card: where the entity's Service runs in the mesh. Use with `isMeshAvailable` in an
 * `EntitySwitch`.
 *
 * @public
 */
export const EntityMeshCard: (props: EntityMeshCardProps) => JSX.Element =
  meshPlugin.provide(
    createComponentExtension({
      name: 'EntityMeshCard',
      component: {
        lazy: () =>
          import('./components/EntityMeshCard').then(m => m.EntityMeshCard),
      },
    }),
  );

/**
 * Scaffolder field `ui:field: MeshClusterPicker`: one of the configured clusters, marked member or
 * not a member.
 *
 * @public
 */
export const MeshClusterPickerFieldExtension = meshPlugin.provide(
  createScaffolderFieldExtension({
    name: 'MeshClusterPicker',
    component: MeshClusterPicker,
    validation: meshClusterPickerValidation,
    schema: {
      returnValue: { type: 'string' },
    },
  }),
);
