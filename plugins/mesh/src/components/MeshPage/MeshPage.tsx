import {
  Content,
  Header,
  Page,
  Progress,
  ResponseErrorPanel,
} from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import { usePermission } from '@backstage/plugin-permission-react';
import Grid from '@material-ui/core/Grid';
import { meshMembershipReadPermission } from '@tailmesh/plugin-mesh-common';
import { ReactNode } from 'react';
import { useSearchParams } from 'react-router-dom';
import { meshApiRef } from '../../api';
import {
  REFRESH_ON_MESH_CHANGE,
  usePolledAsync,
} from '../../hooks/usePolledAsync';
import { isNotAllowedError, NotAllowedState } from '../common/NotAllowedState';
import { RefreshErrorNotice } from '../common/RefreshErrorNotice';
import { AuditFindings } from './AuditFindings';
import { ClustersTable } from './ClustersTable';
import { MembershipHistory } from './MembershipHistory';
import { MembershipMatrix } from './MembershipMatrix';
import { MeshGraph } from './MeshGraph';
import { CLUSTER_QUERY_PARAM } from './clusterQuery';
import { meshHealth } from './meshHealth';
import { MeshHealthSummary } from './MeshHealthSummary';

export { CLUSTER_QUERY_PARAM };

const NOT_ALLOWED_WHAT = 'the mesh membership';

/** Props of {@link MeshPage}.
 *
 * @public
 */
export interface MeshPageProps {
  /** How often to refresh, in milliseconds (default 10 s). */
  pollIntervalMs?: number;
}

function MeshOverview(props: MeshPageProps) {
  const meshApi = useApi(meshApiRef);
  const [searchParams] = useSearchParams();
  const highlight = searchParams.get(CLUSTER_QUERY_PARAM) ?? undefined;
  // One request pair per refresh, so the table, the matrix and the graph always agree.
  const { loading, value, error, receivedAt, retry } = usePolledAsync(
    async () => {
      const [clusters, membership] = await Promise.all([
        meshApi.getClusters(),
        meshApi.getMembership(),
      ]);
      return { clusters, membership };
    },
    [meshApi],
    props.pollIntervalMs,
    REFRESH_ON_MESH_CHANGE,
  );

  if (loading) return <Progress />;
  if (error && isNotAllowedError(error)) {
    return (
      <NotAllowedState
        permissionName={meshMembershipReadPermission.name}
        what={NOT_ALLOWED_WHAT}
      />
    );
  }
  if (!value) {
    return <ResponseErrorPanel title="Cannot load the mesh" error={error!} />;
  }
  const { clusters, membership } = value;
  const health = meshHealth(clusters.clusters, membership);
  return (
    <Grid container spacing={3}>
      <Grid item xs={12}>
        <MeshHealthSummary health={health} />
      </Grid>
      {error && (
        <Grid item xs={12}>
          <RefreshErrorNotice
            error={error}
            receivedAt={receivedAt}
            onRetry={retry}
          />
        </Grid>
      )}
      <Grid item xs={12}>
        <ClustersTable
          clusters={clusters.clusters}
          highlight={highlight}
          namedByFindings={health.clusters}
        />
      </Grid>
      <Grid item xs={12} lg={6}>
        <MembershipMatrix membership={membership} />
      </Grid>
      <Grid item xs={12} lg={6}>
        <MeshGraph clusters={clusters.clusters} membership={membership} />
      </Grid>
      <Grid item xs={12}>
        <AuditFindings
          findings={membership.findings}
          tailnetPolicy={membership.tailnetPolicy}
        />
      </Grid>
      <Grid item xs={12}>
        <MembershipHistory pollIntervalMs={props.pollIntervalMs} />
      </Grid>
    </Grid>
  );
}

/**
 * The mesh for platform admins: clusters, membership matrix, graph, audit findings and history.
 * Behind `mesh.membership.read`; the backend enforces it too, and its refusal shows the same way.
 */
export function MeshPage(props: MeshPageProps) {
  const { loading, allowed } = usePermission({
    permission: meshMembershipReadPermission,
  });
  let content: ReactNode;
  if (loading) {
    content = <Progress />;
  } else if (!allowed) {
    content = (
      <NotAllowedState
        permissionName={meshMembershipReadPermission.name}
        what={NOT_ALLOWED_WHAT}
      />
    );
  } else {
    content = <MeshOverview {...props} />;
  }
  return (
    <Page themeId="tool">
      <Header
        title="Service mesh"
        subtitle="Clusters, membership and audit of the multi-primary Istio mesh over Tailscale"
      />
      <Content>{content}</Content>
    </Page>
  );
}
