import { NotFoundError } from '@backstage/errors';
import { LoggerService } from '@backstage/backend-plugin-api';
import {
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  V1ConfigMap,
} from '@kubernetes/client-node';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  EAST_WEST_GATEWAY_SERVICE,
  FIELD_MANAGER,
  ISTIO_MESH_CONFIGMAP,
  ISTIO_MESH_NETWORKS_KEY,
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
  ISTIOD_RELEASE,
  LABEL_ISTIO_NETWORK,
  MeshNetworkMember,
  MeshNetworks,
  compareStrings,
  desiredMeshNetworks,
  parseMeshNetworks,
  eastWestGatewayFqdn,
  validateClusterName,
} from '@tailmesh/plugin-mesh-common';
import { parse } from 'yaml';
import { ChangeSet } from '../../service/changes';
import { waitForDeploymentAvailable } from '../../service/deployments';
import {
  clusterFailure,
  isConflict,
  isNotFound,
} from '../../service/kubeErrors';
import {
  MeshActionDeps,
  TargetCluster,
  helmOptionsFor,
  targetCluster,
} from '../../service/MeshActionDeps';

/**
 * The current key as Tailmesh would render it, so a diff shows what changes in meaning and not
 * helm's indentation; the text as it is when it cannot be read.
 */
function comparableText(current: string): string {
  try {
    return current ? renderMeshNetworks(parseMeshNetworks(parse(current))) : '';
  } catch {
    return current;
  }
}

/** Whether the istio ConfigMap belongs to the istiod helm release (helm's ownership annotation). */
function helmOwned(configMap: V1ConfigMap): boolean {
  return (
    configMap.metadata?.annotations?.['meta.helm.sh/release-name'] ===
    ISTIOD_RELEASE
  );
}
import {
  assertClusterList,
  checkInputs,
  clusterInput,
  resolveTailnet,
  tailnetInput,
  timeoutInput,
  adoptInput,
} from '../inputs';
import { examples } from './configureNetworks.examples';
import { gatewayIngress, namespaceNetwork } from './eastWestGateway';
import {
  MeshNetworksState,
  RESTARTED_AT_ANNOTATION,
  compareMeshNetworks,
  foreignNetworks,
  memberDiff,
  meshNetworksCheckpointKey,
  renderMeshNetworks,
  rolloutRestartPatch,
  withMeshNetworks,
} from './meshNetworksConfig';

/** @public */
export const ISTIO_CONFIGURE_NETWORKS_ACTION_ID =
  'mesh:istio:configure-networks';

/** Writers of the helm-owned ConfigMap racing us are rare; a few re-reads settle it. */
const MAX_UPDATE_ATTEMPTS = 5;

const CONFIGMAP = `ConfigMap ${ISTIO_NAMESPACE}/${ISTIO_MESH_CONFIGMAP} ${ISTIO_MESH_NETWORKS_KEY}`;
const ISTIOD = `Deployment ${ISTIO_NAMESPACE}/${ISTIOD_DEPLOYMENT}`;

interface MemberPlan {
  target: TargetCluster;
  configMap: V1ConfigMap;
  /** The mesh's networks plus the ones written by hand in this member, which stay. */
  desired: MeshNetworks;
  rendered: string;
  state: MeshNetworksState;
}

/** Reads what meshNetworks needs from one member; a problem is returned, not thrown, to list them all. */
async function readMember(
  target: TargetCluster,
  tailnet: string,
): Promise<
  { member: MeshNetworkMember; configMap: V1ConfigMap } | { problem: string }
> {
  const cluster = target.name;
  const core = target.kc.makeApiClient(CoreV1Api);
  const read = async <T>(
    what: string,
    fn: () => Promise<T>,
  ): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw clusterFailure(
        cluster,
        target.connection.url,
        `Reading ${what}`,
        e,
      );
    }
  };
  const ns = await read(`namespace ${ISTIO_NAMESPACE}`, () =>
    core.readNamespace({ name: ISTIO_NAMESPACE }),
  );
  const network = ns && namespaceNetwork(ns);
  if (!network) {
    return {
      problem: `${cluster} has no network: namespace ${ISTIO_NAMESPACE} ${ns ? `has no ${LABEL_ISTIO_NETWORK} label` : 'does not exist'} (run mesh:istio:install)`,
    };
  }
  const service = await read(
    `Service ${ISTIO_NAMESPACE}/${EAST_WEST_GATEWAY_SERVICE}`,
    () =>
      core.readNamespacedService({
        name: EAST_WEST_GATEWAY_SERVICE,
        namespace: ISTIO_NAMESPACE,
      }),
  );
  if (!service) {
    return {
      problem: `${cluster} has no east-west gateway address: Service ${ISTIO_NAMESPACE}/${EAST_WEST_GATEWAY_SERVICE} does not exist (run mesh:istio:deploy-eastwest-gateway)`,
    };
  }
  const configMap = await read(
    `ConfigMap ${ISTIO_NAMESPACE}/${ISTIO_MESH_CONFIGMAP}`,
    () =>
      core.readNamespacedConfigMap({
        name: ISTIO_MESH_CONFIGMAP,
        namespace: ISTIO_NAMESPACE,
      }),
  );
  if (!configMap) {
    return {
      problem: `${cluster} has no ConfigMap ${ISTIO_NAMESPACE}/${ISTIO_MESH_CONFIGMAP} (run mesh:istio:install)`,
    };
  }
  // Until the operator has exposed the gateway, its MagicDNS name is the one it asked for.
  const gatewayAddress =
    gatewayIngress(service.status?.loadBalancer?.ingress)?.hostname ??
    eastWestGatewayFqdn(cluster, tailnet);
  return { member: { cluster, network, gatewayAddress }, configMap };
}

/**
 * Replaces only meshNetworks in the helm-owned ConfigMap. The update carries the resourceVersion
 * it was computed from, so a concurrent writer makes it fail (409) instead of being overwritten;
 * then the ConfigMap is read again and compared again.
 */
async function updateMeshNetworks(
  target: TargetCluster,
  initial: V1ConfigMap,
  desired: MeshNetworks,
  rendered: string,
  logger: LoggerService,
): Promise<'configured' | 'unchanged'> {
  const core = target.kc.makeApiClient(CoreV1Api);
  let configMap = initial;
  for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS; attempt++) {
    if (compareMeshNetworks(configMap.data, desired).agrees) return 'unchanged';
    // Without managedFields in the body the server keeps the others' ownership as it is.
    const { managedFields, ...metadata } = configMap.metadata ?? {};
    try {
      await core.replaceNamespacedConfigMap({
        name: ISTIO_MESH_CONFIGMAP,
        namespace: ISTIO_NAMESPACE,
        body: {
          ...configMap,
          metadata,
          data: withMeshNetworks(configMap.data, rendered),
        },
        fieldManager: FIELD_MANAGER,
      });
      return 'configured';
    } catch (e) {
      if (!isConflict(e))
        throw clusterFailure(
          target.name,
          target.connection.url,
          `Updating ${CONFIGMAP}`,
          e,
        );
      logger.info(
        `${target.name}: ${CONFIGMAP} changed meanwhile (attempt ${attempt}/${MAX_UPDATE_ATTEMPTS}); reading it again`,
      );
    }
    try {
      configMap = await core.readNamespacedConfigMap({
        name: ISTIO_MESH_CONFIGMAP,
        namespace: ISTIO_NAMESPACE,
      });
    } catch (e) {
      throw clusterFailure(
        target.name,
        target.connection.url,
        `Reading ConfigMap ${ISTIO_NAMESPACE}/${ISTIO_MESH_CONFIGMAP}`,
        e,
      );
    }
  }
  throw new Error(
    `Updating ${CONFIGMAP} on ${target.name} failed: it kept changing under us (${MAX_UPDATE_ATTEMPTS} conflicts); run the step again`,
  );
}

/** What `kubectl rollout restart` does: a new pod-template annotation, hence a new rollout. */
async function restartIstiod(target: TargetCluster): Promise<string> {
  const patch = rolloutRestartPatch(new Date());
  try {
    await KubernetesObjectApi.makeApiClient(target.kc).patch(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: ISTIOD_DEPLOYMENT, namespace: ISTIO_NAMESPACE },
        ...patch,
      },
      undefined,
      undefined,
      FIELD_MANAGER,
      undefined,
      PatchStrategy.StrategicMergePatch,
    );
  } catch (e) {
    throw clusterFailure(
      target.name,
      target.connection.url,
      `Restarting ${ISTIOD}`,
      e,
    );
  }
  return patch.spec.template.metadata.annotations[RESTARTED_AT_ANNOTATION];
}

/**
 * Step 8 of the recipe: every member's istiod learns every network and the tailnet address of
 * its east-west gateway. istiod also learns gateways from the load-balancer status of Services
 * labelled by `networkGateway`; meshNetworks states them explicitly, and once it is used every
 * member must hold the same, complete one, or some networks see a partial mesh.
 *
 * @public
 */
export function createIstioConfigureNetworksAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: ISTIO_CONFIGURE_NETWORKS_ACTION_ID,
    description:
      "Gives every member the same meshNetworks (each member's network with its registry and the MagicDNS name of its east-west gateway, which each other member resolves to its own egress proxy): through the istiod helm release's global.meshNetworks (other values kept as deployed), so it survives helm upgrades, or, for an istiod not installed by helm, in the istio ConfigMap directly. istiod reloads it by itself; restartIstiod: true restarts it as the recipe does.",
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        members: z =>
          z
            .array(
              clusterInput(z, 'A mesh member (configured in mesh.clusters)'),
            )
            .min(1)
            .describe(
              'Every cluster of the mesh, each with Istio and an east-west gateway; all get the same meshNetworks',
            ),
        tailnet: z =>
          tailnetInput(z)
            .optional()
            .describe(
              "The tailnet's MagicDNS domain, e.g. tail1234.ts.net (default: mesh.tailscale.dnsName)",
            ),
        restartIstiod: z =>
          z
            .boolean()
            .default(false)
            .describe(
              'Also restart istiod in the members whose meshNetworks changed, as the recipe does (default false: istiod watches the key and reloads it itself, pkg/kube/kubemesh/watcher.go)',
            ),
        adopt: z => adoptInput(z, 'an existing istiod helm release'),
        timeoutSeconds: z => timeoutInput(z),
      },
      output: {
        changed: z =>
          z
            .boolean()
            .describe(
              'Whether anything was (or in a dry run would be) changed',
            ),
        changes: z =>
          z
            .array(z.string())
            .describe(
              'One line per member ConfigMap and istiod restart, with its outcome',
            ),
        meshNetworks: z =>
          z.string().describe('The meshNetworks every member now has (YAML)'),
        diff: z =>
          z
            .string()
            .describe(
              'Per member whose meshNetworks changes: the diff of the ConfigMap key; empty when none',
            ),
        restarted: z =>
          z
            .array(z.string())
            .describe(
              'Members whose istiod was (or in a dry run would be) restarted',
            ),
      },
    },
    async handler(ctx) {
      const { members, timeoutSeconds } = ctx.input;
      const restart = ctx.input.restartIstiod ?? false;
      checkInputs(ctx.input, { members: validateClusterName });
      assertClusterList('members', members);
      const tailnet = resolveTailnet(deps.config, ctx.input.tailnet);
      const targets = members.map(name => targetCluster(deps, name));
      const dryRun = ctx.isDryRun ?? false;

      // Everything is read and computed before the first write: a member that is not ready
      // leaves every ConfigMap as it was.
      const found = await Promise.all(targets.map(t => readMember(t, tailnet)));
      const problems = found.flatMap(f => ('problem' in f ? [f.problem] : []));
      if (problems.length && !dryRun) {
        throw new NotFoundError(
          `Cannot configure meshNetworks, nothing was changed: ${problems.join('; ')}`,
        );
      }
      const changes = new ChangeSet();
      // In a dry run of a whole join the install and gateway steps before this one created
      // nothing, so the joining cluster has no network or gateway to read yet: its entry cannot
      // be known, and the others are shown without it.
      const pending: string[] = [];
      found.forEach((f, i) => {
        if (!('problem' in f)) return;
        const cluster = targets[i].name;
        pending.push(cluster);
        const line = `${CONFIGMAP} would be configured once ${cluster} has its network and gateway (earlier steps)`;
        ctx.logger.info(`${cluster}: ${line} (dry run; now: ${f.problem})`);
        changes.note(cluster, line);
      });
      const ready = found.flatMap((f, i) =>
        'problem' in f ? [] : [{ ...f, target: targets[i] }],
      );
      const desired = desiredMeshNetworks(ready.map(r => r.member));
      const rendered = renderMeshNetworks(desired);
      if (pending.length && ready.length)
        ctx.logger.info(
          `the meshNetworks shown for ${ready.map(r => r.target.name).join(', ')} leave out ${pending.join(', ')} (dry run)`,
        );
      const plans: MemberPlan[] = ready.map(r => {
        const kept = foreignNetworks(r.configMap.data, desired, tailnet);
        for (const name of Object.keys(kept))
          ctx.logger.info(
            `${r.target.name}: keeping network ${name} of ${CONFIGMAP} as it is: Tailmesh did not write it`,
          );
        // By name, as helm renders the release's map, so a diff shows only what changes.
        const mine: MeshNetworks = {
          networks: Object.fromEntries(
            Object.entries({ ...kept, ...desired.networks }).sort(([a], [b]) =>
              compareStrings(a, b),
            ),
          ),
        };
        return {
          target: r.target,
          configMap: r.configMap,
          desired: mine,
          rendered: renderMeshNetworks(mine),
          state: compareMeshNetworks(r.configMap.data, mine),
        };
      });

      const diffs: string[] = [];
      const restarted: string[] = [];
      for (const plan of plans) {
        const { target, configMap, state } = plan;
        const { desired: memberDesired, rendered: memberRendered } = plan;
        const cluster = target.name;
        if (state.unreadable)
          ctx.logger.warn(
            `${cluster}: ${CONFIGMAP} is not valid meshNetworks, replacing it: ${state.unreadable}`,
          );
        let outcome: 'configured' | 'unchanged';
        // Through a checkpoint for every member, even one that agrees now: on a retried task
        // the stored outcome says whether this task changed it, and so still owes a restart.
        const updateConfigMap = async (): Promise<
          'configured' | 'unchanged'
        > =>
          dryRun
            ? state.agrees
              ? 'unchanged'
              : 'configured'
            : ctx.checkpoint({
                key: meshNetworksCheckpointKey(
                  'update',
                  cluster,
                  memberRendered,
                ),
                fn: () =>
                  updateMeshNetworks(
                    target,
                    configMap,
                    memberDesired,
                    memberRendered,
                    ctx.logger,
                  ),
              });
        if (helmOwned(configMap)) {
          // Through the istiod release's own values (global.meshNetworks, which the chart
          // renders into this key: istio-discovery templates/configmap.yaml), so a later
          // `helm upgrade istiod --reuse-values` keeps it; every other value stays as deployed.
          const run = () =>
            deps.helm.upgradeInstall(
              {
                release: ISTIOD_RELEASE,
                namespace: ISTIO_NAMESPACE,
                chart: deps.charts.istiod,
                values: { global: { meshNetworks: memberDesired.networks } },
                keepDeployedValues: { replace: [['global', 'meshNetworks']] },
              },
              helmOptionsFor(target, ctx, dryRun),
            );
          const release = dryRun
            ? await run()
            : await ctx.checkpoint({
                key: meshNetworksCheckpointKey('helm', cluster, memberRendered),
                fn: async () => ({ outcome: (await run()).outcome }),
              });
          outcome =
            release.outcome === 'unchanged' ? 'unchanged' : 'configured';
          // helm renders only on a change of values or chart: a key edited by hand since (the
          // values already hold the desired networks) is put back as helm would render it.
          if (release.outcome === 'unchanged' && !state.agrees)
            outcome = await updateConfigMap();
        } else {
          outcome = await updateConfigMap();
        }
        ctx.logger.info(
          `${cluster}: ${CONFIGMAP} ${outcome}${dryRun ? ' (dry run)' : ''}`,
        );
        changes.note(cluster, `${CONFIGMAP} ${outcome}`);
        if (outcome === 'unchanged') continue;
        diffs.push(
          memberDiff(
            cluster,
            `${ISTIO_NAMESPACE}/${ISTIO_MESH_CONFIGMAP}`,
            comparableText(state.current),
            memberRendered,
          ),
        );
        if (!restart) continue;

        if (dryRun) {
          ctx.logger.info(`${cluster}: ${ISTIOD} would be restarted (dry run)`);
        } else {
          const restartedAt = await ctx.checkpoint({
            key: meshNetworksCheckpointKey('restart', cluster, memberRendered),
            fn: () => restartIstiod(target),
          });
          ctx.logger.info(`${cluster}: ${ISTIOD} restarted at ${restartedAt}`);
          await waitForDeploymentAvailable(
            target.kc,
            ISTIO_NAMESPACE,
            ISTIOD_DEPLOYMENT,
            {
              cluster,
              timeoutSeconds,
              logger: ctx.logger,
              signal: ctx.signal,
            },
          );
        }
        changes.note(cluster, `${ISTIOD} restarted`);
        restarted.push(cluster);
      }

      ctx.output('changed', changes.changed);
      ctx.output('changes', changes.lines);
      ctx.output('meshNetworks', rendered);
      ctx.output('diff', diffs.join('\n'));
      ctx.output('restarted', restarted);
    },
  });
}
