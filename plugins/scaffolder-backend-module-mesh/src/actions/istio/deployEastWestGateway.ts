import { InputError, NotFoundError } from '@backstage/errors';
import { CoreV1Api, V1Namespace } from '@kubernetes/client-node';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  CROSS_NETWORK_GATEWAY,
  EAST_WEST_GATEWAY_RELEASE,
  EAST_WEST_GATEWAY_SERVICE,
  ISTIO_NAMESPACE,
  LABEL_ISTIO_NETWORK,
  describeInputValue,
  eastWestGatewayFqdn,
  validateClusterName,
  validateNetwork,
} from '@tailmesh/plugin-mesh-common';
import { applyObject } from '../../service/apply';
import { HelmOutcome } from '../../service/helm';
import { ChangeSet } from '../../service/changes';
import { clusterFailure, isNotFound } from '../../service/kubeErrors';
import {
  MeshActionDeps,
  targetCluster,
  helmOptionsFor,
} from '../../service/MeshActionDeps';
import { waitUntil } from '../../service/waitUntil';
import {
  checkInputs,
  clusterInput,
  networkInput,
  resolveTailnet,
  tailnetInput,
  timeoutInput,
  adoptInput,
} from '../inputs';
import { changeOutputs } from '../outputs';
import {
  crossNetworkGateway,
  eastWestGatewayValues,
  GatewayIngress,
  gatewayIngress,
  namespaceNetwork,
} from './eastWestGateway';
import { examples } from './deployEastWestGateway.examples';

/** @public */
export const ISTIO_DEPLOY_EAST_WEST_GATEWAY_ACTION_ID =
  'mesh:istio:deploy-eastwest-gateway';

/** helm's words for a kind no CRD serves yet, or for a namespace not there yet. */
const missingForHelm = new RegExp(
  `ensure CRDs are installed first|no matches for kind|namespaces? "?${ISTIO_NAMESPACE}"? not found`,
);

/**
 * Step 7 of the recipe: the east-west gateway behind a Tailscale LoadBalancer, so other networks
 * reach this cluster's workloads over the tailnet only, and the cross-network Gateway on it.
 *
 * @public
 */
export function createIstioDeployEastWestGatewayAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: ISTIO_DEPLOY_EAST_WEST_GATEWAY_ACTION_ID,
    description:
      "Deploys Istio's east-west gateway with helm as a Tailscale LoadBalancer (tagged tag:istio-eastwestgateway), applies the cross-network Gateway (AUTO_PASSTHROUGH for *.local), and waits for the gateway's tailnet address.",
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z => clusterInput(z),
        network: z =>
          networkInput(z).describe(
            "The cluster's Istio network; must match the topology.istio.io/network label of istio-system",
          ),
        tailnet: z =>
          tailnetInput(z)
            .optional()
            .describe(
              "The tailnet's MagicDNS domain, e.g. tail1234.ts.net (default: mesh.tailscale.dnsName)",
            ),
        adopt: z => adoptInput(z, 'an existing east-west gateway helm release'),
        timeoutSeconds: z => timeoutInput(z),
      },
      output: {
        ...changeOutputs,
        gatewayAddress: z =>
          z
            .string()
            .describe(
              "The gateway's MagicDNS name (in a dry run, the current one or the name it would get)",
            ),
        gatewayIp: z =>
          z
            .string()
            .optional()
            .describe(
              "The gateway's tailnet IP, once the operator has assigned it",
            ),
      },
    },
    async handler(ctx) {
      const { cluster, network, timeoutSeconds } = ctx.input;
      checkInputs(ctx.input, {
        cluster: validateClusterName,
        network: validateNetwork,
      });
      const tailnet = resolveTailnet(deps.config, ctx.input.tailnet);
      const target = targetCluster(deps, cluster);
      const core = target.kc.makeApiClient(CoreV1Api);
      const dryRun = ctx.isDryRun ?? false;
      const changes = new ChangeSet();

      let ns: V1Namespace | undefined;
      try {
        ns = await core.readNamespace({ name: ISTIO_NAMESPACE });
      } catch (e) {
        if (!isNotFound(e))
          throw clusterFailure(
            cluster,
            target.connection.url,
            `Reading namespace ${ISTIO_NAMESPACE}`,
            e,
          );
        // In a dry run of a whole join the Istio install before this step created nothing.
        if (!dryRun)
          throw new NotFoundError(
            `${cluster} has no namespace ${ISTIO_NAMESPACE}: install Istio there first (mesh:istio:install)`,
          );
        ctx.logger.info(
          `${cluster}: namespace ${ISTIO_NAMESPACE} does not exist yet (dry run); mesh:istio:install creates it, labelled with the network`,
        );
      }
      if (ns) {
        const labelled = namespaceNetwork(ns);
        if (labelled !== undefined && labelled !== network) {
          throw new InputError(
            `Invalid input: network ${describeInputValue(network)} does not match ${cluster}'s network: namespace ${ISTIO_NAMESPACE} is labelled ${LABEL_ISTIO_NETWORK}=${describeInputValue(labelled)}`,
          );
        }
        if (labelled === undefined) {
          ctx.logger.warn(
            `${cluster}: namespace ${ISTIO_NAMESPACE} has no ${LABEL_ISTIO_NETWORK} label; istiod takes its network from global.network only`,
          );
        }
      }

      const spec = {
        release: EAST_WEST_GATEWAY_RELEASE,
        namespace: ISTIO_NAMESPACE,
        chart: deps.charts.gateway,
        values: eastWestGatewayValues(cluster, network),
        // The pod labels and Service ports are Tailmesh's whole: a network label left from
        // before would make istiod take the gateway's 100.x address for the network's.
        keepDeployedValues: { replace: [['labels'], ['service', 'ports']] },
      };
      let release: { outcome: HelmOutcome; manifests?: string };
      try {
        release = await deps.helm.upgradeInstall(
          spec,
          helmOptionsFor(target, ctx, dryRun),
        );
      } catch (e) {
        // helm's server-side dry run maps the chart's kinds and reads its namespace on the
        // server; a namespace or CRDs that the earlier steps of a dry-run join did not create
        // can make it fail, which says nothing about the real run. Any other failure stands.
        const message = (e as Error).message;
        if (!dryRun || ns || !missingForHelm.test(message)) throw e;
        ctx.logger.info(
          `${cluster}: helm release ${ISTIO_NAMESPACE}/${EAST_WEST_GATEWAY_RELEASE} would be installed (dry run; not rendered: helm's server-side dry run needs what earlier steps make, namespace ${ISTIO_NAMESPACE} and Istio's CRDs: ${message})`,
        );
        release = { outcome: 'installed' };
      }
      changes.helm(
        cluster,
        EAST_WEST_GATEWAY_RELEASE,
        release.outcome,
        release.manifests,
      );

      // Admission: istiod's validating webhook (istio-validator-istio-system, and
      // istiod-default-validator from the base chart) is installed with failurePolicy Ignore and
      // patched to Fail by istiod once it serves it, so this write is validated wherever istiod
      // runs and is not blocked while it does not.
      try {
        changes.object(
          cluster,
          await applyObject(target.kc, crossNetworkGateway(), {
            cluster,
            logger: ctx.logger,
            dryRun,
            adopt: ctx.input.adopt ?? false,
          }),
          dryRun,
        );
      } catch (e) {
        throw clusterFailure(
          cluster,
          target.connection.url,
          `Applying Gateway ${ISTIO_NAMESPACE}/${CROSS_NETWORK_GATEWAY}`,
          e,
        );
      }

      const expected = eastWestGatewayFqdn(cluster, tailnet);
      const readIngress = async () =>
        gatewayIngress(
          (
            await core.readNamespacedService({
              name: EAST_WEST_GATEWAY_SERVICE,
              namespace: ISTIO_NAMESPACE,
            })
          ).status?.loadBalancer?.ingress,
        );
      let ingress: GatewayIngress | undefined;
      if (dryRun) {
        ingress = await readIngress().catch(e => {
          if (isNotFound(e)) return undefined;
          throw clusterFailure(
            cluster,
            target.connection.url,
            `Reading Service ${ISTIO_NAMESPACE}/${EAST_WEST_GATEWAY_SERVICE}`,
            e,
          );
        });
      } else {
        ingress = await waitUntil(
          async () => {
            let found: GatewayIngress | undefined;
            try {
              found = await readIngress();
            } catch (e) {
              if (isNotFound(e))
                return { done: false, progress: 'Service not created yet' };
              throw e;
            }
            if (found) return { done: true, value: found };
            return {
              done: false,
              progress:
                'no load-balancer ingress yet (the Tailscale operator has not exposed it)',
            };
          },
          {
            what: `the tailnet address of Service ${ISTIO_NAMESPACE}/${EAST_WEST_GATEWAY_SERVICE} on ${cluster}`,
            timeoutSeconds,
            logger: ctx.logger,
            signal: ctx.signal,
          },
        );
      }

      const gatewayAddress = ingress?.hostname ?? expected;
      if (ingress?.hostname && ingress.hostname !== expected) {
        // The tailnet gives a second device with a taken name a suffix: a stale device is in the way.
        ctx.logger.warn(
          `${cluster}: the east-west gateway got the tailnet name ${ingress.hostname}, not ${expected}; another device already holds that name`,
        );
      }
      ctx.logger.info(
        `${cluster}: east-west gateway ${dryRun && !ingress ? 'would be reachable at' : 'is reachable at'} ${gatewayAddress}${ingress?.ip ? ` (${ingress.ip})` : ''}`,
      );

      changes.writeTo(ctx.output, dryRun);
      ctx.output('gatewayAddress', gatewayAddress);
      if (ingress?.ip) ctx.output('gatewayIp', ingress.ip);
    },
  });
}
