import { parseEntityRef, stringifyEntityRef } from '@backstage/catalog-model';
import { ActionsRegistryService } from '@backstage/backend-plugin-api/alpha';
import { InputError } from '@backstage/errors';
import { meshStatusReadPermission } from '@tailmesh/plugin-mesh-common';
import { MeshStatusService } from '../service/MeshStatusService';

/**
 * `get-entity-mesh-reachability`: the entity mesh card's answer, for an agent asking "which
 * clusters serve this service, and why can't cluster A reach it". The catalog is asked with the
 * caller's credentials, so an entity the caller may not see is not found.
 */
export function registerGetEntityReachabilityAction(
  registry: ActionsRegistryService,
  service: Pick<MeshStatusService, 'entityReachability'>,
): void {
  registry.register({
    name: 'get-entity-mesh-reachability',
    title: 'Which clusters serve an entity, and how each reaches it',
    description:
      "For a catalog entity that stands for a Kubernetes Service (annotation tailmesh.dev/service or backstage.io/kubernetes-id), lists every cluster: whether it serves the Service and with how many ready endpoints, and how requests from that cluster reach it as istiod programs its sidecars: its own endpoints (local), another member's east-west gateway (gateway), or not at all (unreachable), with the reasons and what to run. Read-only; answered from the backend's watch caches.",
    visibilityPermission: meshStatusReadPermission,
    attributes: { readOnly: true, idempotent: true, destructive: false },
    schema: {
      input: z =>
        z.object({
          entityRef: z
            .string()
            .describe('The entity, e.g. component:default/echo'),
        }),
      output: z =>
        z.object({
          service: z.object({ namespace: z.string(), name: z.string() }),
          summary: z.object({
            servingClusters: z.number(),
            totalClusters: z.number(),
            readyEndpoints: z.number(),
            totalEndpoints: z.number(),
          }),
          clusters: z.array(
            z.object({
              cluster: z.string(),
              readable: z.boolean(),
              serving: z.boolean(),
              readyEndpoints: z.number(),
              notReadyEndpoints: z.number(),
              via: z
                .enum(['local', 'gateway', 'unreachable'])
                .describe('How requests for the Service leave this cluster'),
              destinations: z
                .array(
                  z.object({
                    cluster: z.string(),
                    via: z.enum(['local', 'gateway']),
                    address: z.string().optional(),
                    endpoints: z.number(),
                  }),
                )
                .describe(
                  'Where requests go, each weighted by its ready endpoints',
                ),
              why: z
                .array(z.string())
                .describe(
                  'Why the cluster cannot reach the Service, and what to run; empty when it can',
                ),
            }),
          ),
        }),
    },
    action: async ({ input, credentials }) => {
      let entityRef: string;
      try {
        entityRef = stringifyEntityRef(parseEntityRef(input.entityRef));
      } catch (e) {
        throw new InputError(
          `Invalid entityRef: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
      const { status, why } = await service.entityReachability(
        entityRef,
        credentials,
      );
      const routes = new Map(status.routes.map(r => [r.fromCluster, r]));
      return {
        output: {
          service: { namespace: status.namespace, name: status.name },
          summary: status.summary,
          clusters: status.clusters.map(c => {
            const route = routes.get(c.cluster);
            return {
              cluster: c.cluster,
              readable: c.reachable,
              serving: c.serving,
              readyEndpoints: c.endpoints.ready,
              notReadyEndpoints: c.endpoints.notReady,
              via: route?.via ?? 'unreachable',
              destinations: (route?.destinations ?? []).map(d => ({ ...d })),
              why: why[c.cluster] ?? [],
            };
          }),
        },
      };
    },
  });
}
