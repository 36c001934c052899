import { ConflictError } from '@backstage/errors';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  CoreV1Api,
  KubernetesObject,
  NetworkingV1Api,
  V1NetworkPolicy,
  V1Service,
} from '@kubernetes/client-node';
import {
  EGRESS_SERVICE_NAMESPACE,
  EgressTarget,
  LABEL_PEER,
  egressServiceName,
  gatewayEgressServiceName,
} from '@tailmesh/plugin-mesh-common';
import { describeObject } from '../../service/apply';
import { ChangeSet } from '../../service/changes';
import { clusterFailure } from '../../service/kubeErrors';
import { MeshActionDeps, targetCluster } from '../../service/MeshActionDeps';
import { waitUntil } from '../../service/waitUntil';
import { checkPeers, clusterInput, timeoutInput } from '../inputs';
import { changeOutputs } from '../outputs';
import {
  DeleteCall,
  deleteAsRead,
  noteRemoval,
  readIfPresent,
} from '../removal';
import { apiEgressPolicyRef } from './createEgress';
import { examples } from './removeEgress.examples';

/** @public */
export const TAILSCALE_REMOVE_EGRESS_ACTION_ID = 'mesh:tailscale:remove-egress';

/**
 * An egress Service create-egress made for `peer` (to its API server proxy by default, or to its
 * east-west gateway), as a reference for reading and deleting it.
 */
export function egressServiceRef(
  peer: string,
  target: EgressTarget = 'api-server-proxy',
): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name:
        target === 'api-server-proxy'
          ? egressServiceName(peer)
          : gatewayEgressServiceName(peer),
      namespace: EGRESS_SERVICE_NAMESPACE,
    },
  };
}

/**
 * Whether an object is one create-egress made for `peer` (an egress Service or its NetworkPolicy):
 * the peer label is what create-egress sets and what the mesh's audit reads, so an object without
 * it is someone else's.
 */
export function isEgressObjectFor(
  object: KubernetesObject,
  peer: string,
): boolean {
  return object.metadata?.labels?.[LABEL_PEER] === peer;
}

/**
 * Undoes mesh:tailscale:create-egress for some peers of a cluster.
 *
 * @public
 */
export function createTailscaleRemoveEgressAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: TAILSCALE_REMOVE_EGRESS_ACTION_ID,
    description: `Deletes, in the ${EGRESS_SERVICE_NAMESPACE} namespace of a cluster, the egress Services to its peers' API server proxies and east-west gateways that mesh:tailscale:create-egress made (only Services labelled ${LABEL_PEER}=<peer>; any other Service of that name stops the action before anything is deleted), waits until the Tailscale operator has removed its egress proxy and released them, then deletes the NetworkPolicies that kept pods other than istiod away from the API egress proxies. Absent Services are left as they are. One direction only: run it for each side.`,
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z =>
          clusterInput(
            z,
            'Name of the cluster (in mesh.clusters) that holds the egress Services',
          ),
        peers: z =>
          z
            .array(clusterInput(z, 'A peer cluster in mesh.clusters'))
            .min(1)
            .describe(
              'The peer clusters whose egress Services are removed (not the cluster itself)',
            ),
        timeoutSeconds: z => timeoutInput(z),
      },
      output: {
        ...changeOutputs,
      },
    },
    async handler(ctx) {
      const { cluster, peers, timeoutSeconds } = ctx.input;
      checkPeers(cluster, peers);
      const target = targetCluster(deps, cluster);
      // Unknown peers fail here, before anything is deleted.
      for (const peer of peers) deps.clusters.get(peer);
      const dryRun = ctx.isDryRun ?? false;
      const changes = new ChangeSet();
      const core = target.kc.makeApiClient(CoreV1Api);
      const networking = target.kc.makeApiClient(NetworkingV1Api);
      const fail = (what: string, e: unknown) =>
        clusterFailure(cluster, target.connection.url, what, e);
      // Deletes the object as it was read (its UID), so a replacement made since is left alone.
      const deleteRead = (
        ref: KubernetesObject,
        current: KubernetesObject,
        call: DeleteCall,
      ) =>
        deleteAsRead(
          { ...ref, metadata: { ...ref.metadata, uid: current.metadata?.uid } },
          call,
          {
            cluster,
            logger: ctx.logger,
            dryRun,
            fail: e => fail(`Deleting ${describeObject(ref)}`, e),
          },
        );
      const read = (ref: V1Service) =>
        readIfPresent(() =>
          core.readNamespacedService({
            name: ref.metadata!.name!,
            namespace: EGRESS_SERVICE_NAMESPACE,
          }),
        );

      const found: Array<{
        peer: string;
        ref: V1Service;
        current?: V1Service;
      }> = [];
      for (const [peer, ref] of peers.flatMap(p =>
        (['api-server-proxy', 'east-west-gateway'] as const).map(
          t => [p, egressServiceRef(p, t)] as const,
        ),
      )) {
        try {
          found.push({ peer, ref, current: await read(ref) });
        } catch (e) {
          throw fail(`Reading ${describeObject(ref)}`, e);
        }
      }
      const policies: Array<{
        peer: string;
        ref: V1NetworkPolicy;
        current?: V1NetworkPolicy;
      }> = [];
      for (const peer of peers) {
        const ref = apiEgressPolicyRef(peer);
        try {
          policies.push({
            peer,
            ref,
            current: await readIfPresent(() =>
              networking.readNamespacedNetworkPolicy({
                name: ref.metadata!.name!,
                namespace: EGRESS_SERVICE_NAMESPACE,
              }),
            ),
          });
        } catch (e) {
          throw fail(`Reading ${describeObject(ref)}`, e);
        }
      }
      const foreign = [...found, ...policies].filter(
        f => f.current && !isEgressObjectFor(f.current, f.peer),
      );
      if (foreign.length) {
        throw new ConflictError(
          `Refusing to delete ${foreign.map(f => `${describeObject(f.ref)} on ${cluster}`).join(', ')}: not labelled ${LABEL_PEER}=<peer> as mesh:tailscale:create-egress labels its objects, so it is not ours to remove; nothing was deleted`,
        );
      }

      const deleted: V1Service[] = [];
      for (const { ref, current } of found) {
        let outcome: 'deleted' | 'absent' = 'absent';
        if (!current) {
          ctx.logger.info(
            `${cluster}: ${describeObject(ref)} absent, unchanged`,
          );
        } else if (current.metadata?.deletionTimestamp) {
          // Deleted earlier (say by a run that timed out) and still held by the operator's
          // finalizer: nothing to delete, only to wait for.
          ctx.logger.info(
            `${cluster}: ${describeObject(ref)} is already being deleted`,
          );
          outcome = 'deleted';
        } else {
          outcome = await deleteRead(ref, current, args =>
            core.deleteNamespacedService({
              name: ref.metadata!.name!,
              namespace: EGRESS_SERVICE_NAMESPACE,
              ...args,
            }),
          );
        }
        if (outcome === 'deleted') deleted.push(ref);
        noteRemoval(changes, cluster, ref, outcome);
      }

      if (!dryRun && deleted.length) {
        // The operator's finalizer keeps each Service until it has removed the egress proxy (and
        // its tailnet device); returning earlier would report a cleanup that has not happened.
        await waitUntil(
          async () => {
            const left: string[] = [];
            for (const ref of deleted) {
              const svc = await read(ref);
              if (svc)
                left.push(
                  `${ref.metadata!.name} (finalizers: ${(svc.metadata?.finalizers ?? []).join(', ') || 'none'})`,
                );
            }
            return left.length
              ? { done: false, progress: `still present: ${left.join('; ')}` }
              : { done: true, value: undefined };
          },
          {
            what: `the Tailscale operator to release the deleted egress Services on ${cluster}`,
            timeoutSeconds,
            logger: ctx.logger,
            signal: ctx.signal,
          },
        );
        ctx.logger.info(
          `${cluster}: ${deleted.map(describeObject).join(', ')} gone`,
        );
      }

      // Only once the proxies are gone: until then the policy is what keeps other pods out.
      for (const { ref, current } of policies) {
        const outcome = current
          ? await deleteRead(ref, current, args =>
              networking.deleteNamespacedNetworkPolicy({
                name: ref.metadata!.name!,
                namespace: EGRESS_SERVICE_NAMESPACE,
                ...args,
              }),
            )
          : 'absent';
        if (!current)
          ctx.logger.info(
            `${cluster}: ${describeObject(ref)} absent, unchanged`,
          );
        noteRemoval(changes, cluster, ref, outcome);
      }

      changes.writeTo(ctx.output, dryRun);
    },
  });
}
