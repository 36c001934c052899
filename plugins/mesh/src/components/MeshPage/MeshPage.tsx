import {
  Content,
  EmptyState,
  Header,
  Page,
  Progress,
  ResponseErrorPanel,
} from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import { usePermission } from '@backstage/plugin-permission-react';
import Grid from '@material-ui/core/Grid';
import { meshMembershipReadPermission } from '@tailmesh/plugin-mesh-common';
import React from 'react';
import { useSearchParams } from 'react-router-dom';
import { meshApiRef } from '../../api';
import { usePolledAsync } from '../../hooks/usePolledAsync';
import { ClustersTable } from './ClustersTable';

/** Query parameter naming a cluster whose row to highlight (the join template links with it). */
export const CLUSTER_QUERY_PARAM = 'cluster';

const PAGE_TITLE = 'Service mesh';

/** Props of {@link MeshPage}. */
export interface MeshPageProps {
  /** How often to refresh, in milliseconds (default 10 s). */
  pollIntervalMs?: number;
}

function MeshOverview(props: MeshPageProps) {
  const meshApi = useApi(meshApiRef);
  const [searchParams] = useSearchParams();
  const highlight = searchParams.get(CLUSTER_QUERY_PARAM) ?? undefined;
  const clusters = usePolledAsync(
    () => meshApi.getClusters(),
    [meshApi],
    props.pollIntervalMs,
  );
  if (clusters.loading) return <Progress />;
  if (!clusters.value) return <ResponseErrorPanel error={clusters.error!} />;
  return (
    <Grid container spacing={3}>
      <Grid item xs={12}>
        <ClustersTable clusters={clusters.value.clusters} highlight={highlight} />
      </Grid>
    </Grid>
  );
}

/** The mesh for platform admins, behind `mesh.membership.read`. */
export function MeshPage(props: MeshPageProps) {
  const { loading, allowed } = usePermission({
    permission: meshMembershipReadPermission,
  });
  return (
    <Page themeId="tool">
      <Header
        title={PAGE_TITLE}
        subtitle="Clusters, membership and audit of the multi-primary Istio mesh over Tailscale"
      />
      <Content>
        {loading && <Progress />}
        {!loading && !allowed && (
          <EmptyState
            missing="info"
            title="Not allowed"
            description={`You are not allowed to see the mesh: it needs the ${meshMembershipReadPermission.name} permission. Ask a platform admin for access.`}
          />
        )}
        {!loading && allowed && <MeshOverview {...props} />}
      </Content>
    </Page>
  );
}
