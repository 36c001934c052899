import {
  MeshClusterSnapshot,
  ServiceEndpointsInCluster,
  ServiceRoute,
  compareStrings,
  isMeshMember,
} from '@tailmesh/plugin-mesh-common';

/**
 * Why requests for a Service cannot leave `route.fromCluster`, in sentences that name what to run:
 * the same conditions {@link serviceRoutes} applies (a member's istiod knows another member's
 * endpoints only through a remote secret for it, and keeps them only when its meshNetworks names
 * a gateway for that member's network: `pilot/pkg/xds/endpoints/endpoint_builder.go`), read the
 * other way round. Empty unless the route is `unreachable`.
 */
export function whyUnreachable(
  route: ServiceRoute,
  clusters: ReadonlyArray<ServiceEndpointsInCluster>,
  snapshots: ReadonlyArray<MeshClusterSnapshot>,
): string[] {
  if (route.via !== 'unreachable') return [];
  const from = route.fromCluster;
  const row = clusters.find(c => c.cluster === from);
  if (row && !row.reachable)
    return [
      `${from} could not be read (${row.error?.message ?? 'no answer yet'}), so what its sidecars are given is unknown`,
    ];
  const others = clusters
    .filter(c => c.cluster !== from)
    .sort((a, b) => compareStrings(a.cluster, b.cluster));
  const unread = others.filter(c => !c.reachable).map(c => c.cluster);
  const serving = others.filter(
    c => c.reachable && c.serving && c.endpoints.ready > 0,
  );
  const reasons: string[] = [];
  const local = row?.serving
    ? `${from} has the Service but no ready endpoint of it`
    : `${from} has no endpoint of the Service`;
  const snapshot = new Map(snapshots.map(s => [s.cluster, s] as const));
  const fromSnapshot = snapshot.get(from);
  if (serving.length === 0) {
    reasons.push(
      `${local}, and no other cluster has a ready one${unread.length ? ' that could be read' : ''}`,
    );
  } else if (!fromSnapshot || !isMeshMember(fromSnapshot)) {
    reasons.push(
      `${local}, and ${from} is not a mesh member, so its sidecars are given only its own endpoints; join it with the "Join cluster to mesh" template`,
    );
  } else {
    reasons.push(local);
    for (const s of serving) {
      const to = snapshot.get(s.cluster);
      if (!to || !isMeshMember(to))
        reasons.push(
          `${s.cluster} serves it but is not a mesh member; join it with the "Join cluster to mesh" template`,
        );
      else if (!fromSnapshot.remoteSecretsFor.includes(s.cluster))
        reasons.push(
          `${from} holds no remote secret for ${s.cluster}, so its istiod does not know ${s.cluster}'s endpoints; run mesh:istio:create-remote-secrets for ${from} and ${s.cluster} (or the Join template for ${from} again)`,
        );
      else
        reasons.push(
          `${from}'s meshNetworks names no gateway address for ${s.cluster}'s network ${to.network}, so its istiod drops those endpoints; run mesh:istio:configure-networks (or the Join template for ${s.cluster} again)`,
        );
    }
  }
  for (const c of unread)
    reasons.push(
      `${c} could not be read, so whether it serves the Service is unknown`,
    );
  return reasons;
}
