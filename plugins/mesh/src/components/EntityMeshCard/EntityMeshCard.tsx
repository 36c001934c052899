import {
  EmptyState,
  InfoCard,
  Progress,
  ResponseErrorPanel,
} from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import {
  MissingAnnotationEmptyState,
  useEntity,
} from '@backstage/plugin-catalog-react';
import Typography from '@material-ui/core/Typography';
import {
  ANNOTATION_KUBERNETES_ID,
  ANNOTATION_MESH_SERVICE,
  formatServiceSummary,
  getMeshServiceRef,
  meshStatusReadPermission,
  MeshServiceRef,
} from '@tailmesh/plugin-mesh-common';
import { meshApiRef } from '../../api';
import {
  REFRESH_ON_ANY_CHANGE,
  usePolledAsync,
} from '../../hooks/usePolledAsync';
import { CARD_HEADING } from '../common/cardHeading';
import { isNotAllowedError, NotAllowedState } from '../common/NotAllowedState';
import { RefreshErrorNotice } from '../common/RefreshErrorNotice';
import { ServiceClustersTable } from './ServiceClustersTable';

const CARD_TITLE = 'Service mesh';

/** Props of {@link EntityMeshCard}.
 *
 * @public
 */
export interface EntityMeshCardProps {
  /** How often to refresh, in milliseconds (default 10 s). */
  pollIntervalMs?: number;
}

function ServiceMeshStatus(props: {
  service: MeshServiceRef;
  pollIntervalMs?: number;
}) {
  const { service, pollIntervalMs } = props;
  const meshApi = useApi(meshApiRef);
  const { loading, value, error, receivedAt, retry } = usePolledAsync(
    () => meshApi.getServiceStatus(service),
    [meshApi, service.namespace, service.name],
    pollIntervalMs,
    REFRESH_ON_ANY_CHANGE,
  );
  const serviceText = `${service.namespace}/${service.name}`;

  if (loading) {
    return (
      <InfoCard
        titleTypographyProps={CARD_HEADING}
        title={CARD_TITLE}
        subheader={serviceText}
      >
        <Progress />
      </InfoCard>
    );
  }
  if (!value && isNotAllowedError(error)) {
    return (
      <InfoCard titleTypographyProps={CARD_HEADING} title={CARD_TITLE}>
        <NotAllowedState
          permissionName={meshStatusReadPermission.name}
          what="where this Service runs"
        />
      </InfoCard>
    );
  }
  if (!value) {
    return (
      <ResponseErrorPanel
        title={`${CARD_TITLE}: ${serviceText}`}
        error={error!}
      />
    );
  }
  return (
    <InfoCard
      titleTypographyProps={CARD_HEADING}
      title={CARD_TITLE}
      subheader={`${serviceText}: ${formatServiceSummary(value.summary)}`}
    >
      {error && (
        <RefreshErrorNotice
          error={error}
          receivedAt={receivedAt}
          onRetry={retry}
        />
      )}
      {value.clusters.length === 0 ? (
        <EmptyState
          missing="data"
          title="No mesh clusters"
          description="The mesh backend has no cluster configured (mesh.clusters)."
        />
      ) : (
        <>
          {value.summary.servingClusters === 0 && (
            <Typography variant="body2" gutterBottom>
              Not served anywhere: no cluster has {serviceText} with a ready
              endpoint.
            </Typography>
          )}
          <ServiceClustersTable status={value} />
        </>
      )}
    </InfoCard>
  );
}

/**
 * Where the entity's Service runs in the mesh and how each cluster reaches it. The Service comes
 * from the `tailmesh.dev/service` annotation, or else from the Kubernetes plugin's annotations.
 */
export function EntityMeshCard(props: EntityMeshCardProps) {
  const { entity } = useEntity();
  const service = getMeshServiceRef(entity);
  if (!service) {
    return (
      <MissingAnnotationEmptyState
        annotation={[ANNOTATION_MESH_SERVICE, ANNOTATION_KUBERNETES_ID]}
      />
    );
  }
  return (
    <ServiceMeshStatus
      service={service}
      pollIntervalMs={props.pollIntervalMs}
    />
  );
}
