import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  applyObject,
  assertMayWrite,
  describeObject,
  readExisting,
} from '../../service/apply';
import { ChangeSet } from '../../service/changes';
import { clusterFailure } from '../../service/kubeErrors';
import { MeshActionDeps, targetCluster } from '../../service/MeshActionDeps';
import {
  adoptInput,
  checkPeers,
  clusterInput,
  resolveTailnet,
  tailnetInput,
} from '../inputs';
import { changeOutputs } from '../outputs';
import { examples } from './createRemoteSecrets.examples';
import { remoteSecretPlan } from './remoteSecret';

/** @public */
export const ISTIO_CREATE_REMOTE_SECRETS_ACTION_ID =
  'mesh:istio:create-remote-secrets';

/**
 * Step 6 of the recipe, both ways: each primary gets a remote secret for every peer, so every
 * istiod discovers the endpoints of every other cluster through that cluster's API server proxy.
 *
 * @public
 */
export function createIstioCreateRemoteSecretsAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: ISTIO_CREATE_REMOTE_SECRETS_ACTION_ID,
    description:
      "Creates Istio remote secrets between a cluster and its peers, both ways: each holds a kubeconfig pointing at the other's Tailscale API server proxy, so every istiod discovers the other clusters' endpoints.",
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z =>
          clusterInput(
            z,
            'The cluster joining the mesh (configured in mesh.clusters)',
          ),
        peers: z =>
          z
            .array(
              clusterInput(z, 'A peer cluster (configured in mesh.clusters)'),
            )
            .min(1)
            .describe(
              'The mesh members the cluster is wired to, both ways; not the cluster itself',
            ),
        adopt: z =>
          adoptInput(
            z,
            'remote secrets of the same names (made by hand or by istioctl)',
          ),
        tailnet: z =>
          tailnetInput(z)
            .optional()
            .describe(
              "The tailnet's MagicDNS domain, e.g. tail1234.ts.net (default: mesh.tailscale.dnsName)",
            ),
      },
      output: {
        ...changeOutputs,
      },
    },
    async handler(ctx) {
      const { cluster, peers } = ctx.input;
      checkPeers(cluster, peers);
      const tailnet = resolveTailnet(deps.config, ctx.input.tailnet);
      // Every cluster is resolved before the first write, so an unknown peer changes nothing.
      const targets = new Map(
        [cluster, ...peers].map(name => [name, targetCluster(deps, name)]),
      );
      const dryRun = ctx.isDryRun ?? false;
      const adopt = ctx.input.adopt ?? false;
      const changes = new ChangeSet();
      const plan = remoteSecretPlan(cluster, peers, tailnet);

      // A remote secret made by hand or by istioctl on any holder stops the step before the
      // first write: a forced apply would take it over and point istiod somewhere else.
      for (const { holder, secret } of plan) {
        const target = targets.get(holder)!;
        let existing;
        try {
          existing = await readExisting(target.kc, secret);
        } catch (e) {
          throw clusterFailure(
            holder,
            target.connection.url,
            `Reading ${describeObject(secret)}`,
            e,
          );
        }
        assertMayWrite(secret, existing, { cluster: holder, adopt });
      }

      for (const { holder, secret } of plan) {
        const target = targets.get(holder)!;
        try {
          const result = await applyObject(target.kc, secret, {
            cluster: holder,
            logger: ctx.logger,
            dryRun,
            adopt,
          });
          changes.object(holder, result, dryRun);
        } catch (e) {
          throw clusterFailure(
            holder,
            target.connection.url,
            `Applying ${describeObject(secret)}`,
            e,
          );
        }
      }

      changes.writeTo(ctx.output, dryRun);
    },
  });
}
