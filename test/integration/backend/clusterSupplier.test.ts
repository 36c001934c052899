import {
  createServiceFactory,
  coreServices,
} from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import scaffolderPlugin from '@backstage/plugin-scaffolder-backend';
import meshPlugin from '@tailmesh/plugin-mesh-backend';
import { ClustersResponse } from '@tailmesh/plugin-mesh-common';
import {
  meshClustersSupplierServiceRef,
  readClusterConfig,
} from '@tailmesh/plugin-mesh-node';
import scaffolderModuleMesh from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import request from 'supertest';
import { eventually } from '../../support/eventually';
import { testbedAppConfig, testbedConfig } from '../../support/meshConfig';
import { joinValues, template } from '../../support/productBackend';

// A host that keeps its clusters somewhere other than app-config supplies them through
// meshClustersSupplierServiceRef; the mesh backend and the scaffolder module must then both see
// exactly those. Here the configuration lists no cluster at all, and the supplier gives cluster13
// and cluster14 (the backend files' clusters, only read here).
const supplied = ['cluster13', 'cluster14'];

describe('clusters from a supplier of the host', () => {
  let backend: Awaited<ReturnType<typeof startTestBackend>>;
  let asked = 0;

  beforeAll(async () => {
    const config = testbedAppConfig([]);
    expect(config.mesh.clusters).toEqual([]);
    backend = await startTestBackend({
      features: [
        meshPlugin,
        scaffolderPlugin,
        scaffolderModuleMesh,
        mockServices.rootConfig.factory({ data: config }),
        catalogServiceMock.factory({
          entities: [template('join-cluster-to-mesh')],
        }),
        createServiceFactory({
          service: meshClustersSupplierServiceRef,
          deps: { logger: coreServices.rootLogger },
          factory: () => ({
            source: 'the test fleet registry',
            getClusters: async () => {
              asked++;
              return readClusterConfig(testbedConfig(supplied));
            },
          }),
        }),
      ],
    });
  });

  afterAll(async () => {
    await backend?.stop();
  });

  it('the mesh backend watches the supplied clusters', async () => {
    const body = await eventually(
      'both supplied clusters synced',
      async () => {
        const res = await request(backend.server)
          .get('/api/mesh/clusters')
          .set('authorization', mockCredentials.user.header());
        expect(res.status).toBe(200);
        const b = res.body as ClustersResponse;
        return b.clusters.length === 2 &&
          b.clusters.every(c => c.sync.state === 'ok')
          ? b
          : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(body.clusters.map(c => c.name)).toEqual(supplied);
  });

  it("the scaffolder module's actions act on the same clusters, and name the supplier for any other", async () => {
    const dryRun = async (cluster: string) => {
      const res = await request(backend.server)
        .post('/api/scaffolder/v2/dry-run')
        .set('authorization', mockCredentials.user.header())
        .send({
          template: template('join-cluster-to-mesh'),
          values: { ...joinValues('cluster14', 'supplier-mesh'), cluster },
          directoryContents: [],
        });
      // A step that fails ends the dry run with its error instead of the log.
      const log = (res.body.log ?? []) as Array<{ body: { message?: string } }>;
      return [
        ...log.map(l => l.body.message ?? ''),
        res.body.error?.message ?? '',
      ].join('\n');
    };
    // mesh:members reads every supplied cluster; check-join then plans cluster14's join.
    const log = await dryRun('cluster14');
    expect(log).not.toMatch(/Unknown cluster/);
    expect(log).toMatch(/cluster13/);
    expect(log).toMatch(/cluster14/);
    expect(await dryRun('cluster15')).toContain(
      'Unknown cluster "cluster15": it is not in the test fleet registry (configured: cluster13, cluster14)',
    );
    // One supplier, asked once by each plugin at start: both see one list.
    expect(asked).toBe(2);
  });
});
