import { ActionsRegistryService } from '@backstage/backend-plugin-api/alpha';
import {
  AUDIT_FINDING_KINDS,
  AUDIT_SEVERITIES,
  meshMembershipReadPermission,
} from '@tailmesh/plugin-mesh-common';
import { MeshStatusService } from '../service/MeshStatusService';

/**
 * `get-mesh-audit`: the mesh page's findings, each with its fix, for an agent asking "what is
 * wrong with the mesh and what do I run".
 */
export function registerGetMeshAuditAction(
  registry: ActionsRegistryService,
  service: Pick<MeshStatusService, 'membership'>,
): void {
  registry.register({
    name: 'get-mesh-audit',
    title: 'Mesh audit findings with their fixes',
    description:
      "The findings of the mesh's membership audit, most severe first: what is wrong (a root CA mismatch, a one-way remote secret, a gateway missing from meshNetworks, a tailnet grant missing or too broad, ...), the clusters involved, and the fix, naming the template or action to run. Also says whether the tailnet policy file could be read. Read-only; answered from the backend's watch caches.",
    visibilityPermission: meshMembershipReadPermission,
    attributes: { readOnly: true, idempotent: true, destructive: false },
    schema: {
      input: z => z.object({}),
      output: z =>
        z.object({
          generatedAt: z.string(),
          members: z.array(z.string()).describe('The mesh members, sorted'),
          counts: z.object({
            error: z.number(),
            warning: z.number(),
            info: z.number(),
          }),
          findings: z.array(
            z.object({
              kind: z.enum(AUDIT_FINDING_KINDS),
              severity: z.enum(AUDIT_SEVERITIES),
              clusters: z.array(z.string()),
              message: z.string(),
              fix: z.string(),
            }),
          ),
          tailnetPolicy: z
            .enum(['ok', 'error', 'pending', 'not-configured'])
            .optional()
            .describe(
              'Whether the tailnet policy file behind the grant checks could be read',
            ),
        }),
    },
    action: async () => {
      const m = service.membership();
      const counts = { error: 0, warning: 0, info: 0 };
      for (const f of m.findings) counts[f.severity]++;
      return {
        output: {
          generatedAt: m.generatedAt,
          members: m.clusters,
          counts,
          findings: m.findings.map(f => ({
            kind: f.kind,
            severity: f.severity,
            clusters: f.clusters,
            message: f.message,
            fix: f.fix,
          })),
          ...(m.tailnetPolicy ? { tailnetPolicy: m.tailnetPolicy.state } : {}),
        },
      };
    },
  });
}
