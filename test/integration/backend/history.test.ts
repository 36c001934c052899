import {
  AppsV1Api,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import {
  TestDatabaseId,
  TestDatabases,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import meshPlugin, { HistoryStore } from '@tailmesh/plugin-mesh-backend';
import {
  ClustersResponse,
  HistoryResponse,
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
  MembershipHistoryEvent,
  MembershipResponse,
  auditFindingId,
} from '@tailmesh/plugin-mesh-common';
import type { Knex } from 'knex';
import request from 'supertest';
import { eventually } from '../../support/eventually';
import { testbedAppConfig } from '../../support/meshConfig';
import { testPostgresId } from '../../support/postgres';
import { objectMembership } from '../../support/objectMembership';
import { kubeConfig } from '../../support/testbed';

// Membership history on SQLite and on the PostgreSQL server the global setup started: the store
// on its own, then the plugin's /history route while cluster14 really joins and leaves the mesh.
//
// cluster14 belongs to the backend's files (see support/clusterOwners.ts). Other files there expect
// it outside the mesh, so everything this file adds to it is removed again in afterAll.

const DATABASE_IDS: TestDatabaseId[] = ['SQLITE_3', testPostgresId()];
const databases = TestDatabases.create({ ids: DATABASE_IDS });
const TABLE = 'mesh_history_events';

const CLUSTER = 'cluster14';
const MESH_ID = 'tailmesh-history';
const NETWORK = 'network14';
const WAIT_MS = 60_000;

async function storeOn(id: TestDatabaseId, skipMigrations = false) {
  const knex = await databases.init(id);
  const database = mockServices.database({
    knex,
    migrations: { skip: skipMigrations },
  });
  return { knex, store: await HistoryStore.create({ database }) };
}

const joined = (cluster: string, second: number) => ({
  at: `2026-11-26T12:00:${String(second).padStart(2, '0')}.000Z`,
  cluster,
  kind: 'joined' as const,
  message: `${cluster} joined the mesh`,
});

it('runs on PostgreSQL, not only on SQLite', async () => {
  expect(databases.supports(testPostgresId())).toBe(true);
  const knex = await databases.init(testPostgresId());
  const [row] = (await knex.raw('select version() as v')).rows;
  expect(row.v).toMatch(/^PostgreSQL \d+/);
});

describe.each(DATABASE_IDS)('HistoryStore on %s', id => {
  it('migrates an empty database, and migrating again changes nothing', async () => {
    const { knex } = await storeOn(id);
    expect(await knex.schema.hasTable(TABLE)).toBe(true);
    for (const column of [
      'id',
      'at',
      'kind',
      'cluster',
      'finding_id',
      'message',
    ]) {
      expect(await knex.schema.hasColumn(TABLE, column)).toBe(true);
    }
    const version = await knex.migrate.currentVersion();
    expect(version).not.toBe('none');
    await HistoryStore.create({
      database: mockServices.database({ knex, migrations: { skip: false } }),
    });
    expect(await knex.migrate.currentVersion()).toBe(version);
    expect(await knex(TABLE).count({ n: '*' })).toEqual([
      { n: id === 'SQLITE_3' ? 0 : '0' },
    ]);
  });

  it('creates nothing when migrations are skipped', async () => {
    const { knex } = await storeOn(id, true);
    expect(await knex.schema.hasTable(TABLE)).toBe(false);
  });

  it('stores every field and returns newest first, ordered by id even within one second', async () => {
    const { store } = await storeOn(id);
    const message = `Résumé: ${'x'.repeat(5_000)} ✓`;
    const findingId = auditFindingId('one-way-remote-secret', [
      'a'.repeat(200),
      'b'.repeat(200),
    ]);
    await store.append([
      joined('cluster1', 0),
      { ...joined('cluster2', 0), at: '2026-11-26T12:00:00.000Z' },
    ]);
    await store.append([
      {
        at: '2026-11-26T12:00:00.000Z',
        kind: 'finding-raised',
        findingId,
        message,
      },
    ]);
    const { events, nextCursor } = await store.list({ limit: 10 });
    expect(nextCursor).toBeUndefined();
    expect(events.map(e => e.kind)).toEqual([
      'finding-raised',
      'joined',
      'joined',
    ]);
    expect(events[0]).toEqual({
      id: expect.stringMatching(/^\d+$/),
      at: '2026-11-26T12:00:00.000Z',
      kind: 'finding-raised',
      findingId,
      message,
    });
    // Absent optional fields stay absent, not null.
    expect(Object.keys(events[1]).sort()).toEqual(
      ['at', 'cluster', 'id', 'kind', 'message'].sort(),
    );
    expect(events.map(e => e.cluster)).toEqual([
      undefined,
      'cluster2',
      'cluster1',
    ]);
    const ids = events.map(e => Number(e.id));
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect(new Set(ids).size).toBe(3);
  });

  it('pages with the cursor until the oldest event', async () => {
    const { store } = await storeOn(id);
    await store.append(
      Array.from({ length: 7 }, (_, i) => joined(`cluster${i}`, i)),
    );
    const pages: string[][] = [];
    let before: number | undefined;
    for (;;) {
      const page = await store.list({ limit: 3, before });
      pages.push(page.events.map(e => e.cluster!));
      if (!page.nextCursor) break;
      expect(page.nextCursor).toBe(page.events[page.events.length - 1].id);
      before = Number(page.nextCursor);
    }
    expect(pages).toEqual([
      ['cluster6', 'cluster5', 'cluster4'],
      ['cluster3', 'cluster2', 'cluster1'],
      ['cluster0'],
    ]);
    // A page that ends exactly at the oldest event says there is nothing older.
    const exact = await store.list({ limit: 2, before: Number(before) });
    expect(exact.events).toHaveLength(1);
    expect(exact.nextCursor).toBeUndefined();
    expect((await store.list({ limit: 3, before: 1 })).events).toEqual([]);
  });

  it('replays the stored events into the members and open findings they leave', async () => {
    const { store } = await storeOn(id);
    expect((await store.recordedState()).empty).toBe(true);
    const finding = auditFindingId('istiod-not-ready', ['cluster2']);
    const other = auditFindingId('gateway-without-address', ['cluster1']);
    await store.append([
      joined('cluster1', 1),
      joined('cluster2', 2),
      {
        at: '2026-11-26T12:00:03.000Z',
        cluster: 'cluster2',
        kind: 'finding-raised',
        findingId: finding,
        message: 'istiod in cluster2 is not ready',
      },
      {
        at: '2026-11-26T12:00:04.000Z',
        cluster: 'cluster1',
        kind: 'finding-raised',
        findingId: other,
        message: 'cluster1 has no east-west gateway',
      },
      {
        at: '2026-11-26T12:00:05.000Z',
        cluster: 'cluster1',
        kind: 'left',
        message: 'cluster1 left the mesh',
      },
      {
        at: '2026-11-26T12:00:06.000Z',
        cluster: 'cluster1',
        kind: 'finding-cleared',
        findingId: other,
        message: 'Resolved: cluster1 has no east-west gateway',
      },
    ]);
    const state = await store.recordedState();
    expect(state.empty).toBe(false);
    expect(state.members).toEqual(new Set(['cluster2']));
    expect(state.openFindings).toEqual(
      new Map([
        [
          finding,
          { cluster: 'cluster2', message: 'istiod in cluster2 is not ready' },
        ],
      ]),
    );
  });
});

describe('GET /history of the plugin on SQLite and PostgreSQL, while cluster14 joins and leaves', () => {
  const apps = kubeConfig(CLUSTER).makeApiClient(AppsV1Api);
  const knexes = new Map<TestDatabaseId, Knex>();
  let backends: Array<{
    id: TestDatabaseId;
    backend: Awaited<ReturnType<typeof startTestBackend>>;
  }> = [];

  async function startBackends() {
    backends = [];
    for (const id of DATABASE_IDS) {
      const backend = await startTestBackend({
        features: [
          meshPlugin,
          mockServices.rootConfig.factory({
            data: testbedAppConfig([CLUSTER]),
          }),
          mockServices.database.factory({
            knex: knexes.get(id)!,
            migrations: { skip: false },
          }),
          mockServices.permissions.factory(),
          catalogServiceMock.factory(),
        ],
      });
      backends.push({ id, backend });
    }
  }

  async function stopBackends() {
    await Promise.all(backends.map(b => b.backend.stop()));
    backends = [];
  }

  async function get<T>(
    backend: Awaited<ReturnType<typeof startTestBackend>>,
    path: string,
  ): Promise<T> {
    const res = await request(backend.server).get(`/api/mesh${path}`);
    expect(res.status).toBe(200);
    return res.body as T;
  }

  /** Every event of one backend, oldest first, read page by page through the route. */
  async function allEvents(
    backend: Awaited<ReturnType<typeof startTestBackend>>,
  ): Promise<MembershipHistoryEvent[]> {
    const out: MembershipHistoryEvent[] = [];
    let cursor: string | undefined;
    do {
      const page = await get<HistoryResponse>(
        backend,
        `/history?limit=2${cursor ? `&before=${cursor}` : ''}`,
      );
      expect(page.events.length).toBeLessThanOrEqual(2);
      out.push(...page.events);
      cursor = page.nextCursor;
    } while (cursor);
    return out.reverse();
  }

  const summary = (events: MembershipHistoryEvent[]) =>
    events.map(e => `${e.kind} ${e.findingId ?? e.cluster}`);

  async function eventsBecome(
    what: string,
    done: (events: MembershipHistoryEvent[]) => boolean,
  ): Promise<Map<TestDatabaseId, MembershipHistoryEvent[]>> {
    const seen = new Map<TestDatabaseId, MembershipHistoryEvent[]>();
    await eventually(
      what,
      async () => {
        for (const { id, backend } of backends)
          seen.set(id, await allEvents(backend));
        return [...seen.values()].every(done) ? true : undefined;
      },
      {
        timeoutMs: WAIT_MS,
        describeLast: () =>
          `; last seen: ${JSON.stringify(Object.fromEntries([...seen].map(([k, v]) => [k, summary(v)])))}`,
      },
    );
    return seen;
  }

  const membership = objectMembership(CLUSTER, {
    network: NETWORK,
    meshId: MESH_ID,
  });

  beforeAll(async () => {
    for (const id of DATABASE_IDS) knexes.set(id, await databases.init(id));
    await startBackends();
  });

  afterAll(async () => {
    await stopBackends();
    await membership.restore();
  });

  it('records the join of cluster14 and the findings it brings, on both databases', async () => {
    for (const { backend } of backends) {
      await eventually(
        'cluster14 synced, outside the mesh',
        async () => {
          const { clusters } = await get<ClustersResponse>(
            backend,
            '/clusters',
          );
          return clusters[0].sync.state === 'ok' ? clusters[0] : undefined;
        },
        { timeoutMs: WAIT_MS },
      ).then(c => expect(c.member).toBe(false));
      // The recorder judges nothing until the tailnet policy file was read once (a global task
      // stores it; the audit reads that copy): the join below must come after that first read,
      // or its findings would be the history's baseline.
      let policy: MembershipResponse['tailnetPolicy'];
      await eventually(
        'the tailnet policy file read',
        async () => {
          policy = (await get<MembershipResponse>(backend, '/membership'))
            .tailnetPolicy;
          return policy?.state === 'ok' ? true : undefined;
        },
        {
          timeoutMs: WAIT_MS,
          describeLast: () => `; last: ${JSON.stringify(policy)}`,
        },
      );
      expect(await allEvents(backend)).toEqual([]);
    }

    await membership.join();

    const notReady = auditFindingId('istiod-not-ready', [CLUSTER]);
    const seen = await eventsBecome(
      'joined and istiod-not-ready raised',
      events =>
        events.some(e => e.kind === 'joined' && e.cluster === CLUSTER) &&
        events.some(
          e => e.kind === 'finding-raised' && e.findingId === notReady,
        ),
    );
    for (const events of seen.values()) {
      expect(events[0]).toMatchObject({
        kind: 'joined',
        cluster: CLUSTER,
        message: `${CLUSTER} joined the mesh`,
      });
      expect(Date.parse(events[0].at)).toBeGreaterThan(Date.now() - WAIT_MS);
    }
    expect(summary(seen.get('SQLITE_3')!)).toEqual(
      summary(seen.get(testPostgresId())!),
    );
  });

  it('serves pages through the route and validates the cursor', async () => {
    for (const { backend } of backends) {
      const all = await get<HistoryResponse>(backend, '/history');
      expect(all.events.length).toBeGreaterThanOrEqual(2);
      const first = await get<HistoryResponse>(backend, '/history?limit=1');
      expect(first.events).toEqual([all.events[0]]);
      expect(first.nextCursor).toBe(all.events[0].id);
      const second = await get<HistoryResponse>(
        backend,
        `/history?limit=1&before=${first.nextCursor}`,
      );
      expect(second.events).toEqual([all.events[1]]);
      for (const bad of ['before=abc', 'before=0', 'limit=-1', 'limit=1.5']) {
        const res = await request(backend.server).get(
          `/api/mesh/history?${bad}`,
        );
        expect(res.status).toBe(400);
      }
    }
  });

  it("reports istiod's replica counts as they change, and the cleared finding", async () => {
    const istiod = async (backend: (typeof backends)[number]['backend']) =>
      (await get<ClustersResponse>(backend, '/clusters')).clusters[0].istiod;
    for (const { backend } of backends) {
      expect(await istiod(backend)).toEqual({
        installed: true,
        ready: false,
        version: '1.28.0',
        replicas: { ready: 0, desired: 0 },
      });
    }
    await apps.patchNamespacedDeployment(
      {
        name: ISTIOD_DEPLOYMENT,
        namespace: ISTIO_NAMESPACE,
        body: { spec: { replicas: 2 } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    for (const { backend } of backends) {
      await eventually(
        'istiod 2/2 ready in /clusters',
        async () => {
          const s = await istiod(backend);
          return s.ready && s.replicas.ready === 2 && s.replicas.desired === 2
            ? s
            : undefined;
        },
        { timeoutMs: WAIT_MS },
      );
    }
    const notReady = auditFindingId('istiod-not-ready', [CLUSTER]);
    await eventsBecome('istiod-not-ready cleared', events =>
      events.some(
        e => e.kind === 'finding-cleared' && e.findingId === notReady,
      ),
    );
  });

  it('takes the stored history as its baseline after a restart, then records the leave', async () => {
    const before = new Map<TestDatabaseId, MembershipHistoryEvent[]>();
    for (const { id, backend } of backends)
      before.set(id, await allEvents(backend));
    await stopBackends();
    await startBackends();
    for (const { id, backend } of backends) {
      await eventually(
        'cluster14 synced again',
        async () => {
          const { clusters } = await get<ClustersResponse>(
            backend,
            '/clusters',
          );
          return clusters[0].sync.state === 'ok' && clusters[0].member
            ? true
            : undefined;
        },
        { timeoutMs: WAIT_MS },
      );
      // The member and its open findings are what the stored events say: nothing to add.
      expect(summary(await allEvents(backend))).toEqual(
        summary(before.get(id)!),
      );
    }

    await membership.removeIstiod();
    const seen = await eventsBecome(
      'left, and every raised finding cleared',
      events => {
        const raised = events.filter(e => e.kind === 'finding-raised');
        return (
          events.some(e => e.kind === 'left' && e.cluster === CLUSTER) &&
          raised.every(r =>
            events.some(
              e => e.kind === 'finding-cleared' && e.findingId === r.findingId,
            ),
          )
        );
      },
    );
    for (const [id, events] of seen) {
      const added = events.slice(before.get(id)!.length);
      expect(added.map(e => e.kind)).toContain('left');
      for (const e of added.filter(x => x.kind === 'finding-cleared'))
        expect(e.message).toMatch(/^Resolved: /);
    }
    expect(summary(seen.get('SQLITE_3')!)).toEqual(
      summary(seen.get(testPostgresId())!),
    );
  });
});
