import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import { CoreV1Api } from '@kubernetes/client-node';
import {
  AuditFinding,
  CACERTS_KEYS,
  CACERTS_SECRET,
  ISTIO_NAMESPACE,
  MeshClusterSnapshot,
  auditMesh,
  isMeshMember,
  membershipMatrix,
  validateClusterName,
} from '@tailmesh/plugin-mesh-common';
import {
  certificateFingerprint,
  makeApiClientWithTimeout,
  readClusterSnapshot,
  readIstiodRemoteView,
} from '@tailmesh/plugin-mesh-node';
import { MeshActionDeps, targetCluster } from '../../service/MeshActionDeps';
import {
  assertClusterList,
  checkInputs,
  clusterInput,
  resolveTailnet,
  tailnetInput,
} from '../inputs';
import { examples } from './verify.examples';

/** @public */
export const VERIFY_ACTION_ID = 'mesh:verify';

/** `a -> b` for every member whose istiod is still syncing, or has not listed, a peer it holds a remote secret for. */
function unsettledPeers(snapshots: MeshClusterSnapshot[]): string[] {
  const members = new Set(snapshots.filter(isMeshMember).map(s => s.cluster));
  return snapshots.flatMap(s => {
    const view = s.istiodRemotes;
    if (!isMeshMember(s) || view?.state !== 'reported') return [];
    return s.remoteSecretsFor
      .filter(peer => members.has(peer))
      .filter(peer => {
        const status = view.remotes.find(r => r.cluster === peer)?.status;
        return status === undefined || status === 'syncing';
      })
      .map(peer => `${s.cluster} -> ${peer}`);
  });
}

/**
 * The last step of a join: reads every member and judges the mesh with the same audit the mesh
 * backend runs, so "verified" here means "no error finding" on the mesh page too.
 *
 * @public
 */
export function createVerifyAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: VERIFY_ACTION_ID,
    description:
      'Checks the mesh across all members (istiod and operator ready, gateways addressed, remote secrets and egress both ways, one root CA, one mesh id, distinct networks, meshNetworks agreeing, tailnet DNS) and fails with the list of what is wrong. Writes nothing.',
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        members: z =>
          z
            .array(clusterInput(z))
            .min(1)
            .describe('Every cluster that should be a member of the mesh'),
        tailnet: z =>
          tailnetInput(z)
            .optional()
            .describe(
              'The tailnet MagicDNS domain; default mesh.tailscale.dnsName',
            ),
        istiodSettleSeconds: z =>
          z
            .number()
            .int()
            .min(0)
            .max(600)
            .optional()
            .describe(
              "How long to wait for each member's istiod to finish syncing a peer it holds a remote secret for (istiod gives up on a peer after 30 s, PILOT_REMOTE_CLUSTER_TIMEOUT); default 60",
            ),
      },
      output: {
        ok: z => z.boolean().describe('True when no error was found'),
        problems: z =>
          z.array(z.string()).describe('Each error finding, with its fix'),
        findings: z =>
          z
            .array(
              z.object({
                id: z.string(),
                kind: z.string(),
                severity: z.string(),
                clusters: z.array(z.string()),
                message: z.string(),
                fix: z.string(),
              }),
            )
            .describe(
              'Every finding (errors, warnings, info), most severe first',
            ),
      },
    },
    async handler(ctx) {
      const { members } = ctx.input;
      checkInputs(ctx.input, { members: validateClusterName });
      assertClusterList('members', members);
      const tailnet = resolveTailnet(deps.config, ctx.input.tailnet);
      const targets = members.map(name => targetCluster(deps, name));

      const snapshots = await Promise.all(
        targets.map(t =>
          readClusterSnapshot(t.kc, t.name, {
            tailnet,
            timeoutMs: deps.clusters.requestTimeoutMs,
          }),
        ),
      );
      // Each member's plugged-in root (its cacerts Secret), read once: verify writes nothing, so
      // only what istiod publishes can change while it waits below.
      const pluggedRoots = await Promise.all(
        snapshots.map(async (s, i) => {
          if (s.error || !isMeshMember(s)) return undefined;
          const core = makeApiClientWithTimeout(
            targets[i].kc,
            CoreV1Api,
            deps.clusters.requestTimeoutMs,
          );
          const cacerts = await core
            .readNamespacedSecret({
              name: CACERTS_SECRET,
              namespace: ISTIO_NAMESPACE,
            })
            .catch(() => undefined);
          const data = cacerts?.data?.[CACERTS_KEYS.rootCert];
          return data
            ? certificateFingerprint(
                Buffer.from(data, 'base64').toString('utf8'),
              )
            : undefined;
        }),
      );
      /** Indexes of members whose published root is not their cacerts root. */
      const rootsNotPublished = (): number[] =>
        snapshots.flatMap((s, i) =>
          pluggedRoots[i] &&
          s.rootFingerprint &&
          !s.error &&
          pluggedRoots[i] !== s.rootFingerprint
            ? [i]
            : [],
        );

      // istiod's own view is the judge of whether a member reaches its peers; a peer it is still
      // syncing (or has not picked up yet) is waited for, up to istiodSettleSeconds.
      const settleMs = (ctx.input.istiodSettleSeconds ?? 60) * 1000;
      const deadline = Date.now() + settleMs;
      for (let unsettled = unsettledPeers(snapshots); unsettled.length;) {
        if (Date.now() >= deadline) {
          ctx.logger.info(`istiod still settling: ${unsettled.join(', ')}`);
          break;
        }
        ctx.logger.info(`waiting for istiod: ${unsettled.join(', ')}`);
        await new Promise(r => setTimeout(r, 2000));
        await Promise.all(
          snapshots.map(async (s, i) => {
            if (s.error || !s.istiodRemotes) return;
            const core = makeApiClientWithTimeout(
              targets[i].kc,
              CoreV1Api,
              deps.clusters.requestTimeoutMs,
            );
            s.istiodRemotes = await readIstiodRemoteView(
              core,
              s.cluster,
              targets[i].kc.getCurrentCluster()?.server ?? '',
            );
          }),
        );
        unsettled = unsettledPeers(snapshots);
      }
      // A member whose trusted root (the istio-ca-root-cert ConfigMap istiod publishes) is not the
      // root of its own plugged-in CA (the cacerts Secret) has an istiod that has not published
      // that CA yet: only the leader of "istio-namespace-controller-election" writes the ConfigMap
      // (istio pilot/pkg/serviceregistry/kube/controller/multicluster.go), and after a rollout an
      // old pod that started before cacerts holds that lease until it is gone. That is waited for
      // too, within the same deadline; a cacerts of another root is not.
      for (let lagging = rootsNotPublished(); lagging.length;) {
        if (Date.now() >= deadline) {
          ctx.logger.info(
            `istiod has not published the plugged-in root yet: ${lagging.map(i => snapshots[i].cluster).join(', ')}`,
          );
          break;
        }
        ctx.logger.info(
          `waiting for istiod to publish the plugged-in root: ${lagging.map(i => snapshots[i].cluster).join(', ')}`,
        );
        await new Promise(r => setTimeout(r, 2000));
        await Promise.all(
          lagging.map(async i => {
            snapshots[i] = await readClusterSnapshot(
              targets[i].kc,
              targets[i].name,
              { tailnet, timeoutMs: deps.clusters.requestTimeoutMs },
            );
          }),
        );
        lagging = rootsNotPublished();
      }

      const problems: string[] = [];
      for (const s of snapshots) {
        if (s.error) problems.push(`${s.error.message}`);
        else if (!isMeshMember(s)) {
          problems.push(
            `${s.cluster} is not a mesh member: ${s.istiod ? 'istio-system lacks its network or mesh-id label' : 'istiod is not installed'} (fix: run mesh:istio:install)`,
          );
        }
      }
      const findings: AuditFinding[] = auditMesh(snapshots);
      for (const f of findings) {
        ctx.logger.info(`${f.severity}: ${f.message}`);
        if (f.severity === 'error')
          problems.push(`${f.message} (fix: ${f.fix})`);
      }
      const { matrix } = membershipMatrix(snapshots);
      for (const row of matrix) {
        ctx.logger.info(
          row
            .map(
              c =>
                `${c.from}->${c.to}: secret ${c.remoteSecret}, networks ${c.gatewayInMeshNetworks}, istiod ${c.istiodSync}`,
            )
            .join('; '),
        );
      }

      ctx.output('ok', problems.length === 0);
      ctx.output('problems', problems);
      ctx.output('findings', findings);
      // In a dry run the earlier steps of a join changed nothing, so the mesh is expected to
      // fall short; what would fail is information there, not a failure of the dry run.
      if (problems.length && ctx.isDryRun) {
        for (const p of problems) ctx.logger.info(`would fail: ${p}`);
        return;
      }
      if (problems.length) {
        throw new Error(
          `The mesh of ${members.join(', ')} is not healthy:\n- ${problems.join('\n- ')}`,
        );
      }
      ctx.logger.info(
        `The mesh of ${members.join(', ')} verified: no error found`,
      );
    },
  });
}
