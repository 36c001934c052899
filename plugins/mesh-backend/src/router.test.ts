import {
  coreServices,
  createBackendPlugin,
} from '@backstage/backend-plugin-api';
import {
  TestDatabases,
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { Entity } from '@backstage/catalog-model';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import {
  ClustersResponse,
  HistoryResponse,
  MembershipResponse,
  ServiceStatusResponse,
} from '@tailmesh/plugin-mesh-common';
import request from 'supertest';
import { createRouter } from './router';
import { AuthorizationCache } from './service/AuthorizationCache';
import { HistoryStore } from './service/HistoryStore';
import { MeshAuditor } from './service/MeshAuditor';
import { MeshStatusService } from './service/MeshStatusService';
import { FakeMeshState, threeClusters } from './testUtils/fakeMeshState';

jest.setTimeout(60_000);

const entities: Entity[] = [
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
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'plain', namespace: 'default' },
    spec: {},
  },
];

/**
 * The router wired as the plugin wires it, but over a cache stand-in with fixed state: the real
 * cache needs clusters, which only the integration tests have.
 */
function routerPlugin(
  databaseKnex: Awaited<ReturnType<TestDatabases['init']>>,
  authorizationCache?: AuthorizationCache,
) {
  return createBackendPlugin({
    pluginId: 'mesh',
    register(env) {
      env.registerInit({
        deps: {
          httpRouter: coreServices.httpRouter,
          httpAuth: coreServices.httpAuth,
          permissions: coreServices.permissions,
          catalog: catalogServiceRef,
        },
        async init({ httpRouter, httpAuth, permissions, catalog }) {
          const history = await HistoryStore.create({
            database: mockServices.database({ knex: databaseKnex }),
          });
          await history.append([
            {
              at: '2026-11-26T10:00:00.000Z',
              cluster: 'cluster1',
              kind: 'joined',
              message: 'cluster1 joined the mesh',
            },
            {
              at: '2026-11-26T10:00:01.000Z',
              cluster: 'cluster2',
              kind: 'joined',
              message: 'cluster2 joined the mesh',
            },
          ]);
          const state = new FakeMeshState(threeClusters());
          const service = new MeshStatusService({
            state,
            audit: new MeshAuditor({ state }),
            catalog,
          });
          httpRouter.use(
            await createRouter({
              service,
              history,
              httpAuth,
              permissions,
              authorizationCache,
            }),
          );
          httpRouter.addAuthPolicy({
            path: '/health',
            allow: 'unauthenticated',
          });
        },
      });
    },
  });
}

describe('router', () => {
  const databases = TestDatabases.create({ ids: ['SQLITE_3'] });

  async function start(result: AuthorizeResult.ALLOW | AuthorizeResult.DENY) {
    const knex = await databases.init('SQLITE_3');
    const { server } = await startTestBackend({
      features: [
        routerPlugin(knex),
        mockServices.permissions.factory({ result }),
        catalogServiceMock.factory({ entities }),
      ],
    });
    return server;
  }

  describe('when permissions allow', () => {
    let server: Awaited<ReturnType<typeof start>>;
    beforeAll(async () => {
      server = await start(AuthorizeResult.ALLOW);
    });

    it('GET /health', async () => {
      const res = await request(server).get('/api/mesh/health');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok' });
    });

    it('GET /clusters', async () => {
      const res = await request(server).get('/api/mesh/clusters');
      expect(res.status).toBe(200);
      const body = res.body as ClustersResponse;
      expect(body.clusters.map(c => [c.name, c.member, c.sync.state])).toEqual([
        ['cluster1', true, 'ok'],
        ['cluster2', true, 'ok'],
        ['cluster3', false, 'ok'],
      ]);
      expect(typeof body.generatedAt).toBe('string');
    });

    it('GET /membership', async () => {
      const res = await request(server).get('/api/mesh/membership');
      expect(res.status).toBe(200);
      const body = res.body as MembershipResponse;
      expect(body.clusters).toEqual(['cluster1', 'cluster2']);
      expect(body.matrix).toHaveLength(2);
      expect(Array.isArray(body.findings)).toBe(true);
    });

    it('GET /services/:namespace/:name', async () => {
      const res = await request(server).get('/api/mesh/services/shop/web');
      expect(res.status).toBe(200);
      const body = res.body as ServiceStatusResponse;
      expect(body).toMatchObject({ namespace: 'shop', name: 'web' });
      expect(body.clusters).toHaveLength(3);
      expect(body.routes.map(r => r.via)).toEqual([
        'local',
        'gateway',
        'unreachable',
      ]);
      expect(body.summary.servingClusters).toBe(1);
    });

    it('400 on an invalid service reference', async () => {
      const res = await request(server).get('/api/mesh/services/Shop_/web');
      expect(res.status).toBe(400);
      expect(res.body.error.name).toBe('InputError');
    });

    it('GET /entity', async () => {
      const res = await request(server)
        .get('/api/mesh/entity')
        .query({ entityRef: 'component:default/web' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ namespace: 'shop', name: 'web' });
    });

    it('400 on a missing or invalid entityRef, 404 on an unknown entity or annotation', async () => {
      expect((await request(server).get('/api/mesh/entity')).status).toBe(400);
      expect(
        (await request(server).get('/api/mesh/entity?entityRef=web')).status,
      ).toBe(400);
      expect(
        (
          await request(server).get(
            '/api/mesh/entity?entityRef=component:default/nope',
          )
        ).status,
      ).toBe(404);
      expect(
        (
          await request(server).get(
            '/api/mesh/entity?entityRef=component:default/plain',
          )
        ).status,
      ).toBe(404);
    });

    it('GET /history pages with a cursor', async () => {
      const first = await request(server).get('/api/mesh/history?limit=1');
      expect(first.status).toBe(200);
      const body = first.body as HistoryResponse;
      expect(body.events.map(e => e.cluster)).toEqual(['cluster2']);
      expect(body.nextCursor).toBeDefined();
      const second = await request(server).get(
        `/api/mesh/history?limit=1&before=${body.nextCursor}`,
      );
      expect(
        (second.body as HistoryResponse).events.map(e => e.cluster),
      ).toEqual(['cluster1']);
      expect((second.body as HistoryResponse).nextCursor).toBeUndefined();
    });

    it('400 on bad history parameters', async () => {
      for (const query of [
        'limit=0',
        'limit=abc',
        'before=-1',
        'limit=1&limit=2',
      ]) {
        const res = await request(server).get(`/api/mesh/history?${query}`);
        expect(res.status).toBe(400);
      }
    });
  });

  describe('when permissions deny', () => {
    let server: Awaited<ReturnType<typeof start>>;
    beforeAll(async () => {
      server = await start(AuthorizeResult.DENY);
    });

    it.each([
      '/clusters',
      '/membership',
      '/services/shop/web',
      '/entity?entityRef=component:default/web',
      '/history',
    ])('403 without data on %s', async path => {
      const res = await request(server).get(`/api/mesh${path}`);
      expect(res.status).toBe(403);
      expect(res.body.error.name).toBe('NotAllowedError');
      expect(res.body.clusters).toBeUndefined();
      expect(res.body.events).toBeUndefined();
    });

    it('still answers /health', async () => {
      expect((await request(server).get('/api/mesh/health')).status).toBe(200);
    });
  });

  describe('with an authorization cache', () => {
    // Long enough that a loaded CI machine serves the requests of both tests well within it.
    const TTL_MS = 5000;
    let deny = false;
    const permissions = mockServices.permissions.mock({
      authorize: async requests =>
        requests.map(() => ({
          result: deny ? AuthorizeResult.DENY : AuthorizeResult.ALLOW,
        })),
    });
    let server: Awaited<ReturnType<typeof start>>;
    const alice = mockCredentials.user.header('user:default/alice');
    const bob = mockCredentials.user.header('user:default/bob');
    const get = (path: string, authorization: string) =>
      request(server)
        .get(`/api/mesh${path}`)
        .set('authorization', authorization);

    beforeAll(async () => {
      const knex = await databases.init('SQLITE_3');
      ({ server } = await startTestBackend({
        features: [
          routerPlugin(knex, new AuthorizationCache({ ttlMs: TTL_MS })),
          permissions.factory,
          catalogServiceMock.factory({ entities }),
        ],
      }));
    });

    it('asks for a decision once per caller and permission within the time to live', async () => {
      for (let i = 0; i < 5; i++) {
        expect((await get('/clusters', alice)).status).toBe(200);
        expect((await get('/services/shop/web', alice)).status).toBe(200);
      }
      expect(permissions.authorize).toHaveBeenCalledTimes(1);
      expect((await get('/membership', alice)).status).toBe(200);
      expect((await get('/clusters', bob)).status).toBe(200);
      expect(permissions.authorize).toHaveBeenCalledTimes(3);
    });

    it('refuses a revoked permission once the time to live has passed, and a new caller at once', async () => {
      deny = true;
      expect((await get('/clusters', bob)).status).toBe(200);
      expect(
        (
          await get(
            '/clusters',
            mockCredentials.user.header('user:default/carol'),
          )
        ).status,
      ).toBe(403);
      await new Promise(resolve => setTimeout(resolve, TTL_MS + 50));
      expect((await get('/clusters', bob)).status).toBe(403);
      expect((await get('/services/shop/web', alice)).status).toBe(403);
    });
  });
});
