/** Query parameter naming a cluster whose row to highlight (the join template links with it). */
export const CLUSTER_QUERY_PARAM = 'cluster';
