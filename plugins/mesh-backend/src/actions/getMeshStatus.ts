import { ActionsRegistryService } from '@backstage/backend-plugin-api/alpha';
import { meshStatusReadPermission } from '@tailmesh/plugin-mesh-common';
import { MeshStatusService } from '../service/MeshStatusService';

/**
 * `get-mesh-status`: every configured cluster as the mesh page's cluster table shows it, for an
 * agent asking "is the mesh up, and which clusters are in it". Answers from the watch caches.
 */
export function registerGetMeshStatusAction(
  registry: ActionsRegistryService,
  service: Pick<MeshStatusService, 'clusters'>,
): void {
  registry.register({
    name: 'get-mesh-status',
    title: 'Mesh status',
    description:
      "Lists every cluster Tailmesh manages: whether it is a member of the Istio mesh, whether the backend can read it (and, when not, why), its network, region and zone, whether its istiod, east-west gateway and Tailscale operator are ready, and which peers it holds remote secrets for. Read-only; answered from the backend's watch caches, so it costs no Kubernetes request.",
    visibilityPermission: meshStatusReadPermission,
    attributes: { readOnly: true, idempotent: true, destructive: false },
    schema: {
      input: z => z.object({}),
      output: z =>
        z.object({
          generatedAt: z.string().describe('ISO 8601 time of the answer'),
          clusters: z.array(
            z.object({
              name: z.string(),
              member: z
                .boolean()
                .describe('Whether the cluster has joined the mesh'),
              readable: z
                .boolean()
                .describe(
                  'Whether the backend read the cluster on its last try',
                ),
              error: z
                .string()
                .optional()
                .describe(
                  'Why the cluster could not be read, when it could not',
                ),
              network: z.string(),
              region: z.string(),
              zone: z.string(),
              istiodReady: z.boolean(),
              gatewayReady: z
                .boolean()
                .describe(
                  'Whether the east-west gateway has its tailnet address',
                ),
              operatorReady: z.boolean(),
              remoteSecretsFor: z
                .array(z.string())
                .describe(
                  'Clusters whose endpoints this cluster’s istiod can know',
                ),
            }),
          ),
        }),
    },
    action: async () => {
      const { clusters, generatedAt } = service.clusters();
      return {
        output: {
          generatedAt,
          clusters: clusters.map(c => ({
            name: c.name,
            member: c.member,
            readable: c.sync.state === 'ok',
            ...(c.sync.error ? { error: c.sync.error.message } : {}),
            network: c.network,
            region: c.region,
            zone: c.zone,
            istiodReady: c.istiod.ready,
            gatewayReady: c.gateway.ready,
            operatorReady: c.operator.ready,
            remoteSecretsFor: c.knownPeers,
          })),
        },
      };
    },
  });
}
