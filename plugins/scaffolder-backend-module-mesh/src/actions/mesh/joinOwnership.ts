import { KubernetesObject } from '@kubernetes/client-node';
import {
  EAST_WEST_GATEWAY_RELEASE,
  ISTIOD_RELEASE,
  ISTIO_BASE_RELEASE,
  ISTIO_NAMESPACE,
  TAILSCALE_NAMESPACE,
  TAILSCALE_OPERATOR_RELEASE,
} from '@tailmesh/plugin-mesh-common';
import {
  describeObject,
  isForeign,
  missingPrerequisite,
  readExisting,
} from '../../service/apply';
import { clusterFailure } from '../../service/kubeErrors';
import {
  MeshActionDeps,
  helmOptionsFor,
  targetCluster,
} from '../../service/MeshActionDeps';
import { LoggerService } from '@backstage/backend-plugin-api';
import { crossNetworkGateway } from '../istio/eastWestGateway';
import { remoteSecretPlan } from '../istio/remoteSecret';
import { dnsConfigManifest } from '../tailscale/configureDns';
import {
  EGRESS_TARGET_KINDS,
  apiEgressPolicyRef,
  egressService,
} from '../tailscale/createEgress';

/** The helm releases a join installs in the joining cluster, by namespace. */
const JOIN_RELEASES: ReadonlyArray<[string, string]> = [
  [TAILSCALE_NAMESPACE, TAILSCALE_OPERATOR_RELEASE],
  [ISTIO_NAMESPACE, ISTIO_BASE_RELEASE],
  [ISTIO_NAMESPACE, ISTIOD_RELEASE],
  [ISTIO_NAMESPACE, EAST_WEST_GATEWAY_RELEASE],
];

/**
 * What a join of `cluster` with `peers` would write over that Tailmesh did not make: helm releases
 * it did not install, and objects of Tailmesh's names without its label (remote secrets on every
 * side, egress Services and their NetworkPolicies both ways, the DNSConfig, the cross-network Gateway). Each step refuses
 * these on its own too; listing them before the first step means a join refuses before writing
 * anything, not halfway. The plugged-in CA is judged by mesh:ca:issue-intermediate, which knows
 * the root.
 */
export async function foreignObjectsOfJoin(
  deps: MeshActionDeps,
  cluster: string,
  peers: ReadonlyArray<string>,
  tailnet: string,
  logger: LoggerService,
): Promise<string[]> {
  const target = targetCluster(deps, cluster);
  const found: string[] = [];
  const opts = helmOptionsFor(target, { logger }, true);
  for (const [namespace, release] of JOIN_RELEASES) {
    if ((await deps.helm.ownership(release, namespace, opts)) === 'foreign')
      found.push(`helm release ${namespace}/${release} on ${cluster}`);
  }
  const objects: Array<{ holder: string; object: KubernetesObject }> = [
    { holder: cluster, object: dnsConfigManifest() },
    { holder: cluster, object: crossNetworkGateway() },
    ...remoteSecretPlan(cluster, peers, tailnet).map(p => ({
      holder: p.holder,
      object: p.secret,
    })),
    ...peers.flatMap(peer =>
      EGRESS_TARGET_KINDS.flatMap(kind => [
        {
          holder: cluster,
          object: egressService(peer, tailnet, undefined, kind),
        },
        {
          holder: peer,
          object: egressService(cluster, tailnet, undefined, kind),
        },
      ]),
    ),
    ...peers.flatMap(peer => [
      { holder: cluster, object: apiEgressPolicyRef(peer) },
      { holder: peer, object: apiEgressPolicyRef(cluster) },
    ]),
  ];
  for (const { holder, object } of objects) {
    const t = targetCluster(deps, holder);
    let existing;
    try {
      existing = await readExisting(t.kc, object);
    } catch (e) {
      // A kind no CRD serves yet (DNSConfig, Gateway before their charts) has nothing to clash with.
      if (missingPrerequisite(e, object)) continue;
      throw clusterFailure(
        holder,
        t.connection.url,
        `Reading ${describeObject(object)}`,
        e,
      );
    }
    if (isForeign(object, existing))
      found.push(`${describeObject(object)} on ${holder}`);
  }
  return found;
}
