import {
  AppsV1Api,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import {
  ClustersResponse,
  HistoryResponse,
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
  MembershipHistoryEvent,
  auditFindingId,
} from '@tailmesh/plugin-mesh-common';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { BackendProcess, startBackend } from '../../product/backendProcess';
import { BackstageClient } from '../../product/backstageClient';
import { baseAppConfig } from '../../product/productConfig';
import { eventually } from '../../support/eventually';
import { allHistoryEvents } from '../../support/history';
import { testbedAppConfig } from '../../support/meshConfig';
import { joinValues } from '../../support/productBackend';
import { objectMembership } from '../../support/objectMembership';
import { kubeConfig, releaseClusters } from '../../support/testbed';

// Production shape: three real backend processes (the local product's backend, as `npm start`
// runs it) on one PostgreSQL database, each with its own watch caches.
// - History: cluster14 joins the mesh, a finding is raised and cleared, the replica that records
//   the history is killed in the middle of that burst, and cluster14 leaves: every event is
//   stored exactly once, in order, and nothing is lost. cluster14 belongs to the backend's files
//   (see support/clusterOwners.ts); like history.test.ts, this file removes what it adds to it.
// - A join survives the death of its backend: the replica running the Join template for
//   cluster25 is killed mid-join; with the scaffolder's task recovery on, the task resumes from
//   its last completed step, `mesh:verify` passes, and nothing was made twice. cluster25 belongs
//   to this file.

const CLUSTER = 'cluster14';
const JOINER = 'cluster25';
const MESH_ID = 'tailmesh-replicas';
const NETWORK = 'network14';
const REPLICAS = 3;
const BASE_PORT = 7341;
const WAIT_MS = 90_000;

const apps = () => kubeConfig(CLUSTER).makeApiClient(AppsV1Api);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

interface Replica {
  n: number;
  process: BackendProcess;
  client: BackstageClient;
}

let dir: string;
let configFile: string;
const replicas: Replica[] = [];
/** Replicas this file killed. */
const dead = new Set<Replica>();

async function startReplica(n: number): Promise<Replica> {
  const port = BASE_PORT + n;
  const own = path.join(dir, `replica${n}.yaml`);
  fs.writeFileSync(
    own,
    stringify({
      app: { baseUrl: `http://localhost:${port}` },
      backend: {
        baseUrl: `http://localhost:${port}`,
        listen: { host: '127.0.0.1', port },
      },
    }),
    { mode: 0o600 },
  );
  const backend = await startBackend({
    configPaths: [baseAppConfig, configFile, own],
    port,
    logFile: path.join(dir, `replica${n}.log`),
  });
  return {
    n,
    process: backend,
    // The product's policy lets only a mesh admin run the Join template.
    client: await BackstageClient.signInAsMeshAdmin(backend.url),
  };
}

/** Every stored event, oldest first, as one replica's /history pages them. */
const allEvents = (r: Replica) =>
  allHistoryEvents(path => r.client.get<HistoryResponse>(path));

const summary = (events: MembershipHistoryEvent[]) =>
  events.map(e => `${e.kind} ${e.findingId ?? e.cluster}`);

async function eventsBecome(
  r: Replica,
  what: string,
  done: (s: string[]) => boolean,
): Promise<string[]> {
  let last: string[] = [];
  await eventually(
    what,
    async () => {
      last = summary(await allEvents(r));
      return done(last) ? true : undefined;
    },
    { timeoutMs: WAIT_MS, describeLast: () => `; stored: ${last.join(', ')}` },
  );
  return last;
}

/**
 * The live replicas whose log says they record the history: a replica logs when it takes the
 * lease and when it finds it taken from it (HistoryRecorder).
 */
function recorders(): Replica[] {
  return replicas.filter(r => {
    if (dead.has(r)) return false;
    const log = fs.readFileSync(r.process.logFile, 'utf8');
    const took = log.lastIndexOf('This replica records the mesh history');
    return (
      took >= 0 &&
      took > log.lastIndexOf('Another replica records the mesh history now')
    );
  });
}

/**
 * A helm release a killed backend left `pending-*` is repaired by the next run of its step once
 * it is this old (default 600 s; here the test would wait that long).
 */
function withHelmRepairAfter<T extends { mesh: { helm: object } }>(
  config: T,
  seconds: number,
): T {
  return {
    ...config,
    mesh: {
      ...config.mesh,
      helm: { ...config.mesh.helm, pendingRepairAfterSeconds: seconds },
    },
  };
}

const membership = objectMembership(CLUSTER, {
  network: NETWORK,
  meshId: MESH_ID,
});

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-replicas-'));
  const connection =
    process.env.BACKSTAGE_TEST_DATABASE_POSTGRES15_CONNECTION_STRING;
  if (!connection)
    throw new Error('the integration setup started no PostgreSQL');
  configFile = path.join(dir, 'app-config.replicas.yaml');
  // One PostgreSQL for all replicas; a prefix of this run's own, so each run starts empty.
  fs.writeFileSync(
    configFile,
    stringify({
      backend: {
        database: {
          client: 'pg',
          connection,
          prefix: `replicas_${randomBytes(4).toString('hex')}_`,
        },
      },
      // The scaffolder recovers a task whose heartbeat stopped this long ago (default 30 s).
      scaffolder: {
        taskRecovery: { enabled: true, staleTimeout: { seconds: 10 } },
      },
      ...withHelmRepairAfter(testbedAppConfig([CLUSTER, JOINER]), 5),
    }),
    { mode: 0o600 },
  );
  // One first, so the plugins' migrations run once; the others then start together.
  replicas.push(await startReplica(1));
  replicas.push(
    ...(await Promise.all(
      Array.from({ length: REPLICAS - 1 }, (_, i) => startReplica(i + 2)),
    )),
  );
}, 300_000);

afterAll(async () => {
  await Promise.all(
    replicas.filter(r => !dead.has(r)).map(r => r.process.stop()),
  );
  await membership.restore();
  await releaseClusters([JOINER]);
  fs.rmSync(dir, { recursive: true, force: true });
}, 120_000);

it(`${REPLICAS} replicas on one PostgreSQL store each change once, in order, and lose nothing when the recording replica is killed`, async () => {
  for (const r of replicas) {
    const c = await eventually(
      `replica ${r.n} synced cluster14`,
      async () => {
        const { clusters } =
          await r.client.get<ClustersResponse>('/api/mesh/clusters');
        return clusters[0]?.sync.state === 'ok' ? clusters[0] : undefined;
      },
      { timeoutMs: WAIT_MS },
    );
    expect(c.member).toBe(false);
  }
  expect(await allEvents(replicas[0])).toEqual([]);

  // cluster14 joins: namespace labels and an istiod Deployment, scaled to zero (not ready).
  await membership.join();
  const notReady = auditFindingId('istiod-not-ready', [CLUSTER]);
  await eventsBecome(
    replicas[0],
    'joined, and istiod-not-ready raised',
    s =>
      s.includes(`joined ${CLUSTER}`) &&
      s.includes(`finding-raised ${notReady}`),
  );

  // A burst: istiod becomes ready (the finding clears) and cluster14 leaves, while the replica
  // that records is killed in the middle of it.
  // The first recording went to one replica; the others found the lease taken.
  expect(recorders()).toHaveLength(1);
  const [leader] = recorders();
  await apps().patchNamespacedDeployment(
    {
      name: ISTIOD_DEPLOYMENT,
      namespace: ISTIO_NAMESPACE,
      body: { spec: { replicas: 1 } },
    },
    mergePatch,
  );
  process.kill(-leader.process.pid, 'SIGKILL');
  dead.add(leader);
  await leader.process.exited;
  await membership.setMeshLabels(false);
  const survivors = replicas.filter(r => r !== leader);
  const stored = await eventsBecome(
    survivors[0],
    'the clearing and the leave recorded',
    s =>
      s.includes(`finding-cleared ${notReady}`) &&
      s.includes(`left ${CLUSTER}`),
  );
  // Give every survivor's retry a lease to double anything, then look again.
  await new Promise(r => setTimeout(r, 20_000));
  const final = summary(await allEvents(survivors[1]));
  expect(final).toEqual(summary(await allEvents(survivors[0])));
  expect(final.slice(0, stored.length)).toEqual(stored);
  expect(new Set(final).size).toBe(final.length);
  // In order: the join first, the raise before its clearing, the leave last of the membership.
  const at = (s: string) => final.indexOf(s);
  expect(at(`joined ${CLUSTER}`)).toBe(0);
  expect(at(`finding-raised ${notReady}`)).toBeLessThan(
    at(`finding-cleared ${notReady}`),
  );
  expect(at(`joined ${CLUSTER}`)).toBeLessThan(at(`left ${CLUSTER}`));
  // Another replica took over the recording.
  expect(recorders().length).toBeGreaterThan(0);
});

interface TaskEvent {
  type: string;
  body: { message?: string; stepId?: string; status?: string };
}

it('a join survives the death of the backend running it: the task resumes from its last completed step, and the mesh converges', async () => {
  const alive = replicas.filter(r => !dead.has(r));
  const { id } = await alive[0].client.request<{ id: string }>(
    'POST',
    '/api/scaffolder/v2/tasks',
    {
      templateRef: 'template:default/join-cluster-to-mesh',
      values: joinValues(JOINER, 'tailmesh-recovery'),
    },
  );
  const events = (r: Replica) =>
    r.client.get<TaskEvent[]>(`/api/scaffolder/v2/tasks/${id}/events`);
  const completedSteps = (all: TaskEvent[]) =>
    new Set(
      all
        .filter(e => e.body.stepId && e.body.status === 'completed')
        .map(e => e.body.stepId!),
    );
  // Killed once the CA step is done: the Istio install (helm) is then starting or under way.
  await eventually(
    'the join got past its CA step',
    async () =>
      completedSteps(await events(alive[0])).has('ca') ? true : undefined,
    { timeoutMs: 180_000 },
  );
  // Any replica may have claimed the task: all are killed (with the helm runs of their process
  // groups), so the one running it surely died mid-join; then two start again.
  for (const r of alive) {
    process.kill(-r.process.pid, 'SIGKILL');
    dead.add(r);
  }
  await Promise.all(alive.map(r => r.process.exited));
  const restarted = await Promise.all([startReplica(1), startReplica(2)]);
  replicas.push(...restarted);

  const task = await eventually(
    'the recovered join finished',
    async () => {
      const t = await restarted[0].client.get<{ status: string }>(
        `/api/scaffolder/v2/tasks/${id}`,
      );
      return ['completed', 'failed', 'cancelled'].includes(t.status)
        ? t
        : undefined;
    },
    { timeoutMs: 300_000 },
  );
  const all = await events(restarted[0]);
  const log = all.filter(e => e.type === 'log').map(e => e.body.message ?? '');
  expect({
    status: task.status,
    tail: task.status === 'completed' ? [] : log.slice(-15),
  }).toEqual({
    status: 'completed',
    tail: [],
  });
  // It resumed: the steps done before the kill were skipped, not run again.
  const resumed = log.find(l =>
    l.startsWith('Task recovered - resuming from last known good state'),
  );
  expect(resumed).toBeDefined();
  for (const step of ['preconditions', 'operator', 'grants', 'dns', 'ca']) {
    expect(log).toContain(
      `Skipping step ${step} because it was already completed in a previous run`,
    );
  }
  // Nothing made twice: one intermediate for cluster25, and mesh:verify passed.
  expect(
    log.filter(l => l.includes(`${JOINER}: intermediate CA issued`)),
  ).toHaveLength(1);
  expect(completedSteps(all).has('verify')).toBe(true);
});
