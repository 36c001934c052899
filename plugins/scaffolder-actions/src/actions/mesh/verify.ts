import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  AuditFinding,
  auditMesh,
  isMeshMember,
  membershipMatrix,
  validateClusterName,
} from '@tailmesh/plugin-mesh-common';
import { readClusterSnapshot } from '@tailmesh/plugin-mesh-node';
import { MeshActionDeps, targetCluster } from '../../service/MeshActionDeps';
import {
  assertClusterList,
  checkInputs,
  clusterInput,
  resolveTailnet,
  tailnetInput,
} from '../inputs';
import { examples } from './verify.examples';

export const VERIFY_ACTION_ID = 'mesh:verify';

/**
 * The last step of a join: reads every member and judges the mesh with the same audit the mesh
 * backend runs, so "verified" here means "no error finding" on the mesh page too.
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
                `${c.from}->${c.to}: secret ${c.remoteSecret}, networks ${c.gatewayInMeshNetworks}`,
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
