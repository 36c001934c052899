/**
 * The measuring half of `npm run bench`, started by run.ts inside the test bed's own network
 * namespace. There the apiservers listen directly on the ports of their kubeconfigs; from outside
 * every connection goes through the test bed's port bridge (a Node TCP forwarder in its
 * supervisor), which is not part of what is measured and breaks first under the Kubernetes
 * plugin's thousands of parallel connections. Reads its job from TAILMESH_BENCH_JOB (no secrets).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expectNoSecrets } from '../support/actions';
import { kubeConfig } from '../support/testbed';
import { readLogTail } from '../testbed/src/process';
import { readState } from '../testbed/src/state';
import { ApiserverClient } from './apiserverClient';
import { readApiservers } from './apiserverMetrics';
import { BenchCluster, benchBackendConfig } from './backendConfig';
import { BackendSession } from './backendSession';
import { BENCH_USERNAME, grantBenchReader } from './benchIdentity';
import { deployEcho, echoEntity } from './echoService';
import { joinMesh } from './joinMesh';
import { ScaleResult, measureScale } from './measureScale';
import { BENCH_JOB_ENV, BenchJob } from './benchJob';
import { progress } from './progress';
import { formatGrowth, formatTable, growthOf, writeResults } from './report';
import {
  SyntheticService,
  createSyntheticLoad,
  planSyntheticLoad,
  syntheticEntity,
} from './syntheticLoad';

/** Pods of echo per cluster: it runs in the first two clusters only. */
const ECHO_REPLICAS = [3, 2];

async function freeLoopbackPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise(resolve => server.close(resolve));
  return port;
}

function packageVersion(name: string): string {
  let dir = path.dirname(require.resolve(name));
  while (!fs.existsSync(path.join(dir, 'package.json')))
    dir = path.dirname(dir);
  return (
    JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
}

/** What this process started, so a failure or Ctrl-C stops exactly that. */
const started = {
  session: undefined as BackendSession | undefined,
  apiservers: [] as ApiserverClient[],
  /** Every token handled here, to check outputs and redact the log shown on failure. */
  secrets: [] as string[],
};

async function bench(job: BenchJob) {
  const { options } = job;
  const state = readState(job.stateDir);
  if (state?.phase !== 'ready')
    throw new Error(`no ready test bed in ${job.stateDir}`);
  process.env.TAILMESH_TESTBED_STATE_DIR = job.stateDir;
  for (const c of state.clusters) {
    started.apiservers.push(
      await ApiserverClient.fromKubeConfig(
        c.name,
        kubeConfig(c.name),
        options.createConcurrency,
      ),
    );
  }
  const admin = new Map(
    state.clusters.map((c, i) => [c.index, started.apiservers[i]]),
  );

  if (options.joinMesh) {
    progress(
      "joining the clusters into one mesh with the Join template's actions",
    );
    await joinMesh(state, progress);
  }

  progress(
    `granting ${BENCH_USERNAME} read access; both backends use its tokens`,
  );
  const clusters: BenchCluster[] = [];
  for (const c of state.clusters) {
    const current = kubeConfig(c.name).getCurrentCluster()!;
    clusters.push({
      name: c.name,
      url: current.server,
      caData: current.caData!,
      token: await grantBenchReader(admin.get(c.index)!),
    });
  }
  const accessToken = crypto.randomBytes(32).toString('base64url');
  started.secrets.push(
    accessToken,
    ...clusters.map(c => c.token),
    ...state.clusters.map(
      c => kubeConfig(c.name).getCurrentUser()?.token ?? '',
    ),
  );

  const echoReplicas = new Map<string, number>();
  for (const [i, replicas] of ECHO_REPLICAS.entries()) {
    const c = state.clusters[i];
    await deployEcho(admin.get(c.index)!, replicas);
    echoReplicas.set(c.name, replicas);
    progress(`echo runs in ${c.name} with ${replicas} ready pods`);
  }

  const idle = (await readApiservers(started.apiservers)).benchRequests;
  if (idle !== 0) {
    throw new Error(
      `${BENCH_USERNAME} made ${idle} requests before any backend ran: something else uses it, so its count would not be the backends'`,
    );
  }

  const port = await freeLoopbackPort();
  const config = benchBackendConfig({
    clusters,
    port,
    accessToken,
    tailnet: state.tailnet,
  });
  const logPath = path.join(job.workDir, 'backend.log');
  const plan = planSyntheticLoad(options.scales, options.clusters);
  const results: ScaleResult[] = [];
  const existing: SyntheticService[] = [];
  for (const [i, scale] of options.scales.entries()) {
    const step = `scale ${i + 1}/${options.scales.length}`;
    progress(
      `${step}: loading the clusters up to ${scale.services} Services / ${scale.endpoints} endpoints`,
    );
    await createSyntheticLoad(plan[i], admin, options.createConcurrency, line =>
      progress(`  ${line}`),
    );
    existing.push(...plan[i]);
    progress(`${step}: a fresh backend process`);
    results.push(
      await measureScale({
        scale,
        clusters: options.clusters,
        services: existing,
        echoReplicas,
        config,
        // Services are answered by name only for a caller who sees an entity standing for them.
        entities: [echoEntity, ...existing.map(syntheticEntity)],
        baseUrl: `http://127.0.0.1:${port}`,
        accessToken,
        apiservers: started.apiservers,
        admin,
        createConcurrency: options.createConcurrency,
        requests: options.requests,
        concurrency: options.concurrency,
        logPath,
        progress: line => progress(`  ${line}`),
        onSession: s => {
          started.session = s;
        },
      }),
    );
  }

  const table = formatTable(results, options.requests, options.concurrency);
  const growth = growthOf(results);
  const loadAtEnd = os.loadavg();
  const file = writeResults(
    {
      startedAt: job.startedAt,
      finishedAt: new Date().toISOString(),
      options,
      environment: {
        node: process.version,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        totalMemoryBytes: os.totalmem(),
        // The machine is shared: a high load average means noisy latencies.
        loadAverage: { atStart: job.loadAtStart, atEnd: loadAtEnd },
      },
      setup: {
        clusters: state.clusters.map(c => c.name),
        meshJoined: options.joinMesh,
        echo: Object.fromEntries(echoReplicas),
        apiRequestsCountedAs: BENCH_USERNAME,
        backend:
          "one Backstage backend (createBackend) in its own process, NODE_ENV=production, inside the test bed's network namespace; the load generator and /metrics scrapes run in the bench process",
        versions: Object.fromEntries(
          [
            '@backstage/backend-defaults',
            '@backstage/plugin-kubernetes-backend',
            '@tailmesh/plugin-mesh-backend',
          ].map(name => [name, packageVersion(name)]),
        ),
      },
      scales: results,
      ...(growth ? { growth } : {}),
    },
    new Date(job.startedAt),
  );
  expectNoSecrets(
    [fs.readFileSync(logPath, 'utf8'), fs.readFileSync(file, 'utf8'), table],
    started.secrets,
  );

  process.stdout.write(`\n${table}\n`);
  if (growth) process.stdout.write(`${formatGrowth(growth)}\n`);
  const load = (l: number[]) => l.map(x => x.toFixed(1)).join(' ');
  process.stdout.write(
    `load average (1/5/15 min) at start ${load(job.loadAtStart)}, at end ${load(loadAtEnd)} on ${os.cpus().length} CPUs\n` +
      `results: ${path.relative(process.cwd(), file)}\n`,
  );
}

/** The end of the backend's log, tokens replaced, before run.ts removes the scratch directory. */
function showBackendLogTail(workDir: string) {
  const log = path.join(workDir, 'backend.log');
  if (!fs.existsSync(log)) return;
  let text = readLogTail(log, 30);
  for (const secret of started.secrets.filter(Boolean))
    text = text.split(secret).join('<redacted>');
  process.stderr.write(`last lines of the backend log:\n${text}\n`);
}

function release() {
  started.session?.kill();
  for (const c of started.apiservers) c.close();
}

async function main() {
  const job = JSON.parse(
    process.env[BENCH_JOB_ENV] ?? 'null',
  ) as BenchJob | null;
  if (!job) {
    process.stderr.write(
      `bench: ${BENCH_JOB_ENV} is not set; start the bench with "npm run bench"\n`,
    );
    process.exit(2);
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      release();
      process.exit(130);
    });
  }
  try {
    await bench(job);
  } catch (e) {
    process.stderr.write(
      `bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    showBackendLogTail(job.workDir);
    process.exitCode = 1;
  } finally {
    if (started.session) await started.session.stop().catch(() => undefined);
    release();
  }
  // Clients of the join's actions may keep sockets open; this process has nothing left to do.
  process.exit();
}

void main();
