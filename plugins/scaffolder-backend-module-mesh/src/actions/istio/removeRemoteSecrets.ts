import { ConflictError } from '@backstage/errors';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import {
  ISTIO_MULTI_CLUSTER_VALUE,
  ISTIO_NAMESPACE,
  LABEL_ISTIO_MULTI_CLUSTER,
  LABEL_MANAGED_BY,
  MANAGED_BY_TAILMESH,
  remoteSecretName,
} from '@tailmesh/plugin-mesh-common';
import { describeObject, isOurs } from '../../service/apply';
import { ChangeSet } from '../../service/changes';
import { clusterFailure } from '../../service/kubeErrors';
import { MeshActionDeps, targetCluster } from '../../service/MeshActionDeps';
import { checkPeers, clusterInput } from '../inputs';
import { changeOutputs } from '../outputs';
import { deleteAsRead, noteRemoval, readIfPresent } from '../removal';
import { examples } from './removeRemoteSecrets.examples';

/** @public */
export const ISTIO_REMOVE_REMOTE_SECRETS_ACTION_ID =
  'mesh:istio:remove-remote-secrets';

/** A remote secret to remove: the cluster holding it and the Secret, named as Tailmesh names it. */
export interface RemoteSecretRemoval {
  holder: string;
  secret: V1Secret;
}

/** The mirror of `remoteSecretPlan`: each side loses the other's remote secret. */
export function remoteSecretRemovalPlan(
  cluster: string,
  peers: ReadonlyArray<string>,
): RemoteSecretRemoval[] {
  const ref = (name: string): V1Secret => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ISTIO_NAMESPACE },
  });
  return peers.flatMap(peer => [
    { holder: cluster, secret: ref(remoteSecretName(peer)) },
    { holder: peer, secret: ref(remoteSecretName(cluster)) },
  ]);
}

/**
 * Whether a Secret is a remote secret Tailmesh made (or adopted): one istiod reads, labelled as
 * Tailmesh's. Only those are deleted: a Secret that merely has a remote secret's name, or one
 * made by hand or by istioctl, belongs to someone else.
 */
export function isRemoteSecret(secret: V1Secret): boolean {
  return (
    secret.metadata?.labels?.[LABEL_ISTIO_MULTI_CLUSTER] ===
      ISTIO_MULTI_CLUSTER_VALUE && isOurs(secret)
  );
}

/**
 * Undoes mesh:istio:create-remote-secrets when a cluster leaves the mesh: without its remote
 * secret, each istiod stops watching the other cluster's endpoints.
 *
 * @public
 */
export function createIstioRemoveRemoteSecretsAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: ISTIO_REMOVE_REMOTE_SECRETS_ACTION_ID,
    description: `Deletes the Istio remote secrets between a cluster and its peers, both ways (the mirror of mesh:istio:create-remote-secrets), so their istiods stop discovering each other's endpoints. Only Secrets labelled ${LABEL_ISTIO_MULTI_CLUSTER}=${ISTIO_MULTI_CLUSTER_VALUE} and ${LABEL_MANAGED_BY}=${MANAGED_BY_TAILMESH} are deleted; any other Secret of that name stops the action before anything is deleted. Absent secrets are left as they are.`,
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z =>
          clusterInput(
            z,
            'The cluster leaving the mesh (configured in mesh.clusters)',
          ),
        peers: z =>
          z
            .array(
              clusterInput(z, 'A peer cluster (configured in mesh.clusters)'),
            )
            .min(1)
            .describe(
              'The mesh members the cluster is unwired from, both ways; not the cluster itself',
            ),
      },
      output: {
        ...changeOutputs,
      },
    },
    async handler(ctx) {
      const { cluster, peers } = ctx.input;
      checkPeers(cluster, peers);
      const targets = new Map(
        [cluster, ...peers].map(name => [name, targetCluster(deps, name)]),
      );
      const dryRun = ctx.isDryRun ?? false;
      const changes = new ChangeSet();
      const core = (name: string) =>
        targets.get(name)!.kc.makeApiClient(CoreV1Api);
      const fail = (holder: string, what: string, e: unknown) =>
        clusterFailure(holder, targets.get(holder)!.connection.url, what, e);

      // Everything is read and judged first: an unreachable cluster or a foreign Secret stops
      // the action before the first delete, so the mesh is never left wired one way only.
      const plan = remoteSecretRemovalPlan(cluster, peers);
      const found: Array<RemoteSecretRemoval & { current?: V1Secret }> = [];
      for (const item of plan) {
        const { name, namespace } = item.secret.metadata!;
        try {
          found.push({
            ...item,
            current: await readIfPresent(() =>
              core(item.holder).readNamespacedSecret({
                name: name!,
                namespace: namespace!,
              }),
            ),
          });
        } catch (e) {
          throw fail(item.holder, `Reading ${describeObject(item.secret)}`, e);
        }
      }
      const foreign = found.filter(
        f => f.current && !isRemoteSecret(f.current),
      );
      if (foreign.length) {
        throw new ConflictError(
          `Refusing to delete ${foreign.map(f => `${describeObject(f.secret)} on ${f.holder}`).join(', ')}: not a remote secret Tailmesh made (labels ${LABEL_ISTIO_MULTI_CLUSTER}=${ISTIO_MULTI_CLUSTER_VALUE} and ${LABEL_MANAGED_BY}=${MANAGED_BY_TAILMESH}), so it is not ours to remove; nothing was deleted`,
        );
      }

      for (const { holder, secret, current } of found) {
        let outcome: 'deleted' | 'absent' = 'absent';
        if (current) {
          const { name, namespace } = secret.metadata!;
          outcome = await deleteAsRead(
            {
              ...secret,
              metadata: { ...secret.metadata, uid: current.metadata?.uid },
            },
            args =>
              core(holder).deleteNamespacedSecret({
                name: name!,
                namespace: namespace!,
                ...args,
              }),
            {
              cluster: holder,
              logger: ctx.logger,
              dryRun,
              fail: e => fail(holder, `Deleting ${describeObject(secret)}`, e),
            },
          );
        } else {
          ctx.logger.info(
            `${holder}: ${describeObject(secret)} absent, unchanged`,
          );
        }
        noteRemoval(changes, holder, secret, outcome);
      }

      changes.writeTo(ctx.output, dryRun);
    },
  });
}
