import { Link } from '@backstage/core-components';
import Alert from '@material-ui/lab/Alert';
import { CLUSTER_QUERY_PARAM } from './clusterQuery';
import { MeshHealth } from './meshHealth';

/**
 * The first thing on the mesh page: whether the mesh is healthy, and the clusters involved when
 * it is not, each linking to its highlighted row. The findings below say what to run.
 */
export function MeshHealthSummary({ health }: { health: MeshHealth }) {
  const severity = health.severity === 'ok' ? 'success' : health.severity;
  return (
    <Alert severity={severity} role="status" aria-label="Mesh health">
      <strong>{health.headline}</strong>
      {health.clusters.length > 0 && (
        <div>
          Clusters involved:{' '}
          {health.clusters.map((c, i) => (
            <span key={c}>
              {i > 0 && ', '}
              <Link to={`?${CLUSTER_QUERY_PARAM}=${encodeURIComponent(c)}`}>
                {c}
              </Link>
            </span>
          ))}
          . Each finding below names its fix.
        </div>
      )}
    </Alert>
  );
}
