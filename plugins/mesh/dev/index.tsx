import { Entity } from '@backstage/catalog-model';
import { Content, Header, Page } from '@backstage/core-components';
import { createDevApp } from '@backstage/dev-utils';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import Grid from '@material-ui/core/Grid';
import { ANNOTATION_MESH_SERVICE } from '@tailmesh/plugin-mesh-common';
import { useState, ComponentProps } from 'react';
import { EntityMeshCard, MeshPage, meshPlugin } from '../src';
import { MeshClusterPicker } from '../src/components/MeshClusterPicker';

/** The test bed's demo Service, as a catalog entity would name it. */
const echoEntity: Entity = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: {
    name: 'echo',
    namespace: 'default',
    annotations: { [ANNOTATION_MESH_SERVICE]: 'default/echo' },
  },
  spec: {
    type: 'service',
    owner: 'group:default/platform',
    lifecycle: 'experimental',
  },
};

function EntityCardPage() {
  return (
    <Page themeId="service">
      <Header
        title="echo"
        subtitle={`${ANNOTATION_MESH_SERVICE}: default/echo`}
      />
      <Content>
        <Grid container spacing={3}>
          <Grid item xs={12}>
            <EntityProvider entity={echoEntity}>
              <EntityMeshCard />
            </EntityProvider>
          </Grid>
        </Grid>
      </Content>
    </Page>
  );
}

/** The scaffolder field on its own, with the value it would hand to the template. */
function ClusterPickerPage() {
  const [cluster, setCluster] = useState<string | undefined>();
  // The picker reads only these of rjsf's field props; the scaffolder form passes all of them.
  const fieldProps = {
    onChange: (value: string | undefined) => setCluster(value),
    required: true,
    schema: {
      title: 'Cluster',
      description:
        'A cluster configured in mesh.clusters; members are marked as such.',
    },
    uiSchema: {},
    rawErrors: [],
    formData: cluster,
    idSchema: { $id: 'root_cluster' },
  } as unknown as ComponentProps<typeof MeshClusterPicker>;
  return (
    <Page themeId="tool">
      <Header
        title="MeshClusterPicker"
        subtitle={`value: ${cluster ?? '(none)'}`}
      />
      <Content>
        <MeshClusterPicker {...fieldProps} />
      </Content>
    </Page>
  );
}

createDevApp()
  .registerPlugin(meshPlugin)
  .addPage({ element: <MeshPage />, title: 'Mesh', path: '/mesh' })
  .addPage({ element: <EntityCardPage />, title: 'Entity card', path: '/echo' })
  .addPage({
    element: <ClusterPickerPage />,
    title: 'Cluster picker',
    path: '/cluster-picker',
  })
  .render();
