import net from 'node:net';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { ConfigReader } from '@backstage/config';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import meshPlugin from '@tailmesh/plugin-mesh-backend';
import { ClustersResponse } from '@tailmesh/plugin-mesh-common';
import { ClusterAccess, readClusterSnapshot } from '@tailmesh/plugin-mesh-node';
import request from 'supertest';
import { eventually } from '../../support/eventually';
import { testbedAppConfig } from '../../support/meshConfig';

// A cluster whose apiserver accepts connections and never answers (a hung apiserver, or a proxy
// in front of a dead one), configured beside cluster13 of the real test bed: its row turns into a
// `timeout` within mesh.clusterRequestTimeoutSeconds, and cluster13 is never held up by it.
//
// cluster13 belongs to the backend's files (see support/clusterOwners.ts); this file only reads it.

const TIMEOUT_SECONDS = 2;

describe('a cluster that accepts connections and never answers', () => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer(s => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  let url = '';
  let appConfig: ReturnType<typeof testbedAppConfig>;
  let backend: Awaited<ReturnType<typeof startTestBackend>> | undefined;

  beforeAll(async () => {
    await new Promise<void>(resolve =>
      silent.listen(0, '127.0.0.1', () => resolve()),
    );
    url = `https://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const base = testbedAppConfig(['cluster13']);
    appConfig = {
      ...base,
      mesh: {
        ...base.mesh,
        clusterRequestTimeoutSeconds: TIMEOUT_SECONDS,
        clusters: [
          {
            name: 'hung',
            url,
            authProvider: 'serviceAccount',
            serviceAccountToken: 'token-of-the-hung-cluster',
            caData: base.mesh.clusters[0].caData,
          },
          ...base.mesh.clusters,
        ],
      },
    } as ReturnType<typeof testbedAppConfig>;
  });

  afterAll(async () => {
    await backend?.stop();
    for (const s of sockets) s.destroy();
    await new Promise(resolve => silent.close(resolve));
  });

  it('shows a timeout in its own row within the request timeout, while cluster13 syncs', async () => {
    const started = Date.now();
    backend = await startTestBackend({
      features: [
        meshPlugin,
        mockServices.rootConfig.factory({ data: appConfig }),
        mockServices.permissions.factory(),
        catalogServiceMock.factory(),
      ],
    });
    const clusters = async () => {
      const asked = Date.now();
      const res = await request(backend!.server).get('/api/mesh/clusters');
      expect(res.status).toBe(200);
      // Answered from memory: the silent cluster never slows a request down.
      expect(Date.now() - asked).toBeLessThan(1_000);
      return (res.body as ClustersResponse).clusters;
    };

    const ok13 = await eventually(
      'cluster13 ok',
      async () => {
        const c = (await clusters()).find(x => x.name === 'cluster13');
        return c?.sync.state === 'ok' ? Date.now() - started : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const timedOut = await eventually(
      'the silent cluster in error',
      async () => {
        const c = (await clusters()).find(x => x.name === 'hung');
        return c?.sync.state === 'error'
          ? { row: c, ms: Date.now() - started }
          : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(timedOut.row.sync.error).toEqual({
      kind: 'timeout',
      // Readers see words without the cluster's address (it stays in the backend's log).
      message: 'hung: its API server did not answer in time',
    });
    expect(JSON.stringify(timedOut.row)).not.toContain(url);
    expect(timedOut.ms).toBeLessThan(TIMEOUT_SECONDS * 1000 + 3_000);
    // cluster13 did not wait for the silent cluster's timeout.
    expect(ok13).toBeLessThan(timedOut.ms);
  });

  it('makes readClusterSnapshot give up on it, without holding up cluster13', async () => {
    const access = ClusterAccess.fromConfig(new ConfigReader(appConfig));
    expect(access.requestTimeoutMs).toBe(TIMEOUT_SECONDS * 1000);
    const started = Date.now();
    const timed = (name: string) =>
      readClusterSnapshot(access.kubeConfig(name), name, {
        timeoutMs: access.requestTimeoutMs,
      }).then(snapshot => ({ snapshot, ms: Date.now() - started }));
    const [hung, ok] = await Promise.all([timed('hung'), timed('cluster13')]);
    expect(hung.snapshot.error?.kind).toBe('timeout');
    expect(hung.ms).toBeGreaterThanOrEqual(TIMEOUT_SECONDS * 1000 - 50);
    expect(hung.ms).toBeLessThan(TIMEOUT_SECONDS * 1000 + 2_000);
    expect(ok.snapshot.error).toBeUndefined();
    expect(ok.ms).toBeLessThan(TIMEOUT_SECONDS * 1000);
  });
});
