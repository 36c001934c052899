import { ConflictError } from '@backstage/errors';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  AppsV1Api,
  CustomObjectsApi,
  KubernetesObject,
} from '@kubernetes/client-node';
import {
  CACERTS_SECRET,
  CROSS_NETWORK_GATEWAY,
  EAST_WEST_GATEWAY_RELEASE,
  EAST_WEST_GATEWAY_SERVICE,
  ISTIO_BASE_RELEASE,
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
  ISTIOD_RELEASE,
  LABEL_MANAGED_BY,
  MANAGED_BY_TAILMESH,
  validateClusterName,
} from '@tailmesh/plugin-mesh-common';
import {
  HELM_RELEASE_LABEL,
  HELM_RELEASE_LABEL_VALUE,
} from '../../service/helm';
import { describeObject, isOurs } from '../../service/apply';
import { ChangeSet } from '../../service/changes';
import { clusterFailure } from '../../service/kubeErrors';
import {
  MeshActionDeps,
  targetCluster,
  helmOptionsFor,
} from '../../service/MeshActionDeps';
import { waitUntil } from '../../service/waitUntil';
import { checkInputs, clusterInput, timeoutInput } from '../inputs';
import { changeOutputs } from '../outputs';
import { deleteAsRead, noteRemoval, readIfPresent } from '../removal';
import { crossNetworkGateway } from './eastWestGateway';
import { examples } from './uninstall.examples';

/** @public */
export const ISTIO_UNINSTALL_ACTION_ID = 'mesh:istio:uninstall';

/** Whether the cross-network Gateway was made by Tailmesh (the shared managed-by check). */
export { isOurs };

/** Resource name of Istio's Gateway kind, for the custom objects API. */
const GATEWAY_PLURAL = 'gateways';

/** The helm releases to uninstall, in order: what depends on istiod first, the CRDs' chart last. */
export function releasesToUninstall(includeBase: boolean): string[] {
  return [
    EAST_WEST_GATEWAY_RELEASE,
    ISTIOD_RELEASE,
    ...(includeBase ? [ISTIO_BASE_RELEASE] : []),
  ];
}

/**
 * Takes Istio out of a cluster that left the mesh: the reverse of mesh:istio:install and
 * mesh:istio:deploy-eastwest-gateway. The plugged-in CA and remote secrets stay: their own
 * actions own them, and the namespace that holds them is left in place for the same reason.
 *
 * @public
 */
export function createIstioUninstallAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: ISTIO_UNINSTALL_ACTION_ID,
    description: `Uninstalls Istio from a cluster with helm: the east-west gateway release, the ${CROSS_NETWORK_GATEWAY} Gateway (only when Tailmesh made it; another Gateway of that name stops the action before anything is removed), istiod and, with includeBase, the base chart (its CRDs stay: the chart marks them helm.sh/resource-policy: keep). Waits until istiod and the gateway are gone. Leaves the ${ISTIO_NAMESPACE} namespace, the ${CACERTS_SECRET} Secret and remote secrets alone. What is already absent is left as it is.`,
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z => clusterInput(z),
        includeBase: z =>
          z
            .boolean()
            .default(false)
            .describe(
              "Also uninstall Istio's base chart (cluster-wide resources such as the default validating webhook; default false). Leave it when other Istio revisions or gateways use the cluster.",
            ),
        timeoutSeconds: z => timeoutInput(z),
      },
      output: {
        ...changeOutputs,
      },
    },
    async handler(ctx) {
      const { cluster, timeoutSeconds } = ctx.input;
      // The scaffolder does not fill in schema defaults.
      const includeBase = ctx.input.includeBase ?? false;
      checkInputs(ctx.input, { cluster: validateClusterName });
      const target = targetCluster(deps, cluster);
      const dryRun = ctx.isDryRun ?? false;
      const changes = new ChangeSet();
      const fail = (what: string, e: unknown) =>
        clusterFailure(cluster, target.connection.url, what, e);
      const gatewayRef = crossNetworkGateway();
      const [group, version] = gatewayRef.apiVersion!.split('/');
      const customObjects = target.kc.makeApiClient(CustomObjectsApi);
      const gatewayParams = {
        group,
        version,
        namespace: ISTIO_NAMESPACE,
        plural: GATEWAY_PLURAL,
        name: CROSS_NETWORK_GATEWAY,
      };

      // Read first: an unreachable cluster or a Gateway that is not ours stops the action before
      // any release is touched. A missing CRD answers 404 like a missing Gateway.
      let gateway: KubernetesObject | undefined;
      try {
        gateway = (await readIfPresent(() =>
          customObjects.getNamespacedCustomObject(gatewayParams),
        )) as KubernetesObject | undefined;
      } catch (e) {
        throw fail(`Reading ${describeObject(gatewayRef)}`, e);
      }
      if (gateway && !isOurs(gateway)) {
        throw new ConflictError(
          `Refusing to delete ${describeObject(gatewayRef)} on ${cluster}: it is not labelled ${LABEL_MANAGED_BY}=${MANAGED_BY_TAILMESH}, so Tailmesh did not make it; nothing was uninstalled`,
        );
      }

      const helmOpts = helmOptionsFor(target, ctx, dryRun);
      const releases = releasesToUninstall(includeBase);
      // Every release is checked before any is removed: a half-uninstalled Istio is worse than none.
      const foreign: string[] = [];
      for (const release of releases) {
        if (
          (await deps.helm.ownership(release, ISTIO_NAMESPACE, helmOpts)) ===
          'foreign'
        )
          foreign.push(`${ISTIO_NAMESPACE}/${release}`);
      }
      if (foreign.length) {
        throw new ConflictError(
          `Refusing to uninstall helm release${foreign.length > 1 ? 's' : ''} ${foreign.join(', ')} on ${cluster}: not installed by Tailmesh (no ${HELM_RELEASE_LABEL}=${HELM_RELEASE_LABEL_VALUE} label); nothing was uninstalled. Remove ${foreign.length > 1 ? 'them' : 'it'} with helm yourself if that is what you want`,
        );
      }
      const uninstall = async (release: string) => {
        const removed = await deps.helm.uninstall(
          release,
          ISTIO_NAMESPACE,
          helmOpts,
        );
        changes.note(
          cluster,
          `helm release ${release} ${removed ? 'uninstalled' : 'absent, unchanged'}`,
        );
      };

      const [gatewayRelease, ...rest] = releases;
      await uninstall(gatewayRelease);

      let gatewayOutcome: 'deleted' | 'absent' = 'absent';
      if (gateway) {
        gatewayOutcome = await deleteAsRead(
          {
            ...gatewayRef,
            metadata: { ...gatewayRef.metadata, uid: gateway.metadata?.uid },
          },
          args =>
            customObjects.deleteNamespacedCustomObject({
              ...gatewayParams,
              ...args,
            }),
          {
            cluster,
            logger: ctx.logger,
            dryRun,
            fail: e => fail(`Deleting ${describeObject(gatewayRef)}`, e),
          },
        );
      } else {
        ctx.logger.info(
          `${cluster}: ${describeObject(gatewayRef)} absent, unchanged`,
        );
      }
      noteRemoval(changes, cluster, gatewayRef, gatewayOutcome);

      for (const release of rest) await uninstall(release);

      if (!dryRun) {
        const apps = target.kc.makeApiClient(AppsV1Api);
        const deployments = [ISTIOD_DEPLOYMENT, EAST_WEST_GATEWAY_SERVICE];
        await waitUntil(
          async () => {
            const left: string[] = [];
            for (const name of deployments) {
              if (
                await readIfPresent(() =>
                  apps.readNamespacedDeployment({
                    name,
                    namespace: ISTIO_NAMESPACE,
                  }),
                )
              )
                left.push(name);
            }
            return left.length
              ? {
                  done: false,
                  progress: `Deployments still present: ${left.join(', ')}`,
                }
              : { done: true, value: undefined };
          },
          {
            what: `istiod and the east-west gateway to be gone from ${cluster}`,
            timeoutSeconds,
            logger: ctx.logger,
            signal: ctx.signal,
          },
        );
      }

      changes.writeTo(ctx.output, dryRun);
    },
  });
}
