import { mockCredentials } from '@backstage/backend-test-utils';
import { actionsRegistryServiceMock } from '@backstage/backend-test-utils/alpha';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { FakeMeshState, threeClusters } from '../testUtils/fakeMeshState';
import { MeshAuditor } from '../service/MeshAuditor';
import { MeshStatusService } from '../service/MeshStatusService';
import { registerMeshActions } from '.';

function registry() {
  const state = new FakeMeshState(threeClusters());
  const service = new MeshStatusService({
    state,
    audit: new MeshAuditor({ state }),
    catalog: catalogServiceMock({
      entities: [
        {
          apiVersion: 'backstage.io/v1alpha1',
          kind: 'Component',
          metadata: {
            name: 'web',
            namespace: 'default',
            annotations: { 'tailmesh.dev/service': 'shop/web' },
          },
          spec: {},
        },
      ],
    }),
    now: () => new Date('2026-12-03T12:00:00.000Z'),
  });
  const actions = actionsRegistryServiceMock();
  registerMeshActions(actions, service);
  return actions;
}

describe('the mesh actions', () => {
  it('registers three read-only actions, each guarded by the permission of the route it mirrors', async () => {
    const actions = registry();
    const { actions: listed } = await actions.list();
    expect(listed.map(a => a.name).sort()).toEqual([
      'get-entity-mesh-reachability',
      'get-mesh-audit',
      'get-mesh-status',
    ]);
    for (const a of listed)
      expect(a.attributes).toEqual({
        readOnly: true,
        idempotent: true,
        destructive: false,
      });
    expect(
      Object.fromEntries(
        [...actions.actions.values()].map(a => [
          a.name,
          a.visibilityPermission?.name,
        ]),
      ),
    ).toEqual({
      'get-mesh-status': 'mesh.status.read',
      'get-entity-mesh-reachability': 'mesh.status.read',
      'get-mesh-audit': 'mesh.membership.read',
    });
  });

  it('get-mesh-status lists every cluster, members and not', async () => {
    const { output } = await registry().invoke({
      id: 'test:get-mesh-status',
      input: {},
    });
    expect(output).toMatchObject({
      generatedAt: '2026-12-03T12:00:00.000Z',
      clusters: [
        {
          name: 'cluster1',
          member: true,
          readable: true,
          istiodReady: true,
          remoteSecretsFor: ['cluster2'],
        },
        { name: 'cluster2', member: true, readable: true, gatewayReady: true },
        { name: 'cluster3', member: false, readable: true, istiodReady: false },
      ],
    });
  });

  it('get-entity-mesh-reachability says who serves, how each cluster reaches it, and why not', async () => {
    const { output } = await registry().invoke({
      id: 'test:get-entity-mesh-reachability',
      input: { entityRef: 'Component:default/web' },
      credentials: mockCredentials.user(),
    });
    expect(output).toEqual({
      service: { namespace: 'shop', name: 'web' },
      summary: {
        servingClusters: 1,
        totalClusters: 3,
        readyEndpoints: 2,
        totalEndpoints: 3,
      },
      clusters: [
        expect.objectContaining({
          cluster: 'cluster1',
          serving: true,
          readyEndpoints: 2,
          via: 'local',
          why: [],
        }),
        expect.objectContaining({
          cluster: 'cluster2',
          serving: false,
          via: 'gateway',
          destinations: [
            {
              cluster: 'cluster1',
              via: 'gateway',
              address: '100.64.0.1',
              endpoints: 2,
            },
          ],
          why: [],
        }),
        expect.objectContaining({
          cluster: 'cluster3',
          via: 'unreachable',
          why: [
            'cluster3 has no endpoint of the Service, and cluster3 is not a mesh member, so its sidecars are given only its own endpoints; join it with the "Join cluster to mesh" template',
          ],
        }),
      ],
    });
  });

  it('get-entity-mesh-reachability refuses a malformed reference and answers nothing for an unknown entity', async () => {
    await expect(
      registry().invoke({
        id: 'test:get-entity-mesh-reachability',
        input: { entityRef: 'component:' },
        credentials: mockCredentials.user(),
      }),
    ).rejects.toThrow(/Invalid entityRef/);
    await expect(
      registry().invoke({
        id: 'test:get-entity-mesh-reachability',
        input: { entityRef: 'component:default/secret-thing' },
        credentials: mockCredentials.user(),
      }),
    ).rejects.toThrow('Entity component:default/secret-thing not found');
  });

  it('get-mesh-audit gives each finding with its fix, and counts by severity', async () => {
    const { output } = (await registry().invoke({
      id: 'test:get-mesh-audit',
      input: {},
    })) as {
      output: {
        members: string[];
        counts: Record<string, number>;
        findings: Array<{ severity: string; fix: string }>;
      };
    };
    expect(output.members).toEqual(['cluster1', 'cluster2']);
    const counted = { error: 0, warning: 0, info: 0 } as Record<string, number>;
    for (const f of output.findings) {
      counted[f.severity]++;
      expect(f.fix.length).toBeGreaterThan(0);
    }
    expect(output.counts).toEqual(counted);
  });
});
