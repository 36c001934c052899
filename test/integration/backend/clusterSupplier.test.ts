import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rootConfigServiceFactory } from '@backstage/backend-defaults/rootConfig';
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
import { stringify } from 'yaml';
import { eventually } from '../../support/eventually';
import { testbedAppConfig, testbedConfig } from '../../support/meshConfig';
import { joinValues, template } from '../../support/productBackend';

// A host that keeps its clusters somewhere other than app-config supplies them through
// meshClustersSupplierServiceRef; the mesh backend and the scaffolder module must then both see
// exactly those. Here the configuration lists no cluster at all, and the supplier gives cluster13
// and cluster14 (the backend files' clusters, only read here).
const supplied = ['cluster13', 'cluster14'];

/** The log (or the error) of a dry run of the Join template for `cluster`. */
async function joinDryRun(
  backend: Awaited<ReturnType<typeof startTestBackend>>,
  cluster: string,
): Promise<string> {
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
}

/** The cluster rows of the mesh backend once every one is synced. */
async function syncedRows(
  backend: Awaited<ReturnType<typeof startTestBackend>>,
  what: string,
  count: number,
): Promise<ClustersResponse> {
  return eventually(
    what,
    async () => {
      const res = await request(backend.server)
        .get('/api/mesh/clusters')
        .set('authorization', mockCredentials.user.header());
      expect(res.status).toBe(200);
      const b = res.body as ClustersResponse;
      return b.clusters.length === count &&
        b.clusters.every(c => c.sync.state === 'ok')
        ? b
        : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

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
    const body = await syncedRows(backend, 'both supplied clusters synced', 2);
    expect(body.clusters.map(c => c.name)).toEqual(supplied);
  });

  it("the scaffolder module's actions act on the same clusters, and name the supplier for any other", async () => {
    const dryRun = (cluster: string) => joinDryRun(backend, cluster);
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

// The default supplier reads mesh.clusters, and Backstage's root config watches its files: a
// cluster added to or removed from app-config is watched, or no longer, without a restart, by the
// mesh backend and by the scaffolder's actions alike.
describe('clusters of an app-config file edited while the backend runs', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-live-config-'));
  const file = path.join(dir, 'app-config.yaml');
  // The file holds the clusters' tokens: 0600, and removed after.
  const write = (names: string[]) =>
    fs.writeFileSync(file, stringify(testbedAppConfig(names)), { mode: 0o600 });
  let backend: Awaited<ReturnType<typeof startTestBackend>>;

  beforeAll(async () => {
    write(['cluster13']);
    backend = await startTestBackend({
      features: [
        meshPlugin,
        scaffolderPlugin,
        scaffolderModuleMesh,
        // What a production backend uses: config files, watched (the default).
        rootConfigServiceFactory({
          argv: ['node', 'backend', '--config', file],
        }),
        catalogServiceMock.factory({
          entities: [template('join-cluster-to-mesh')],
        }),
      ],
    });
  });

  afterAll(async () => {
    await backend?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows a cluster added to the file, and lets the actions use it', async () => {
    await syncedRows(backend, 'cluster13 synced', 1);
    expect(await joinDryRun(backend, 'cluster14')).toContain(
      'Unknown cluster "cluster14": it is not in mesh.clusters (configured: cluster13)',
    );
    const started = Date.now();
    write(['cluster13', 'cluster14']);
    const body = await syncedRows(backend, 'cluster14 added and synced', 2);
    console.log(
      `a cluster added to app-config was synced after ${Date.now() - started} ms`,
    );
    expect(body.clusters.map(c => c.name)).toEqual(['cluster13', 'cluster14']);
    const log = await joinDryRun(backend, 'cluster14');
    expect(log).not.toMatch(/Unknown cluster/);
    expect(log).toMatch(/cluster14/);
  });

  it('drops a cluster removed from the file, and a broken edit changes nothing', async () => {
    write(['cluster14']);
    const body = await syncedRows(backend, 'cluster13 removed', 1);
    expect(body.clusters.map(c => c.name)).toEqual(['cluster14']);
    expect(await joinDryRun(backend, 'cluster13')).toContain(
      'Unknown cluster "cluster13": it is not in mesh.clusters (configured: cluster14)',
    );
    // A cluster the checks refuse (a name that is no DNS label): the clusters in use stay as
    // they were.
    const broken = testbedAppConfig(['cluster14', 'cluster13']);
    broken.mesh.clusters[1].name = 'Cluster_13';
    fs.writeFileSync(file, stringify(broken), { mode: 0o600 });
    await new Promise(resolve => setTimeout(resolve, 3_000));
    const after = await syncedRows(backend, 'cluster14 still alone', 1);
    expect(after.clusters.map(c => c.name)).toEqual(['cluster14']);
    // And the next good edit is taken.
    write(['cluster14', 'cluster13']);
    const fixed = await syncedRows(backend, 'cluster13 back', 2);
    expect(fixed.clusters.map(c => c.name).sort()).toEqual([
      'cluster13',
      'cluster14',
    ]);
  });
});
