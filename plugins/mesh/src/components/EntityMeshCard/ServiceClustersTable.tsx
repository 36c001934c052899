import Table from '@material-ui/core/Table';
import TableBody from '@material-ui/core/TableBody';
import TableCell from '@material-ui/core/TableCell';
import TableHead from '@material-ui/core/TableHead';
import TableRow from '@material-ui/core/TableRow';
import Typography from '@material-ui/core/Typography';
import {
  ServiceEndpointsInCluster,
  ServiceRoute,
  ServiceStatusResponse,
  ZoneEndpoints,
} from '@tailmesh/plugin-mesh-common';
import { clusterErrorLabel } from '../common/clusterErrors';
import { StatusError, StatusOK, StatusWarning } from '../common/status';
import { RowHeaderCell } from '../common/RowHeaderCell';

function ServingCell(props: { cluster: ServiceEndpointsInCluster }) {
  const { cluster } = props;
  if (!cluster.reachable) {
    return (
      <>
        <StatusError>
          unreachable
          {cluster.error ? `: ${clusterErrorLabel(cluster.error)}` : ''}
        </StatusError>
        {cluster.error && (
          <Typography variant="caption" component="div" color="textSecondary">
            {cluster.error.message}
          </Typography>
        )}
      </>
    );
  }
  return cluster.serving ? (
    <StatusOK>serving</StatusOK>
  ) : (
    <StatusWarning>not serving</StatusWarning>
  );
}

function localityText(zone: ZoneEndpoints): string {
  const where = [zone.region, zone.zone].filter(Boolean).join(' / ');
  return `${where || 'no zone label'}: ${zone.ready}/${zone.ready + zone.notReady}`;
}

/** Where istiod sends this cluster's requests: each destination with its share (ready endpoints). */
function routeText(route: ServiceRoute | undefined): string {
  if (!route) return 'unknown';
  if (route.via === 'unreachable' || route.destinations.length === 0)
    return 'unreachable: no ready endpoint it can route to';
  return route.destinations
    .map(d =>
      d.via === 'local'
        ? `local endpoints (${d.endpoints})`
        : `${d.cluster}'s gateway (${d.endpoints}, ${d.address})`,
    )
    .join(' + ');
}

/**
 * One row per mesh cluster: whether it serves the Service, its endpoints by locality, its
 * network, and where requests made in that cluster end up.
 */
export function ServiceClustersTable(props: { status: ServiceStatusResponse }) {
  const { status } = props;
  const routes = new Map(
    status.routes.map(route => [route.fromCluster, route]),
  );
  return (
    <Table
      size="small"
      aria-label={`Clusters serving ${status.namespace}/${status.name}`}
    >
      <TableHead>
        <TableRow>
          <TableCell>Cluster</TableCell>
          <TableCell>Status</TableCell>
          <TableCell>Endpoints ready</TableCell>
          <TableCell>Region / zone</TableCell>
          <TableCell>Network</TableCell>
          <TableCell>Requests from this cluster go to</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {status.clusters.map(cluster => (
          <TableRow key={cluster.cluster}>
            <RowHeaderCell>{cluster.cluster}</RowHeaderCell>
            <TableCell>
              <ServingCell cluster={cluster} />
            </TableCell>
            <TableCell>
              {cluster.reachable
                ? `${cluster.endpoints.ready}/${
                    cluster.endpoints.ready + cluster.endpoints.notReady
                  }`
                : 'unknown'}
            </TableCell>
            <TableCell>
              {cluster.zones.length === 0
                ? '-'
                : cluster.zones.map(zone => (
                    <div key={`${zone.region}/${zone.zone}`}>
                      {localityText(zone)}
                    </div>
                  ))}
            </TableCell>
            <TableCell>{cluster.network || '-'}</TableCell>
            <TableCell>{routeText(routes.get(cluster.cluster))}</TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}
