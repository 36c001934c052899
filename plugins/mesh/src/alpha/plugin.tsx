import {
  compatWrapper,
  convertLegacyRouteRef,
} from '@backstage/core-compat-api';
import {
  ApiBlueprint,
  PageBlueprint,
  createFrontendPlugin,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/frontend-plugin-api';
import { EntityCardBlueprint } from '@backstage/plugin-catalog-react/alpha';
import {
  FormFieldBlueprint,
  createFormField,
} from '@backstage/plugin-scaffolder-react/alpha';
import DeviceHubIcon from '@material-ui/icons/DeviceHub';
import { isMeshAvailable } from '@tailmesh/plugin-mesh-common';
import { MeshClient, meshApiRef } from '../api';
import { rootRouteRef } from '../routes';

// The new frontend system's shape of the plugin (see backstage/backstage
// plugins/kubernetes/src/alpha/plugin.tsx): the same API, page, card and field as the legacy
// exports, as extensions an app picks up by installing the package.

/** The mesh API, talking to the mesh backend. @alpha */
export const meshApi = ApiBlueprint.make({
  params: defineParams =>
    defineParams({
      api: meshApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) =>
        new MeshClient({ discoveryApi, fetchApi }),
    }),
});

/**
 * The mesh page for platform admins at `/mesh`, with its entry in the app's navigation (title
 * and icon). @alpha
 */
export const meshPage = PageBlueprint.make({
  params: {
    path: '/mesh',
    title: 'Mesh',
    icon: <DeviceHubIcon fontSize="inherit" />,
    routeRef: convertLegacyRouteRef(rootRouteRef),
    loader: () =>
      import('../components/MeshPage').then(m => compatWrapper(<m.MeshPage />)),
  },
});

/**
 * The entity mesh card, shown only on entities that name a mesh Service (`isMeshAvailable`:
 * annotation `tailmesh.dev/service`, or the Kubernetes plugin's `backstage.io/kubernetes-id`).
 * @alpha
 */
export const entityMeshCard = EntityCardBlueprint.make({
  params: {
    filter: isMeshAvailable,
    loader: () =>
      import('../components/EntityMeshCard').then(m =>
        compatWrapper(<m.EntityMeshCard />),
      ),
  },
});

/** The scaffolder form field `ui:field: MeshClusterPicker`. @alpha */
export const meshClusterPickerFormField = FormFieldBlueprint.make({
  name: 'mesh-cluster-picker',
  params: {
    field: () =>
      import('../components/MeshClusterPicker').then(m =>
        createFormField({
          name: 'MeshClusterPicker',
          component: m.MeshClusterPicker,
          validation: m.meshClusterPickerValidation,
        }),
      ),
  },
});

/**
 * The mesh frontend plugin for the new frontend system.
 *
 * @alpha
 */
export default createFrontendPlugin({
  pluginId: 'mesh',
  title: 'Mesh',
  icon: <DeviceHubIcon fontSize="inherit" />,
  info: { packageJson: () => import('../../package.json') },
  routes: { root: convertLegacyRouteRef(rootRouteRef) },
  extensions: [meshApi, meshPage, entityMeshCard, meshClusterPickerFormField],
});
