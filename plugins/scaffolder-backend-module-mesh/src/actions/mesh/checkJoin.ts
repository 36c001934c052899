import { ConflictError, InputError, NotAllowedError } from '@backstage/errors';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  MeshClusterSnapshot,
  isMeshMember,
  validateClusterName,
  validateNetwork,
} from '@tailmesh/plugin-mesh-common';
import {
  MeshActionDeps,
  readConfiguredSnapshots,
} from '../../service/MeshActionDeps';
import {
  adoptInput,
  checkInputs,
  clusterInput,
  networkInput,
  resolveTailnet,
  tailnetInput,
} from '../inputs';
import { foreignObjectsOfJoin } from './joinOwnership';
import { tailscaleClient } from '../tailscale/tailscaleInputs';
import { examples } from './checkJoin.examples';

/** @public */
export const MESH_CHECK_JOIN_ACTION_ID = 'mesh:check-join';

/**
 * Members other than `cluster` that already use `network`. Each member is its own network in a
 * multi-primary, multi-network mesh: two members on one network id make istiod send pods straight
 * to the other's pod IPs, which no pod can route to across the tailnet.
 */
export function membersOnNetwork(
  snapshots: ReadonlyArray<MeshClusterSnapshot>,
  cluster: string,
  network: string,
): string[] {
  return snapshots
    .filter(
      s => s.cluster !== cluster && isMeshMember(s) && s.network === network,
    )
    .map(s => s.cluster)
    .sort();
}

/**
 * The join's preconditions, checked before the first write, so a join that cannot work changes
 * nothing: the network id is not another member's, and the tailnet serves HTTPS certificates
 * (the operator's API server proxy gets its certificate from them: tailscale.com/kb/1437,
 * `cmd/k8s-operator/api-proxy/proxy.go`).
 *
 * @public
 */
export function createMeshCheckJoinAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: MESH_CHECK_JOIN_ACTION_ID,
    description:
      "Checks, before a join writes anything, what would make it fail later or change what Tailmesh did not make: helm releases it did not install and objects of the names the join writes without its label (refused unless adopt), the network id is already another member's (read from every configured cluster's istio-system label), or tailnet HTTPS is off (read from the Tailscale API's tailnet settings; the OAuth client needs the feature_settings:read scope, and without it the check is skipped with a warning). Writes nothing.",
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z => clusterInput(z, 'The cluster that is about to join'),
        network: z => networkInput(z),
        tailnet: z => tailnetInput(z).optional(),
        adopt: z =>
          adoptInput(
            z,
            'helm releases and objects of the names a join writes (the join then adopts them)',
          ),
      },
      output: {
        warnings: z =>
          z.array(z.string()).describe('What could not be checked, and why'),
      },
    },
    async handler(ctx) {
      const { cluster, network } = ctx.input;
      checkInputs(ctx.input, {
        cluster: validateClusterName,
        network: validateNetwork,
      });
      deps.clusters.get(cluster);
      const warnings: string[] = [];

      const snapshots = await readConfiguredSnapshots(deps, cluster);
      const clash = membersOnNetwork(snapshots, cluster, network);
      if (clash.length) {
        throw new InputError(
          `Invalid input: network "${network}" is already ${clash.join(' and ')}'s; every member needs a network of its own (istiod sends requests within a network straight to pod IPs, which no other cluster can route to). Choose another network; nothing was written`,
        );
      }
      // Everything the join's steps would write over that Tailmesh did not make, listed before
      // any step writes, so a join never stops halfway on the first one it meets.
      const tailnet = resolveTailnet(deps.config, ctx.input.tailnet);
      const peers = snapshots
        .filter(s => !s.error && isMeshMember(s))
        .map(s => s.cluster);
      if (!(ctx.input.adopt ?? false)) {
        const foreign = await foreignObjectsOfJoin(
          deps,
          cluster,
          peers,
          tailnet,
          ctx.logger,
        );
        if (foreign.length) {
          throw new NotAllowedError(
            `The join would change what Tailmesh did not make: ${foreign.join('; ')}. Nothing was written. Remove ${foreign.length > 1 ? 'them' : 'it'}, or run the join with "Take over what the cluster already runs" (adopt): releases keep their values, objects become Tailmesh's; a dry run shows what would change`,
          );
        }
      }
      for (const s of snapshots) {
        if (s.error)
          warnings.push(
            `${s.cluster} could not be read, so its network is unknown: ${s.error.message}`,
          );
      }

      try {
        const settings = await tailscaleClient(
          deps.config,
          ctx.secrets,
        ).getSettings();
        if (settings.httpsEnabled === false) {
          throw new ConflictError(
            "Tailnet HTTPS is off: the Tailscale operator's API server proxy cannot get a certificate, so no peer could reach this cluster's API server. Enable HTTPS certificates in the tailnet's DNS settings (https://tailscale.com/kb/1153), then run the join again; nothing was written",
          );
        }
        if (settings.httpsEnabled === undefined)
          warnings.push(
            'the Tailscale API did not say whether tailnet HTTPS is on; the API server proxies need it (https://tailscale.com/kb/1153)',
          );
      } catch (e) {
        if (!(e instanceof NotAllowedError)) throw e;
        warnings.push(
          `tailnet HTTPS could not be checked: ${e.message}. The API server proxies need HTTPS on (https://tailscale.com/kb/1153)`,
        );
      }

      for (const w of warnings) ctx.logger.warn(w);
      ctx.logger.info(
        `${cluster} may join on network ${network}: no other member uses it${warnings.length ? '' : ', and tailnet HTTPS is on'}`,
      );
      ctx.output('warnings', warnings);
    },
  });
}
