/**
 * The clusters each integration file writes to and needs reconciled (controller-manager,
 * scheduler, kwok), by path under test/. Before a file's first test, test/support/useClusters.ts
 * asks the test bed to run exactly these and to park every other cluster (its apiserver keeps
 * answering reads, so other files' actions still list it): an idle cluster's controller-manager,
 * scheduler and kwok cost about 1.2 % of a core, 0.3 of a core for the 25 clusters of a run,
 * measured with the test bed idle. A file missing here fails before its first test; a cluster
 * missing from its list shows as a workload that never gets its pods.
 */
export const clusterOwners: Record<string, string[]> = {
  'integration/meshJoin.test.ts': ['cluster1', 'cluster2', 'cluster3'],
  // Egress Services in cluster4 name cluster1 and cluster2 as peers.
  'integration/actions/tailscale.test.ts': ['cluster1', 'cluster2', 'cluster4'],
  'integration/actions/istioInstall.test.ts': ['cluster4'],
  'integration/actions/istioWiring.test.ts': ['cluster5', 'cluster6'],
  'integration/testbed.test.ts': ['cluster6', 'cluster7'],
  'integration/actions/caIntermediate.test.ts': [
    'cluster6',
    'cluster8',
    'cluster22',
  ],
  'integration/actions/removal.test.ts': ['cluster7', 'cluster9'],
  'integration/templates.test.ts': ['cluster10', 'cluster11', 'cluster12'],
  'integration/backend/clusterSupplier.test.ts': [
    'cluster13',
    'cluster14',
    'cluster15',
  ],
  'integration/backend/history.test.ts': ['cluster14'],
  'integration/backend/hundredClusters.test.ts': ['cluster13', 'cluster14'],
  'integration/backend/mcpActions.test.ts': ['cluster13', 'cluster14'],
  'integration/backend/meshAdmins.test.ts': ['cluster13'],
  'integration/backend/plugin.test.ts': ['cluster13', 'cluster14'],
  'integration/backend/requestTimeout.test.ts': ['cluster13'],
  'integration/backend/watchCache.test.ts': ['cluster13', 'cluster14'],
  'integration/backend/auditFindings.test.ts': ['cluster15', 'cluster16'],
  'integration/realConsumers.test.ts': ['cluster17', 'cluster18', 'cluster19'],
  'integration/actions/releaseCharts.test.ts': ['cluster20'],
  'integration/actions/safety.test.ts': ['cluster21', 'cluster22'],
  'integration/joinExisting.test.ts': ['cluster23', 'cluster24'],
  'integration/backend/replicas.test.ts': ['cluster14', 'cluster25'],
};
