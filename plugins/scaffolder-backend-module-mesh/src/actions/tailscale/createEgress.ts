import {
  CoreV1Api,
  KubernetesObject,
  V1NetworkPolicy,
  V1Service,
} from '@kubernetes/client-node';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  ANNOTATION_TAILSCALE_TAGS,
  ANNOTATION_TAILSCALE_TAILNET_FQDN,
  EAST_WEST_TLS_PORT,
  EGRESS_SERVICE_NAMESPACE,
  EgressTarget,
  FIELD_MANAGER,
  ISTIOD_POD_LABELS,
  ISTIO_NAMESPACE,
  LABEL_EGRESS_PROXY_APP,
  LABEL_NAMESPACE_NAME,
  LABEL_MANAGED_BY,
  LABEL_PEER,
  MANAGED_BY_TAILMESH,
  TAG_MESH_EGRESS,
  TAILSCALE_API_PROXY_PORT,
  apiEgressPolicyName,
  eastWestGatewayFqdn,
  egressServiceName,
  gatewayEgressServiceName,
  operatorFqdn,
} from '@tailmesh/plugin-mesh-common';
import { ApplyResult, applyObject } from '../../service/apply';
import { ChangeSet } from '../../service/changes';
import {
  clusterFailure,
  isConflict,
  isNotFound,
} from '../../service/kubeErrors';
import { MeshActionDeps, targetCluster } from '../../service/MeshActionDeps';
import {
  adoptInput,
  checkPeers,
  clusterInput,
  resolveTailnet,
  tailnetInput,
} from '../inputs';
import { changeOutputs } from '../outputs';
import { examples } from './createEgress.examples';

/** @public */
export const TAILSCALE_CREATE_EGRESS_ACTION_ID = 'mesh:tailscale:create-egress';

/**
 * `spec.externalName` of a new egress Service. An ExternalName Service needs one to be created;
 * the operator replaces it with its egress proxy's name, as in the recipe.
 */
export const EGRESS_EXTERNAL_NAME_PLACEHOLDER = 'placeholder';

/** Read-apply rounds per Service before giving up when the operator keeps rewriting it. */
const MAX_EGRESS_ATTEMPTS = 5;

/** What each egress Service leads to: the peer device's MagicDNS name and the port it serves. */
const EGRESS_TARGETS: Record<
  EgressTarget,
  {
    name: (peer: string) => string;
    fqdn: (peer: string, tailnet: string) => string;
    port: { name: string; port: number };
  }
> = {
  'api-server-proxy': {
    name: egressServiceName,
    fqdn: operatorFqdn,
    port: { name: 'https', port: TAILSCALE_API_PROXY_PORT },
  },
  'east-west-gateway': {
    name: gatewayEgressServiceName,
    fqdn: eastWestGatewayFqdn,
    port: { name: 'tls', port: EAST_WEST_TLS_PORT },
  },
};

/** Both egress Services a cluster needs per peer, API server proxy first. */
export const EGRESS_TARGET_KINDS: ReadonlyArray<EgressTarget> = [
  'api-server-proxy',
  'east-west-gateway',
];

/**
 * An egress Service to one of `peer`'s devices: its API server proxy (istiod's remote-secret
 * kubeconfig names it) or its east-west gateway (meshNetworks names it). Tagged
 * {@link TAG_MESH_EGRESS}, so the tailnet grants name exactly these proxies. `externalName` is
 * left out once the operator has rewritten it: asserting the placeholder would revert the
 * operator, and asserting the operator's value would make Tailmesh a co-owner of a field it does
 * not decide.
 */
export function egressService(
  peer: string,
  tailnet: string,
  externalName: string | undefined,
  target: EgressTarget = 'api-server-proxy',
): V1Service {
  const t = EGRESS_TARGETS[target];
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: t.name(peer),
      namespace: EGRESS_SERVICE_NAMESPACE,
      labels: { [LABEL_PEER]: peer, [LABEL_MANAGED_BY]: MANAGED_BY_TAILMESH },
      annotations: {
        [ANNOTATION_TAILSCALE_TAILNET_FQDN]: t.fqdn(peer, tailnet),
        [ANNOTATION_TAILSCALE_TAGS]: TAG_MESH_EGRESS,
      },
    },
    spec: {
      type: 'ExternalName',
      ...(externalName === undefined ? {} : { externalName }),
      ports: [{ ...t.port, protocol: 'TCP' }],
    },
  };
}

/** {@link apiEgressPolicy} without its spec: what names it, and the labels that make it Tailmesh's. */
export function apiEgressPolicyRef(peer: string): V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: apiEgressPolicyName(peer),
      namespace: EGRESS_SERVICE_NAMESPACE,
      labels: { [LABEL_PEER]: peer, [LABEL_MANAGED_BY]: MANAGED_BY_TAILMESH },
    },
  };
}

/**
 * The NetworkPolicy that lets only istiod reach the egress proxy to `peer`'s API server proxy.
 * Through that proxy a caller acts on the tailnet as `tag:tailmesh-egress`, whose grant lets it
 * impersonate the group bound to Istio's reader role, which reads every Secret of the peer: any
 * other pod of this cluster must not get there. The proxy pods are selected by the `app` label
 * the operator gives them, the egress Service's UID (mesh-common `LABEL_EGRESS_PROXY_APP`).
 * It holds where the cluster's network plugin enforces NetworkPolicy.
 */
export function apiEgressPolicy(
  peer: string,
  serviceUid: string,
): V1NetworkPolicy {
  return {
    ...apiEgressPolicyRef(peer),
    spec: {
      podSelector: { matchLabels: { [LABEL_EGRESS_PROXY_APP]: serviceUid } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          _from: [
            {
              namespaceSelector: {
                matchLabels: { [LABEL_NAMESPACE_NAME]: ISTIO_NAMESPACE },
              },
              podSelector: { matchLabels: { ...ISTIOD_POD_LABELS } },
            },
          ],
          ports: [{ protocol: 'TCP', port: TAILSCALE_API_PROXY_PORT }],
        },
      ],
    },
  };
}

/**
 * What a re-run asserts for `spec.externalName`: the placeholder on create; the current value
 * while Tailmesh still owns the field (leaving out a field it solely owns would delete it); nothing
 * once the operator has taken the field over by rewriting it.
 */
export function externalNameToApply(
  current: V1Service | undefined,
): string | undefined {
  if (!current) return EGRESS_EXTERNAL_NAME_PLACEHOLDER;
  const ours = (current.metadata?.managedFields ?? []).some(
    f =>
      f.manager === FIELD_MANAGER &&
      f.operation === 'Apply' &&
      (f.fieldsV1 as { 'f:spec'?: Record<string, unknown> } | undefined)?.[
        'f:spec'
      ]?.['f:externalName'] !== undefined,
  );
  return ours
    ? (current.spec?.externalName ?? EGRESS_EXTERNAL_NAME_PLACEHOLDER)
    : undefined;
}

/**
 * Step 4 of the recipe: ExternalName Services through which this cluster reaches its peers' API servers and east-west gateways.
 *
 * @public
 */
export function createTailscaleCreateEgressAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: TAILSCALE_CREATE_EGRESS_ACTION_ID,
    description:
      "Creates, in the tailscale namespace, two egress Services per peer cluster (ExternalName, tagged tag:tailmesh-egress): <peer>-k8s-operator (tailscale.com/tailnet-fqdn <peer>-k8s-operator.<tailnet>, port 443), through which this cluster's istiod reaches the peer's API server proxy, and <peer>-istio-eastwestgateway (<peer>-istio-eastwestgateway.<tailnet>, port 15443), through which this cluster's pods reach the peer's east-west gateway; the operator's nameserver answers both MagicDNS names with the egress proxies. Per peer, NetworkPolicy <peer>-k8s-operator-istiod-only admits only istiod's pods (app: istiod in istio-system, tcp:443) to the API server proxy's egress pods (selected by app: <the Service's UID>, as the operator labels them): whoever reaches that proxy can read every Secret of the peer. The operator rewrites spec.externalName to its egress proxy; re-runs leave that field to it. Needs mesh:tailscale:install-operator first.",
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z =>
          clusterInput(
            z,
            'Name of the cluster (in mesh.clusters) that gets the egress Services',
          ),
        peers: z =>
          z
            .array(clusterInput(z, 'A peer cluster in mesh.clusters'))
            .min(1)
            .describe(
              'The peer clusters whose API server proxies this cluster must reach (not the cluster itself)',
            ),
        tailnet: z => tailnetInput(z).optional(),
        adopt: z => adoptInput(z, 'existing egress Services of the same names'),
      },
      output: {
        ...changeOutputs,
      },
    },
    async handler(ctx) {
      const { cluster, peers } = ctx.input;
      checkPeers(cluster, peers);
      const tailnet = resolveTailnet(deps.config, ctx.input.tailnet);
      const target = targetCluster(deps, cluster);
      // Unknown peers fail here, before anything is written.
      for (const peer of peers) deps.clusters.get(peer);
      const dryRun = ctx.isDryRun ?? false;
      const changes = new ChangeSet();
      const core = target.kc.makeApiClient(CoreV1Api);
      const fail = (what: string, e: unknown) =>
        clusterFailure(cluster, target.connection.url, what, e);
      const apply = <T extends KubernetesObject>(object: T) =>
        applyObject(target.kc, object, {
          cluster,
          logger: ctx.logger,
          dryRun,
          adopt: ctx.input.adopt ?? false,
        });

      try {
        await core.readNamespace({ name: EGRESS_SERVICE_NAMESPACE });
      } catch (e) {
        if (!isNotFound(e))
          throw fail(`Reading namespace ${EGRESS_SERVICE_NAMESPACE}`, e);
        // In a dry run of a whole join the operator step before this one created nothing.
        if (!dryRun)
          throw new Error(
            `Namespace ${EGRESS_SERVICE_NAMESPACE} does not exist on ${cluster}: run mesh:tailscale:install-operator first`,
          );
        ctx.logger.info(
          `${cluster}: namespace ${EGRESS_SERVICE_NAMESPACE} does not exist yet (dry run); mesh:tailscale:install-operator creates it`,
        );
      }

      for (const [peer, kind] of peers.flatMap(p =>
        EGRESS_TARGET_KINDS.map(k => [p, k] as const),
      )) {
        const name = EGRESS_TARGETS[kind].name(peer);
        for (let attempt = 1; ; attempt++) {
          let current: V1Service | undefined;
          try {
            current = await core.readNamespacedService({
              name,
              namespace: EGRESS_SERVICE_NAMESPACE,
            });
          } catch (e) {
            if (!isNotFound(e))
              throw fail(
                `Reading Service ${EGRESS_SERVICE_NAMESPACE}/${name}`,
                e,
              );
          }
          const desired = egressService(
            peer,
            tailnet,
            externalNameToApply(current),
            kind,
          );
          // Applied under the read's resourceVersion: if the operator rewrote the Service in
          // between, the apply fails (409) and is redone from a fresh read instead of reverting it.
          if (current)
            desired.metadata!.resourceVersion =
              current.metadata?.resourceVersion;
          let applied: ApplyResult<V1Service>;
          try {
            applied = await apply(desired);
            changes.object(cluster, applied, dryRun);
          } catch (e) {
            if (!isConflict(e) || attempt >= MAX_EGRESS_ATTEMPTS)
              throw fail(
                `Applying Service ${EGRESS_SERVICE_NAMESPACE}/${name}`,
                e,
              );
            ctx.logger.info(
              `${cluster}: Service ${EGRESS_SERVICE_NAMESPACE}/${name} changed meanwhile: reading it again`,
            );
            continue;
          }
          if (kind === 'api-server-proxy') {
            const uid = applied.object.metadata?.uid;
            if (!uid) {
              // Only in a dry run whose namespace an earlier step would create.
              ctx.logger.info(
                `${cluster}: NetworkPolicy ${EGRESS_SERVICE_NAMESPACE}/${apiEgressPolicyName(peer)} created once Service ${EGRESS_SERVICE_NAMESPACE}/${name} exists (dry run): it selects the Service's proxy pods by its UID`,
              );
              break;
            }
            const policy = apiEgressPolicy(peer, uid);
            try {
              changes.object(cluster, await apply(policy), dryRun);
            } catch (e) {
              throw fail(
                `Applying NetworkPolicy ${EGRESS_SERVICE_NAMESPACE}/${policy.metadata!.name}`,
                e,
              );
            }
          }
          break;
        }
      }

      changes.writeTo(ctx.output, dryRun);
    },
  });
}
