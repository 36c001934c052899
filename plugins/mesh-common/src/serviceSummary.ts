import { ServiceEndpointsInCluster, ServiceStatusSummary } from './api';

function plural(count: number, noun: string): string {
  return count === 1 ? noun : `${noun}s`;
}

/**
 * One line describing a summary, such as "served by 2 of 3 clusters, 5/6 endpoints ready".
 *
 * @public
 */
export function formatServiceSummary(summary: ServiceStatusSummary): string {
  const { servingClusters, totalClusters, readyEndpoints, totalEndpoints } =
    summary;
  return (
    `served by ${servingClusters} of ${totalClusters} ${plural(totalClusters, 'cluster')}, ` +
    `${readyEndpoints}/${totalEndpoints} ${plural(totalEndpoints, 'endpoint')} ready`
  );
}

/**
 * Totals a Service's per-cluster status and describes them in one line. Unreachable clusters count
 * towards the clusters but contribute neither serving nor endpoints, since what they hold is
 * unknown.
 *
 * @public
 */
export function summarizeService(
  clusters: ReadonlyArray<ServiceEndpointsInCluster>,
): { summary: ServiceStatusSummary; text: string } {
  const reachable = clusters.filter(cluster => cluster.reachable);
  const summary: ServiceStatusSummary = {
    servingClusters: reachable.filter(cluster => cluster.serving).length,
    totalClusters: clusters.length,
    readyEndpoints: reachable.reduce(
      (sum, cluster) => sum + cluster.endpoints.ready,
      0,
    ),
    totalEndpoints: reachable.reduce(
      (sum, cluster) =>
        sum + cluster.endpoints.ready + cluster.endpoints.notReady,
      0,
    ),
  };
  return { summary, text: formatServiceSummary(summary) };
}
