import {
  AppsV1Api,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  ISTIO_BASE_RELEASE,
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
  ISTIOD_RELEASE,
  CACERTS_SECRET,
  FIELD_MANAGER,
  LABEL_ISTIO_NETWORK,
  LABEL_MESH_ID,
  validateClusterName,
  validateMeshId,
  validateNetwork,
} from '@tailmesh/plugin-mesh-common';
import { applyObject } from '../../service/apply';
import { ChangeSet } from '../../service/changes';
import { foreignReleaseError } from '../../service/helm';
import {
  podsOlderThanSecret,
  waitForDeploymentAvailable,
} from '../../service/deployments';
import { rolloutRestartPatch } from './meshNetworksConfig';
import { clusterFailure } from '../../service/kubeErrors';
import {
  MeshActionDeps,
  targetCluster,
  helmOptionsFor,
} from '../../service/MeshActionDeps';
import {
  checkInputs,
  clusterInput,
  meshIdInput,
  networkInput,
  timeoutInput,
  adoptInput,
} from '../inputs';
import { changeOutputs } from '../outputs';
import { examples } from './install.examples';

/** @public */
export const ISTIO_INSTALL_ACTION_ID = 'mesh:istio:install';

/**
 * Step 5 of the recipe: Istio's base chart and istiod as a primary of a multi-network mesh. The
 * network label on istio-system is what istiod and the east-west gateway use to tell networks apart.
 *
 * @public
 */
export function createIstioInstallAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: ISTIO_INSTALL_ACTION_ID,
    description:
      "Installs Istio's base chart and istiod (multi-primary: meshID, clusterName, network) with helm, labels istio-system with the cluster's network, and waits until istiod is Available.",
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z => clusterInput(z),
        meshId: z => meshIdInput(z),
        network: z => networkInput(z),
        adopt: z =>
          adoptInput(z, 'existing istio-base and istiod helm releases'),
        timeoutSeconds: z => timeoutInput(z),
      },
      output: {
        ...changeOutputs,
      },
    },
    async handler(ctx) {
      const { cluster, meshId, network, timeoutSeconds } = ctx.input;
      checkInputs(ctx.input, {
        cluster: validateClusterName,
        meshId: validateMeshId,
        network: validateNetwork,
      });
      const target = targetCluster(deps, cluster);
      const dryRun = ctx.isDryRun ?? false;
      const changes = new ChangeSet();
      const helmOpts = helmOptionsFor(target, ctx, dryRun);

      // A hand-installed Istio stops the step before the namespace label is touched, not only at
      // the helm step (which refuses it too).
      if (!helmOpts.adopt) {
        for (const release of [ISTIO_BASE_RELEASE, ISTIOD_RELEASE]) {
          if (
            (await deps.helm.ownership(release, ISTIO_NAMESPACE, helmOpts)) ===
            'foreign'
          ) {
            throw foreignReleaseError(ISTIO_NAMESPACE, release, cluster);
          }
        }
      }

      try {
        const ns = await applyObject(
          target.kc,
          {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: {
              name: ISTIO_NAMESPACE,
              labels: {
                [LABEL_ISTIO_NETWORK]: network,
                [LABEL_MESH_ID]: meshId,
              },
            },
          },
          { cluster, logger: ctx.logger, dryRun },
        );
        changes.object(cluster, ns, dryRun);
      } catch (e) {
        throw clusterFailure(
          cluster,
          target.connection.url,
          `Labelling namespace ${ISTIO_NAMESPACE}`,
          e,
        );
      }

      const base = await deps.helm.upgradeInstall(
        {
          release: ISTIO_BASE_RELEASE,
          namespace: ISTIO_NAMESPACE,
          chart: deps.charts.istioBase,
          values: {},
          keepDeployedValues: {},
        },
        helmOpts,
      );
      changes.helm(cluster, ISTIO_BASE_RELEASE, base.outcome, base.manifests);

      const istiod = await deps.helm.upgradeInstall(
        {
          release: ISTIOD_RELEASE,
          namespace: ISTIO_NAMESPACE,
          chart: deps.charts.istiod,
          values: {
            global: {
              meshID: meshId,
              multiCluster: { clusterName: cluster },
              network,
            },
          },
          // What the release already has stays: an admin's own values, and the mesh networks
          // mesh:istio:configure-networks keeps in global.meshNetworks.
          keepDeployedValues: {},
        },
        helmOpts,
      );
      changes.helm(cluster, ISTIOD_RELEASE, istiod.outcome, istiod.manifests);

      if (!dryRun) {
        const waitOpts = {
          cluster,
          timeoutSeconds,
          logger: ctx.logger,
          signal: ctx.signal,
        };
        await waitForDeploymentAvailable(
          target.kc,
          ISTIO_NAMESPACE,
          ISTIOD_DEPLOYMENT,
          waitOpts,
        );
        // An istiod that started before the cluster's cacerts was written (one a join adopts, or
        // one running when the intermediate was re-issued) still uses the CA it started with:
        // restart it, as `kubectl rollout restart` would, so it uses the mesh's.
        try {
          if (
            await podsOlderThanSecret(
              target.kc,
              ISTIO_NAMESPACE,
              'app=istiod',
              CACERTS_SECRET,
            )
          ) {
            await target.kc.makeApiClient(AppsV1Api).patchNamespacedDeployment(
              {
                name: ISTIOD_DEPLOYMENT,
                namespace: ISTIO_NAMESPACE,
                body: rolloutRestartPatch(new Date()),
                fieldManager: FIELD_MANAGER,
              },
              setHeaderOptions(
                'Content-Type',
                PatchStrategy.StrategicMergePatch,
              ),
            );
            const line = `Deployment ${ISTIO_NAMESPACE}/${ISTIOD_DEPLOYMENT} restarted (it started before Secret ${ISTIO_NAMESPACE}/${CACERTS_SECRET} was written)`;
            ctx.logger.info(`${cluster}: ${line}`);
            changes.note(cluster, line);
            await waitForDeploymentAvailable(
              target.kc,
              ISTIO_NAMESPACE,
              ISTIOD_DEPLOYMENT,
              waitOpts,
            );
          }
        } catch (e) {
          if ((e as { code?: unknown }).code === undefined) throw e;
          throw clusterFailure(
            cluster,
            target.connection.url,
            `Restarting Deployment ${ISTIO_NAMESPACE}/${ISTIOD_DEPLOYMENT} for its plugged-in CA`,
            e,
          );
        }
      }

      changes.writeTo(ctx.output, dryRun);
    },
  });
}
