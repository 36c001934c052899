/**
 * `npm run bench:production`: the production shape of issue 16 in one run and one table. The local
 * product's backend (guest sign-in, the catalog, the permission backend with the product's policy,
 * the mesh backend; the backend `npm start` runs) on one PostgreSQL, as 1, 2 and 3 replicas behind
 * a round-robin balancer, on its own 3-cluster test bed in a loopback-only namespace:
 * - each route a signed-in user's views ask, with the guest's own token, beside the same backend's
 *   floor (a permission-checked catalog read) and an unauthenticated route;
 * - the backends' CPU per request (every replica's process, from /proc), so per card view and per
 *   mesh page view;
 * - history events stored per change (cluster2's istiod scaled to 0 and back: one finding raised,
 *   then cleared) and how many of them were stored twice;
 * - how long an open card takes to show a pod going not ready in cluster2 with signals: a
 *   WebSocket to every replica, as the app's SignalClient opens it, then the card's own read;
 * - then, one backend at a time, memory per cluster (heap after a forced collection, through the
 *   inspector) and time to first full sync at 1, 3 and 100 configured clusters (the hundred are
 *   the three test bed clusters under many names, each its own cluster to the backend).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AppsV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import {
  ClustersResponse,
  HistoryResponse,
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
  MESH_SIGNAL_CHANNEL,
  MembershipHistoryEvent,
  ServiceStatusResponse,
  auditFindingId,
} from '@tailmesh/plugin-mesh-common';
import { parse, stringify } from 'yaml';
import { BackendProcess, startBackend } from '../product/backendProcess';
import {
  ProductEnvironment,
  startProductEnvironment,
} from '../product/productEnvironment';
import { eventually } from '../support/eventually';
import { allHistoryEvents } from '../support/history';
import { deploymentPods, setPodReady } from '../support/podReadiness';
import { startPostgres, stopPostgres } from '../support/postgres';
import { BackstageClient } from '../product/backstageClient';
import { stopTestbed } from '../testbed/src/testbed';
import {
  BackendClient,
  LatencySummary,
  LoadResult,
  summarize,
} from './loadGenerator';
import { HEALTH, ROUTES, parseUserLoadOptions } from './userRoutes';

const BACKEND_PORT = 7307;
const MEMORY_PORT = 7317;
const CHANGED = 'cluster2';
const SIGNAL_REPEATS = 3;
const MEMORY_SIZES = [1, 3, 100];
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

const say = (line: string) => process.stdout.write(`${line}\n`);

interface Replica {
  n: number;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** User plus system CPU of one process so far, in ms (`proc(5)`, fields 14 and 15). */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Linux reports these in USER_HZ, which is 100 on every architecture Node runs on.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
const cpuOf = (replicas: Replica[]) =>
  replicas.reduce((sum, r) => sum + cpuMs(r.pid), 0);

/** A 0600 config file in `dir`. */
function writeConfig(dir: string, name: string, config: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, stringify(config), { mode: 0o600 });
  return file;
}

function listenConfig(port: number) {
  return {
    app: { baseUrl: `http://localhost:${port}` },
    backend: {
      baseUrl: `http://localhost:${port}`,
      listen: { host: '127.0.0.1', port },
    },
  };
}

async function waitSynced(
  client: BackendClient,
  clusters: number,
  timeoutMs = 180_000,
): Promise<void> {
  let last = '';
  await eventually(
    `${clusters} clusters synced`,
    async () => {
      const body = await client.json<ClustersResponse>({
        method: 'GET',
        path: '/api/mesh/clusters',
      });
      const ok = body.clusters.filter(c => c.sync.state === 'ok').length;
      last = `${ok} of ${body.clusters.length} ok`;
      return body.clusters.length === clusters && ok === clusters
        ? true
        : undefined;
    },
    { timeoutMs, describeLast: () => ` (${last})` },
  );
}

/** Every stored history event, oldest first, as /history pages them. */
const allEvents = (client: BackendClient) =>
  allHistoryEvents(path =>
    client.json<HistoryResponse>({ method: 'GET', path }),
  );

const subject = (e: MembershipHistoryEvent) =>
  `${e.kind} ${e.findingId ?? e.cluster ?? ''}`;

/**
 * The events stored for the changes: how many, which (kind and subject), and how many repeat the
 * one before for their subject (a transition stored twice, as two recording replicas would).
 */
function countEvents(events: MembershipHistoryEvent[]) {
  const lastKind = new Map<string, string>();
  let doubled = 0;
  for (const e of events) {
    const key = e.findingId ?? e.cluster ?? '';
    if (lastKind.get(key) === e.kind) doubled += 1;
    lastKind.set(key, e.kind);
  }
  return { stored: events.length, doubled, events: events.map(subject) };
}

/**
 * cluster2's istiod scaled to 0, then back to 1: the audit raises `istiod-not-ready` and clears
 * it, two changes. Returns the events stored meanwhile, after a pause long enough for any other
 * replica's retry to store one again.
 */
async function historyPerChange(
  client: BackendClient,
  kc: KubeConfig,
): Promise<ReturnType<typeof countEvents>> {
  const apps = kc.makeApiClient(AppsV1Api);
  const finding = auditFindingId('istiod-not-ready', [CHANGED]);
  const before = new Set((await allEvents(client)).map(e => e.id));
  const fresh = async () =>
    (await allEvents(client)).filter(e => !before.has(e.id));
  const scale = (replicas: number) =>
    apps.patchNamespacedDeployment(
      {
        name: ISTIOD_DEPLOYMENT,
        namespace: ISTIO_NAMESPACE,
        body: { spec: { replicas } },
      },
      mergePatch,
    );
  const recorded = (kind: string) =>
    eventually(
      `${kind} ${finding} in the history`,
      async () =>
        (await fresh()).some(e => subject(e) === `${kind} ${finding}`)
          ? true
          : undefined,
      { timeoutMs: 90_000 },
    );
  await scale(0);
  await recorded('finding-raised');
  await scale(1);
  await recorded('finding-cleared');
  await sleep(10_000);
  return countEvents(await fresh());
}

/** The app's signals connection to one replica: the token as the WebSocket's protocol. */
async function openSignals(url: string, token: string) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/signals`, token);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`no signals connection to ${url}`));
  });
  const arrivals: number[] = [];
  ws.onmessage = e => {
    const { channel } = JSON.parse(String(e.data)) as { channel?: string };
    if (channel === MESH_SIGNAL_CHANNEL) arrivals.push(performance.now());
  };
  ws.send(
    JSON.stringify({ action: 'subscribe', channel: MESH_SIGNAL_CHANNEL }),
  );
  return { url, arrivals, close: () => ws.close(1000) };
}

/**
 * From the patch that marks one of cluster2's echo pods not ready to the card's read, on every
 * replica, showing it: the signal arrives, and the card (as EntityMeshCard does on a signal) reads
 * `/services/default/echo` again. Then the pod is made ready again, the same way.
 */
async function cardUpdateDelays(
  replicas: Replica[],
  token: string,
  kc: KubeConfig,
): Promise<number[]> {
  const connections = await Promise.all(
    replicas.map(r => openSignals(r.url, token)),
  );
  const readers = replicas.map(r => new BackendClient(r.url, token, 4));
  const delays: number[] = [];
  try {
    // The subscribe message has no answer: give the replicas a moment to take it.
    await sleep(1000);
    const notReadyIn = async (reader: BackendClient) => {
      const status = await reader.json<ServiceStatusResponse>({
        method: 'GET',
        path: '/api/mesh/services/default/echo',
      });
      return (
        status.clusters.find(c => c.cluster === CHANGED)?.endpoints.notReady ??
        0
      );
    };
    for (let i = 0; i < SIGNAL_REPEATS * 2; i++) {
      const ready = i % 2 === 1;
      const [pod] = await deploymentPods(kc, 'default', 'echo');
      const started = performance.now();
      const seen = connections.map(c => c.arrivals.length);
      await setPodReady(kc, pod, ready);
      const shown = await Promise.all(
        connections.map(async (c, k) => {
          // Every signal after the change makes the card read its route again, until it shows it.
          let handled = seen[k];
          for (;;) {
            if (performance.now() - started > 20_000)
              throw new Error(`${c.url} did not show the change within 20 s`);
            if (c.arrivals.length === handled) {
              await sleep(5);
              continue;
            }
            handled = c.arrivals.length;
            if ((await notReadyIn(readers[k])) > 0 !== ready)
              return performance.now() - started;
          }
        }),
      );
      if (!ready) delays.push(...shown);
      await sleep(1000);
    }
  } finally {
    for (const c of connections) c.close();
    for (const r of readers) r.close();
  }
  return delays;
}

/**
 * The backend's heap after two forced collections, and its RSS, through the inspector the
 * backend opened (`--inspect=127.0.0.1:0`; its address is the first line it logs).
 */
async function memoryOf(
  logFile: string,
): Promise<{ heapMb: number; rssMb: number }> {
  const address = /Debugger listening on (ws:\/\/\S+)/.exec(
    fs.readFileSync(logFile, 'utf8'),
  )?.[1];
  if (!address) throw new Error(`no inspector address in ${logFile}`);
  const ws = new WebSocket(address);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () =>
      reject(new Error(`cannot open the inspector at ${address}`));
  });
  const waiting = new Map<number, (result: unknown) => void>();
  ws.onmessage = e => {
    const msg = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result);
  };
  let id = 0;
  const call = (method: string, params: object = {}) =>
    new Promise<unknown>(resolve => {
      id += 1;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    const result = (await call('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    })) as { result: { value: string } };
    const usage = JSON.parse(result.result.value) as NodeJS.MemoryUsage;
    return { heapMb: usage.heapUsed / 2 ** 20, rssMb: usage.rss / 2 ** 20 };
  } finally {
    ws.close();
  }
}

interface MeshClusterEntry {
  name: string;
  [key: string]: unknown;
}

/** A fresh backend with `count` configured clusters: time to its first full sync, and memory. */
async function measureMemory(opts: {
  count: number;
  sources: MeshClusterEntry[];
  configPaths: string[];
  databaseConfig: (prefix: string) => { database: object };
  dir: string;
}) {
  const clusters =
    opts.count <= opts.sources.length
      ? opts.sources.slice(0, opts.count)
      : Array.from({ length: opts.count }, (_, i) => ({
          ...opts.sources[i % opts.sources.length],
          name: `fleet-${String(i).padStart(3, '0')}`,
        }));
  // Arrays in later config files replace earlier ones: this list is the backend's whole list.
  const own = writeConfig(opts.dir, `memory-${opts.count}.yaml`, {
    app: listenConfig(MEMORY_PORT).app,
    backend: {
      ...listenConfig(MEMORY_PORT).backend,
      ...opts.databaseConfig(`memory_${opts.count}_`),
    },
    mesh: { clusters },
  });
  const nodeOptions = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS =
    `${nodeOptions ?? ''} --inspect=127.0.0.1:0`.trim();
  const started = performance.now();
  let backend: BackendProcess;
  try {
    backend = await startBackend({
      configPaths: [...opts.configPaths, own],
      port: MEMORY_PORT,
      logFile: path.join(opts.dir, `memory-${opts.count}.log`),
    });
  } finally {
    if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = nodeOptions;
  }
  const client = new BackendClient(
    backend.url,
    (await BackstageClient.signInAsGuest(backend.url)).token,
    4,
  );
  try {
    await waitSynced(client, opts.count);
    const syncMs = performance.now() - started;
    // The watches' first lists are garbage now; let the backend settle before measuring.
    await sleep(3000);
    return { count: opts.count, syncMs, ...(await memoryOf(backend.logFile)) };
  } finally {
    client.close();
    await backend.stop();
  }
}

interface Pass {
  replicas: number;
  results: Record<string, LoadResult & { cpuMsPerRequest: number }>;
  history: ReturnType<typeof countEvents>;
  cardDelaysMs: number[];
}

async function main() {
  const { requests, concurrency } = parseUserLoadOptions();

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-production-'));
  const stateDir = path.join(work, 'testbed');
  const logDir = path.join(work, 'logs');
  fs.mkdirSync(logDir, { mode: 0o700 });
  say('starting PostgreSQL');
  const postgres = await startPostgres();
  const databaseConfig = (prefix: string) => ({
    database: {
      client: 'pg',
      connection: postgres.connectionString,
      prefix,
    },
  });
  let env: ProductEnvironment | undefined;
  const replicas: Replica[] = [];
  let cleaning: Promise<void> | undefined;
  // Failure, success or Ctrl-C: the backends, the test bed and PostgreSQL stop, and the test bed's
  // kubeconfigs and the config files with its clusters' tokens go.
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const r of replicas.reverse()) await r.stop().catch(() => undefined);
      await stopTestbed(stateDir).catch(() => undefined);
      await stopPostgres(postgres.dir).catch(() => undefined);
      fs.rmSync(work, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      say(`${signal}: stopping the backends, the test bed and PostgreSQL`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  const passes: Pass[] = [];
  const memory: Array<Awaited<ReturnType<typeof measureMemory>>> = [];
  try {
    say('starting the product (replica 1) on PostgreSQL');
    env = await startProductEnvironment({
      stateDir,
      clusters: 3,
      basePort: 33000,
      backendPort: BACKEND_PORT,
      extraConfigPaths: [
        writeConfig(work, 'database.yaml', {
          backend: databaseConfig('product_'),
        }),
      ],
      logDir,
      onProgress: line => say(`  ${line}`),
    });
    const productEnv = env;
    replicas.push({
      n: 1,
      url: env.apiUrl,
      pid: env.backend.pid,
      stop: () => productEnv.stop({ keepTestbed: true }),
    });
    const kc = new KubeConfig();
    kc.loadFromFile(
      env.state.clusters.find(c => c.name === CHANGED)!.kubeconfigPath,
    );
    const token = (await BackstageClient.signInAsGuest(env.apiUrl)).token;

    for (let count = 1; count <= 3; count++) {
      while (replicas.length < count) {
        const n = replicas.length + 1;
        const port = BACKEND_PORT + n - 1;
        say(`starting replica ${n}`);
        const backend = await startBackend({
          configPaths: [
            ...env.configPaths,
            writeConfig(work, `replica${n}.yaml`, listenConfig(port)),
          ],
          port,
          logFile: path.join(logDir, `replica${n}.log`),
        });
        replicas.push({
          n,
          url: backend.url,
          pid: backend.pid,
          stop: () => backend.stop(),
        });
      }
      const serving = replicas.slice(0, count);
      // One guest token, signed by replica 1, for every replica: they share the signing keys
      // through the database, as replicas behind one balancer must.
      for (const r of serving) {
        const c = new BackendClient(r.url, token, 4);
        await waitSynced(c, 3);
        c.close();
      }
      say(`${count} replica(s): load`);
      const user = new BackendClient(
        serving.map(r => r.url),
        token,
        concurrency,
      );
      const anonymous = new BackendClient(
        serving.map(r => r.url),
        '',
        concurrency,
      );
      const results: Pass['results'] = {};
      try {
        // Warm-up: JIT, connection pools, the catalog's and the permission backend's caches.
        for (const r of ROUTES) await user.load(r.request, 300, concurrency);
        for (const r of [...ROUTES, { id: 'health', request: HEALTH }]) {
          const client = r.id === 'health' ? anonymous : user;
          const cpuBefore = cpuOf(serving);
          const result = await client.load(r.request, requests, concurrency);
          const cpuMsPerRequest = (cpuOf(serving) - cpuBefore) / requests;
          if (result.failed)
            throw new Error(
              `${r.id}: ${result.failed} requests failed: ${JSON.stringify(result.statuses)}`,
            );
          results[r.id] = { ...result, cpuMsPerRequest };
          say(
            `  ${r.id}: ${result.throughput.toFixed(0)}/s, ${cpuMsPerRequest.toFixed(2)} ms CPU per request`,
          );
        }
      } finally {
        user.close();
        anonymous.close();
      }
      say(`${count} replica(s): history events per change`);
      const reader = new BackendClient(serving[count - 1].url, token, 4);
      let history: Pass['history'];
      try {
        history = await historyPerChange(reader, kc);
      } finally {
        reader.close();
      }
      // istiod of cluster2 is back; let every replica see it ready before the next step.
      say(`${count} replica(s): card update delay with signals`);
      const cardDelaysMs = await cardUpdateDelays(serving, token, kc);
      passes.push({ replicas: count, results, history, cardDelaysMs });
    }

    for (const r of [...replicas].reverse()) await r.stop();
    replicas.length = 0;
    const sources = (
      parse(fs.readFileSync(env.configPaths[1], 'utf8')) as {
        mesh: { clusters: MeshClusterEntry[] };
      }
    ).mesh.clusters;
    for (const count of MEMORY_SIZES) {
      say(`memory and first sync with ${count} configured cluster(s)`);
      memory.push(
        await measureMemory({
          count,
          sources,
          configPaths: env.configPaths,
          databaseConfig,
          dir: logDir,
        }),
      );
    }
  } finally {
    await cleanup();
  }

  say('');
  say(report(passes, memory, requests, concurrency));
  const file = path.join(
    __dirname,
    'results',
    `production-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    JSON.stringify(
      { requests, concurrency, loadavg: os.loadavg(), passes, memory },
      null,
      2,
    ),
  );
  say(`results: ${path.relative(process.cwd(), file)}`);
}

const ms = (n: number) => `${n < 10 ? n.toFixed(1) : n.toFixed(0)} ms`;

/** The one table: a column per replica count, and the memory figures of one backend. */
function report(
  passes: Pass[],
  memory: Array<Awaited<ReturnType<typeof measureMemory>>>,
  requests: number,
  concurrency: number,
): string {
  const rows: string[][] = [];
  const row = (label: string, cell: (p: Pass) => string) =>
    rows.push([label, ...passes.map(cell)]);
  const load = (r: LoadResult & { latencyMs: LatencySummary }) =>
    `${r.throughput.toFixed(0)}/s, p50 ${ms(r.latencyMs.p50)}, p99 ${ms(r.latencyMs.p99)}`;
  for (const r of [
    ...ROUTES,
    { id: 'health', label: 'mesh GET /health (no token)' },
  ]) {
    row(r.label, p => {
      const x = p.results[r.id].throughput / p.results.catalogFloor.throughput;
      return r.id === 'catalogFloor'
        ? load(p.results[r.id])
        : `${load(p.results[r.id])} (${x.toFixed(1)}x floor)`;
    });
  }
  row('backend CPU per card view (/services)', p =>
    ms(p.results.meshService.cpuMsPerRequest),
  );
  row('backend CPU per mesh page view (/clusters + /membership)', p =>
    ms(
      p.results.meshClusters.cpuMsPerRequest +
        p.results.meshMembership.cpuMsPerRequest,
    ),
  );
  row('backend CPU per catalog floor read', p =>
    ms(p.results.catalogFloor.cpuMsPerRequest),
  );
  row(
    'history: events stored per transition (cluster2 istiod to 0 and back)',
    p =>
      `${(p.history.stored / Math.max(1, p.history.stored - p.history.doubled)).toFixed(2)} (${p.history.stored} stored, ${p.history.doubled} doubled: ${p.history.events.join(', ')})`,
  );
  row('card update delay with signals, p50 / max', p => {
    const d = summarize([...p.cardDelaysMs].sort((a, b) => a - b));
    return `${ms(d.p50)} / ${ms(d.max)} (${p.cardDelaysMs.length} reads)`;
  });
  const one = memory.find(m => m.count === 1);
  const at = (count: number) => {
    const m = memory.find(x => x.count === count);
    if (!m || !one) return 'not measured';
    return `${((m.heapMb - one.heapMb) / (count - 1)).toFixed(2)} MB heap per cluster (heap ${m.heapMb.toFixed(0)} MB, RSS ${m.rssMb.toFixed(0)} MB); process start to first full sync ${(m.syncMs / 1000).toFixed(1)} s`;
  };
  rows.push(['memory at 3 clusters (one backend)', at(3)]);
  rows.push(['memory at 100 clusters (one backend)', at(100)]);

  const header = [
    '',
    ...passes.map(p => `${p.replicas} replica${p.replicas > 1 ? 's' : ''}`),
  ];
  const lines = [
    `${requests} requests per route, ${concurrency} concurrent, guest user token, round-robin over the replicas; PostgreSQL; ${os.cpus().length} cores shared by the load, the replicas, the apiservers and PostgreSQL`,
    `memory: heap after two forced collections, per cluster beyond the first (one backend, ${one ? `${one.heapMb.toFixed(0)} MB heap with 1 cluster` : 'no 1-cluster figure'})`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map(r => `| ${r.join(' | ')} |`),
  ];
  return lines.join('\n');
}

main().catch(e => {
  process.stderr.write(
    `bench:production failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
  );
  process.exit(1);
});
