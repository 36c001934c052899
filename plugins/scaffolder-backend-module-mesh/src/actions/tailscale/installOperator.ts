import fs from 'node:fs/promises';
import path from 'node:path';
import {
  KubernetesObject,
  V1ClusterRoleBinding,
} from '@kubernetes/client-node';
import { InputError } from '@backstage/errors';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import { TailscaleClient } from '@tailmesh/plugin-mesh-node';
import {
  DNS1123_LABEL_MAX_LENGTH,
  DNS1123_LABEL_PATTERN,
  ISTIO_REMOTE_READERS_BINDING,
  ISTIO_REMOTE_READERS_GROUP,
  LABEL_MANAGED_BY,
  MANAGED_BY_TAILMESH,
  TAILSCALE_NAMESPACE,
  TAILSCALE_OPERATOR_DEPLOYMENT,
  TAILSCALE_OPERATOR_RELEASE,
  istioReaderClusterRoleName,
  operatorHostname,
  validateClusterName,
  validateDnsLabel,
} from '@tailmesh/plugin-mesh-common';
import { parseAllDocuments } from 'yaml';
import { applyObject } from '../../service/apply';
import { ChangeSet } from '../../service/changes';
import { waitForDeploymentAvailable } from '../../service/deployments';
import { clusterFailure } from '../../service/kubeErrors';
import {
  MeshActionDeps,
  targetCluster,
  helmOptionsFor,
} from '../../service/MeshActionDeps';
import { adoptInput, checkInputs, clusterInput, timeoutInput } from '../inputs';
import { changeOutputs } from '../outputs';
import { examples } from './installOperator.examples';
import {
  SCOPES_NEVER_FOR_THE_OPERATOR,
  operatorOauthClient,
} from './tailscaleInputs';

/** @public */
export const TAILSCALE_INSTALL_OPERATOR_ACTION_ID =
  'mesh:tailscale:install-operator';

/** Every CRD manifest in `dir` (*.yaml, *.yml), in file name order. */
export async function readCrdManifests(
  dir: string,
): Promise<KubernetesObject[]> {
  const files = (await fs.readdir(dir)).filter(f => /\.ya?ml$/.test(f)).sort();
  const objects: KubernetesObject[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(
      await fs.readFile(path.join(dir, file), 'utf8'),
    )) {
      if (doc.errors.length)
        throw new Error(
          `${path.join(dir, file)} is not valid YAML: ${doc.errors[0].message}`,
        );
      const obj = doc.toJS() as KubernetesObject | null;
      if (obj?.kind === 'CustomResourceDefinition') objects.push(obj);
    }
  }
  if (objects.length === 0)
    throw new Error(
      `mesh.charts.tailscaleOperatorCrds (${dir}) holds no CustomResourceDefinition`,
    );
  return objects;
}

/**
 * Binds the group the tailnet grant impersonates to Istio's reader ClusterRole, so that peers'
 * istiods reaching this cluster through the API server proxy can read what Istio needs, and no
 * more (the recipe impersonated system:masters).
 */
export function remoteReadersBinding(): V1ClusterRoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: {
      name: ISTIO_REMOTE_READERS_BINDING,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY_TAILMESH },
    },
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: istioReaderClusterRoleName(),
    },
    subjects: [
      {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Group',
        name: ISTIO_REMOTE_READERS_GROUP,
      },
    ],
  };
}

/** The chart values of step 1 of the recipe; `mode: "true"` is the proxy's auth (impersonating) mode. */
export function operatorValues(
  clientId: string,
  clientSecret: string,
  hostname: string,
) {
  return {
    oauth: { clientId, clientSecret },
    operatorConfig: { hostname },
    apiServerProxyConfig: { mode: 'true' },
  };
}

/**
 * Step 1 of the recipe: the Tailscale operator with its API server proxy in auth mode, which is
 * how peers' istiods reach this cluster's API.
 *
 * @public
 */
export function createTailscaleInstallOperatorAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: TAILSCALE_INSTALL_OPERATOR_ACTION_ID,
    description:
      "Installs the Tailscale Kubernetes operator with helm (API server proxy in auth mode, hostname <cluster>-k8s-operator), after its CRDs when mesh.charts.tailscaleOperatorCrds is set; binds the tailnet-impersonated group tailmesh:istio-remote-readers to Istio's reader ClusterRole, and waits until the operator is Available. The operator's own OAuth client (scopes auth_keys, devices:core, services; refused when its token carries policy_file or all, or when it is the policy-file client) comes from the task secrets tailscaleOperatorClientId / tailscaleOperatorClientSecret, else from mesh.tailscale.operatorOauth.",
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z => clusterInput(z),
        hostname: z =>
          z
            .string()
            .min(1)
            .max(DNS1123_LABEL_MAX_LENGTH)
            .regex(
              DNS1123_LABEL_PATTERN,
              'must be a DNS label: lowercase letters, digits and "-"',
            )
            .optional()
            .describe(
              "The operator's tailnet hostname (default <cluster>-k8s-operator, which peers' egress Services expect)",
            ),
        adopt: z =>
          adoptInput(z, 'an existing tailscale-operator helm release'),
        timeoutSeconds: z => timeoutInput(z),
      },
      output: {
        ...changeOutputs,
      },
    },
    async handler(ctx) {
      const { cluster, timeoutSeconds } = ctx.input;
      checkInputs(ctx.input, {
        cluster: validateClusterName,
        hostname: v => validateDnsLabel(v),
      });
      const target = targetCluster(deps, cluster);
      const { clientId, clientSecret } = operatorOauthClient(
        deps.config,
        ctx.secrets,
      );
      // The client goes into the cluster, where every mesh peer can read it: refuse one that can
      // edit the tailnet policy (what the API lets us see of it: the scopes its token carries).
      const scopes = await TailscaleClient.fromConfig(deps.config, {
        clientId,
        clientSecret,
      }).grantedScopes();
      const forbidden = (scopes ?? []).filter(x =>
        SCOPES_NEVER_FOR_THE_OPERATOR.includes(x),
      );
      if (forbidden.length) {
        throw new InputError(
          `The Tailscale operator's OAuth client ${clientId} has the scope ${forbidden.join(', ')}; nothing was installed. Every mesh peer can read the operator's Secret through Istio's reader role, so give the operator a client with only auth_keys, devices:core and services`,
        );
      }
      if (scopes === undefined)
        ctx.logger.warn(
          `${cluster}: the Tailscale API did not say which scopes the operator's OAuth client ${clientId} has; it must not have policy_file`,
        );
      const hostname = ctx.input.hostname ?? operatorHostname(cluster);
      const dryRun = ctx.isDryRun ?? false;
      const changes = new ChangeSet();
      const applyOpts = {
        cluster,
        logger: ctx.logger,
        dryRun,
        adopt: ctx.input.adopt ?? false,
      };

      const crdDir = deps.charts.tailscaleOperatorCrds;
      if (crdDir) {
        const crds = await readCrdManifests(crdDir);
        for (const crd of crds) {
          try {
            changes.object(
              cluster,
              await applyObject(target.kc, crd, applyOpts),
              dryRun,
            );
          } catch (e) {
            throw clusterFailure(
              cluster,
              target.connection.url,
              `Applying CRD ${crd.metadata?.name}`,
              e,
            );
          }
        }
      }

      const release = await deps.helm.upgradeInstall(
        {
          release: TAILSCALE_OPERATOR_RELEASE,
          namespace: TAILSCALE_NAMESPACE,
          chart: deps.charts.tailscaleOperator,
          values: operatorValues(clientId, clientSecret, hostname),
          // The operator's client is replaced whole, never merged with an earlier one's fields.
          keepDeployedValues: { replace: [['oauth']] },
        },
        helmOptionsFor(target, ctx, dryRun, [clientSecret]),
      );
      changes.helm(
        cluster,
        TAILSCALE_OPERATOR_RELEASE,
        release.outcome,
        release.manifests,
      );

      try {
        changes.object(
          cluster,
          await applyObject(target.kc, remoteReadersBinding(), applyOpts),
          dryRun,
        );
      } catch (e) {
        throw clusterFailure(
          cluster,
          target.connection.url,
          `Applying ClusterRoleBinding ${ISTIO_REMOTE_READERS_BINDING}`,
          e,
        );
      }

      if (!dryRun) {
        await waitForDeploymentAvailable(
          target.kc,
          TAILSCALE_NAMESPACE,
          TAILSCALE_OPERATOR_DEPLOYMENT,
          {
            cluster,
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
