import {
  TestDatabaseId,
  TestDatabases,
  mockServices,
} from '@backstage/backend-test-utils';
import {
  FakeMeshState,
  OK,
  memberSnapshot,
  threeClusters,
} from '../testUtils/fakeMeshState';
import {
  BROAD_POLICY,
  FakeTailnetPolicy,
} from '../testUtils/fakeTailnetPolicy';
import { HistoryRecorder } from './HistoryRecorder';
import { MeshAuditor } from './MeshAuditor';
import { HistoryStore } from './HistoryStore';

jest.setTimeout(60_000);

describe('HistoryRecorder and HistoryStore', () => {
  // SQLite only here, where no database server runs: the store is tested on PostgreSQL as well by
  // test/integration/backend/history.test.ts, against the server the integration setup starts.
  const databases = TestDatabases.create({ ids: ['SQLITE_3'] });

  async function storeFor(databaseId: TestDatabaseId) {
    const knex = await databases.init(databaseId);
    const database = mockServices.database({
      knex,
      migrations: { skip: false },
    });
    return HistoryStore.create({ database });
  }

  function recorderFor(state: FakeMeshState, store: HistoryStore) {
    let tick = 0;
    const audit = new MeshAuditor({ state });
    audit.start();
    const recorder = new HistoryRecorder({
      audit,
      store,
      logger: mockServices.logger.mock(),
      now: () => new Date(Date.UTC(2026, 10, 26, 12, 0, tick++)),
    });
    return { recorder, audit };
  }

  it.each(databases.eachSupportedId())(
    'records joins, leaves and findings after the baseline, %p',
    async databaseId => {
      const store = await storeFor(databaseId);
      const clusters = threeClusters();
      clusters[2].health = { state: 'syncing' };
      const state = new FakeMeshState(clusters);
      const { recorder, audit } = recorderFor(state, store);
      recorder.start();

      // Nothing is judged while a cluster is still syncing.
      state.emit();
      await recorder.observe();
      expect((await store.list({ limit: 10 })).events).toEqual([]);

      // The first observation: members are new to the (empty) history; findings present now
      // would only be the baseline.
      clusters[2].health = OK;
      state.emit();
      await recorder.observe();
      let events = (await store.list({ limit: 10 })).events;
      expect(events.map(e => [e.kind, e.cluster])).toEqual([
        ['joined', 'cluster2'],
        ['joined', 'cluster1'],
      ]);

      // cluster3 joins without remote secrets: a join and new findings.
      clusters[2].snapshot = memberSnapshot('cluster3', 3, []);
      state.emit();
      await recorder.observe();
      events = (await store.list({ limit: 50 })).events;
      expect(events[events.length - 3]).toMatchObject({
        kind: 'joined',
        cluster: 'cluster3',
      });
      const raised = events.filter(e => e.kind === 'finding-raised');
      expect(raised.length).toBeGreaterThan(0);
      expect(raised[0].findingId).toBeDefined();

      // An outage is not leaving, and clears nothing.
      clusters[2].health = {
        state: 'error',
        error: { kind: 'timeout', message: 'cluster3: timed out' },
      };
      const before = (await store.list({ limit: 50 })).events.length;
      state.emit();
      await recorder.observe();
      expect((await store.list({ limit: 50 })).events).toHaveLength(before);

      // cluster3 leaves: a leave, and its findings are cleared.
      clusters[2].health = OK;
      clusters[2].snapshot = {
        cluster: 'cluster3',
        remoteSecretsFor: [],
        egressFor: [],
      };
      state.emit();
      await recorder.observe();
      events = (await store.list({ limit: 50 })).events;
      expect(
        events.some(e => e.kind === 'left' && e.cluster === 'cluster3'),
      ).toBe(true);
      const cleared = events.filter(e => e.kind === 'finding-cleared');
      expect(cleared.map(e => e.findingId).sort()).toEqual(
        raised.map(e => e.findingId).sort(),
      );
      expect(cleared[0].message).toMatch(/^Resolved: /);

      // Once the recorder stopped, nobody wants audits: a change no longer runs one.
      await recorder.stop();
      const audits = audit.auditCount;
      state.emit();
      expect(audit.auditCount).toBe(audits);
      audit.stop();
      expect(state.listenerCount()).toBe(0);

      // A restart takes the stored state as its baseline: nothing new to record.
      const { recorder: restarted } = recorderFor(state, store);
      await restarted.observe();
      expect((await store.list({ limit: 50 })).events).toHaveLength(
        events.length,
      );
      expect((await store.recordedState()).members).toEqual(
        new Set(['cluster1', 'cluster2']),
      );
    },
  );

  it('judges nothing before the first read of the tailnet policy file, so its findings are the baseline', async () => {
    const store = await storeFor('SQLITE_3');
    const state = new FakeMeshState(threeClusters());
    const policy = new FakeTailnetPolicy();
    const audit = new MeshAuditor({ state, policy });
    audit.start();
    const recorder = new HistoryRecorder({
      audit,
      store,
      logger: mockServices.logger.mock(),
    });
    recorder.start();
    state.emit();
    await recorder.observe();
    expect((await store.list({ limit: 10 })).events).toEqual([]);

    policy.set(BROAD_POLICY);
    await recorder.observe();
    let kinds = (await store.list({ limit: 10 })).events.map(e => e.kind);
    expect(kinds).toEqual(['joined', 'joined']);

    policy.set({ grants: [] });
    await recorder.observe();
    policy.set(BROAD_POLICY);
    await recorder.observe();
    kinds = (await store.list({ limit: 10 })).events.map(e => e.kind);
    expect(kinds).toEqual([
      'finding-raised',
      'finding-cleared',
      'joined',
      'joined',
    ]);
    await recorder.stop();
  });

  it('stores each change once when two replicas record it, with or without a lease', async () => {
    const store = await storeFor('SQLITE_3');
    const clusters = threeClusters();
    const state = new FakeMeshState(clusters);
    // A replica with a `holder` holds a lease of 400 ms and follows every change, as deployed;
    // one without records only when asked.
    const replica = (holder?: string) => {
      const audit = new MeshAuditor({ state });
      audit.start();
      const recorder = new HistoryRecorder({
        audit,
        store,
        logger: mockServices.logger.mock(),
        ...(holder ? { lease: { holder, durationMs: 400 } } : {}),
      });
      if (holder) recorder.start();
      return { audit, recorder };
    };
    // Joins and leaves, oldest first (the findings a join brings are recorded alike).
    const kinds = async () =>
      (await store.list({ limit: 100 })).events
        .filter(e => e.kind === 'joined' || e.kind === 'left')
        .map(e => `${e.kind} ${e.cluster}`)
        .reverse();

    // Without a lease both record, at once: the locked comparison stores the joins once.
    const [a, b] = [replica(), replica()];
    await Promise.all([a.recorder.observe(), b.recorder.observe()]);
    expect(await kinds()).toEqual(['joined cluster1', 'joined cluster2']);
    clusters[2].snapshot = memberSnapshot('cluster3', 3, [
      'cluster1',
      'cluster2',
    ]);
    state.emit();
    await Promise.all([a.recorder.observe(), b.recorder.observe()]);
    expect((await kinds()).filter(k => k === 'joined cluster3')).toHaveLength(
      1,
    );
    for (const r of [a, b]) r.audit.stop();

    // With leases only the holder records, and when it dies another takes over once its lease
    // runs out.
    const until = async (what: string, done: (k: string[]) => boolean) => {
      const deadline = Date.now() + 5000;
      let k = await kinds();
      while (!done(k)) {
        if (Date.now() > deadline)
          throw new Error(`${what}; saw ${k.join(', ')}`);
        await new Promise(r => setTimeout(r, 50));
        k = await kinds();
      }
      return k;
    };
    const [c, d] = [replica('c'), replica('d')];
    const before = (await kinds()).length;
    clusters[2].snapshot = {
      cluster: 'cluster3',
      remoteSecretsFor: [],
      egressFor: [],
    };
    state.emit();
    await until('the leave recorded', k => k.length > before);
    await new Promise(r => setTimeout(r, 1200)); // past a lease: a retry records nothing more
    expect((await kinds()).slice(before)).toEqual(['left cluster3']);

    c.audit.stop(); // c dies: it hears of no change and renews nothing
    d.audit.stop(); // so does d, and
    const e = replica('e'); // a third replica starts
    clusters[2].snapshot = memberSnapshot('cluster3', 3, [
      'cluster1',
      'cluster2',
    ]);
    state.emit();
    const k = await until('the join recorded', x => x.length > before + 1);
    expect(k.slice(before)).toEqual(['left cluster3', 'joined cluster3']);
    await Promise.all([c, d, e].map(r => r.recorder.stop()));
    e.audit.stop();
  });

  it('keeps the state when old events are deleted, and reads it without replaying', async () => {
    const store = await storeFor('SQLITE_3');
    await store.append([
      {
        at: '2025-01-01T00:00:00.000Z',
        cluster: 'cluster1',
        kind: 'joined',
        message: 'cluster1 joined the mesh',
      },
      {
        at: '2025-01-02T00:00:00.000Z',
        cluster: 'cluster2',
        kind: 'joined',
        message: 'cluster2 joined the mesh',
      },
      {
        at: '2026-12-01T00:00:00.000Z',
        cluster: 'cluster2',
        kind: 'left',
        message: 'cluster2 left the mesh',
      },
    ]);
    expect(await store.deleteOlderThan('2026-01-01T00:00:00.000Z', 1)).toBe(2);
    expect((await store.list({ limit: 10 })).events.map(e => e.kind)).toEqual([
      'left',
    ]);
    const recorded = await store.recordedState();
    expect(recorded.members).toEqual(new Set(['cluster1']));
    expect(recorded.empty).toBe(false);
  });

  it.each(databases.eachSupportedId())(
    'pages newest first with a cursor, %p',
    async databaseId => {
      const store = await storeFor(databaseId);
      await store.append(
        Array.from({ length: 5 }, (_, i) => ({
          at: `2026-11-26T12:00:0${i}.000Z`,
          cluster: `cluster${i}`,
          kind: 'joined' as const,
          message: `cluster${i} joined the mesh`,
        })),
      );
      const first = await store.list({ limit: 2 });
      expect(first.events.map(e => e.cluster)).toEqual([
        'cluster4',
        'cluster3',
      ]);
      expect(first.events[0]).toEqual({
        id: expect.any(String),
        at: '2026-11-26T12:00:04.000Z',
        cluster: 'cluster4',
        kind: 'joined',
        message: 'cluster4 joined the mesh',
      });
      const second = await store.list({
        limit: 2,
        before: Number(first.nextCursor),
      });
      expect(second.events.map(e => e.cluster)).toEqual([
        'cluster2',
        'cluster1',
      ]);
      const last = await store.list({
        limit: 2,
        before: Number(second.nextCursor),
      });
      expect(last.events.map(e => e.cluster)).toEqual(['cluster0']);
      expect(last.nextCursor).toBeUndefined();
    },
  );
});
