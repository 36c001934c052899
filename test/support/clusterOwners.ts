/**
 * The clusters each integration file writes to and needs reconciled (controller-manager,
 * scheduler, kwok), by path under test/. Before a file's first test, test/support/useClusters.ts
 * asks the test bed to run exactly these and to park every other cluster (its apiserver keeps
 * answering reads, so other files' actions still list it): an idle cluster's controller-manager,
 * scheduler and kwok cost about 1.2 % of a core, 0.3 of a core for the 25 clusters of a run,
 * measured with the test bed idle. A file missing here fails before its first test; a cluster
 * missing from its list shows as a workload that never gets its pods. Files that share a
 * cluster touch only their own objects in it.
 */
export const clusterOwners: Record<string, string[]> = {
  // The full mesh join.
  'integration/meshJoin.test.ts': ['cluster1', 'cluster2', 'cluster3'],
  // Egress Services in cluster4 name cluster1 and cluster2 as peers.
  'integration/actions/tailscale.test.ts': ['cluster1', 'cluster2', 'cluster4'],
  'integration/actions/istioInstall.test.ts': ['cluster4'],
  // The Istio wiring actions.
  'integration/actions/istioWiring.test.ts': ['cluster5', 'cluster6'],
  // The test bed's own smoke test.
  'integration/testbed.test.ts': ['cluster6', 'cluster7'],
  // The CA action; cluster22, outside the mesh and never running istiod, holds its root CA
  // Secret store.
  'integration/actions/caIntermediate.test.ts': [
    'cluster6',
    'cluster8',
    'cluster22',
  ],
  // The removal actions on cluster9, with cluster7 as its peer.
  'integration/actions/removal.test.ts': ['cluster7', 'cluster9'],
  // The templates run by the scaffolder engine.
  'integration/templates.test.ts': ['cluster10', 'cluster11', 'cluster12'],
  // The backend's watch cache, routes, history and MCP tools (cluster14 joining and leaving).
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
  // The audit findings, induced one by one.
  'integration/backend/auditFindings.test.ts': ['cluster15', 'cluster16'],
  // The mesh judged by its real consumers (istiod, the enforcing tailnet).
  'integration/realConsumers.test.ts': ['cluster17', 'cluster18', 'cluster19'],
  // The chart-driven actions with Istio's release charts.
  'integration/actions/releaseCharts.test.ts': ['cluster20'],
  // cluster21 already runs things Tailmesh did not make (hostile input, adoption).
  'integration/actions/safety.test.ts': ['cluster21', 'cluster22'],
  // The Join template on a cluster that already runs Istio, a remote secret and CoreDNS of its
  // own (cluster24 the member it joins).
  'integration/joinExisting.test.ts': ['cluster23', 'cluster24'],
  // A join whose backend is killed mid-way (cluster25).
  'integration/backend/replicas.test.ts': ['cluster14', 'cluster25'],
};
