import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import { CoreV1Api } from '@kubernetes/client-node';
import {
  ISTIO_NAMESPACE,
  LABEL_ISTIO_NETWORK,
  validateClusterName,
} from '@tailmesh/plugin-mesh-common';
import { applyObject } from '../../service/apply';
import { ChangeSet } from '../../service/changes';
import { clusterFailure, isNotFound } from '../../service/kubeErrors';
import { MeshActionDeps, targetCluster } from '../../service/MeshActionDeps';
import { checkInputs, clusterInput } from '../inputs';
import { changeOutputs } from '../outputs';
import { examples } from './leave.examples';

/** @public */
export const ISTIO_LEAVE_ACTION_ID = 'mesh:istio:leave';

/**
 * Ends a cluster's membership without uninstalling Istio: membership is the mesh-id label that
 * mesh:istio:install puts on istio-system. Re-applying the namespace with only the network label
 * makes server-side apply drop the mesh-id label, which Tailmesh's field manager owns.
 *
 * @public
 */
export function createIstioLeaveAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: ISTIO_LEAVE_ACTION_ID,
    description:
      "Marks a cluster as no longer a mesh member: removes Tailmesh's mesh-id label from istio-system and keeps Istio, the network label and everything else installed.",
    examples,
    supportsDryRun: true,
    schema: {
      input: { cluster: z => clusterInput(z) },
      output: { ...changeOutputs },
    },
    async handler(ctx) {
      const { cluster } = ctx.input;
      checkInputs(ctx.input, { cluster: validateClusterName });
      const target = targetCluster(deps, cluster);
      const dryRun = ctx.isDryRun ?? false;
      const changes = new ChangeSet();
      try {
        const core = target.kc.makeApiClient(CoreV1Api);
        let network: string | undefined;
        try {
          const ns = await core.readNamespace({ name: ISTIO_NAMESPACE });
          network = ns.metadata?.labels?.[LABEL_ISTIO_NETWORK];
        } catch (e) {
          if (!isNotFound(e)) throw e;
          changes.note(
            cluster,
            `Namespace ${ISTIO_NAMESPACE} absent, unchanged`,
          );
          ctx.logger.info(
            `${cluster}: Namespace ${ISTIO_NAMESPACE} absent, unchanged`,
          );
        }
        if (network !== undefined) {
          const result = await applyObject(
            target.kc,
            {
              apiVersion: 'v1',
              kind: 'Namespace',
              metadata: {
                name: ISTIO_NAMESPACE,
                labels: { [LABEL_ISTIO_NETWORK]: network },
              },
            },
            { cluster, logger: ctx.logger, dryRun },
          );
          changes.object(cluster, result, dryRun);
        }
      } catch (e) {
        throw clusterFailure(
          cluster,
          target.connection.url,
          `Leaving the mesh`,
          e,
        );
      }
      changes.writeTo(ctx.output, dryRun);
    },
  });
}
