/**
 * `npm run bench`: the mesh backend beside @backstage/plugin-kubernetes-backend, on a fresh test
 * bed loaded with synthetic Services and endpoints (README, "Benchmark").
 *
 * This half owns the test bed: it starts one in a temporary directory, runs the measuring half
 * (benchInTestbed.ts) inside the test bed's network namespace, and always stops the test bed and
 * removes the directory, after a failure or Ctrl-C too.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestbed, stopTestbed } from '../testbed/src/testbed';
import { BENCH_JOB_ENV, BenchJob } from './benchJob';
import { UsageError, parseBenchOptions, usage } from './options';
import { progress } from './progress';

/** The bench must not be able to reach anything but loopback (see scripts/test.sh). */
function assertLoopbackOnly() {
  const outside = Object.entries(os.networkInterfaces()).flatMap(
    ([name, addrs]) =>
      (addrs ?? []).filter(a => !a.internal).map(a => `${name} ${a.address}`),
  );
  if (outside.length) {
    throw new UsageError(
      `refusing to run outside a loopback-only network namespace (found ${outside.join(', ')}); start it with "npm run bench"`,
    );
  }
}

/** Runs benchInTestbed.ts in the network namespace of the test bed's supervisor. */
function runInTestbed(supervisorPid: number, job: BenchJob) {
  const child = spawn(
    'nsenter',
    [
      `--net=/proc/${supervisorPid}/ns/net`,
      '--',
      process.execPath,
      '--import',
      require.resolve('tsx'),
      path.join(__dirname, 'benchInTestbed.ts'),
    ],
    {
      stdio: 'inherit',
      env: { ...process.env, [BENCH_JOB_ENV]: JSON.stringify(job) },
    },
  );
  const exited = new Promise<number>(resolve => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 130 : 1)));
    child.once('error', e => {
      progress(`cannot enter the test bed's network namespace: ${e.message}`);
      resolve(1);
    });
  });
  return { child, exited };
}

async function main() {
  let options;
  try {
    options = parseBenchOptions(process.argv.slice(2));
    if (options) assertLoopbackOnly();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`bench: ${e.message}\n\n${usage}`);
    process.exit(2);
  }
  if (!options) {
    process.stdout.write(usage);
    return;
  }

  const startedAt = new Date().toISOString();
  const loadAtStart = os.loadavg();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-bench-'));
  const stateDir = path.join(workDir, 'testbed');
  let inner: ReturnType<typeof runInTestbed> | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      if (inner) {
        // Ctrl-C reached it too (same process group); give it time to stop its backend.
        const timer = setTimeout(() => inner?.child.kill('SIGKILL'), 15_000);
        await inner.exited;
        clearTimeout(timer);
      }
      const killed = await stopTestbed(stateDir).catch(e => {
        progress(`stopping the test bed failed: ${(e as Error).message}`);
        return [];
      });
      if (killed.length)
        progress(`had to kill test bed pids ${killed.join(', ')}`);
      fs.rmSync(workDir, { recursive: true, force: true });
      progress('test bed stopped, temporary files removed');
    })());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      progress(`${signal}: stopping the backend and the test bed`);
      inner?.child.kill(signal);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    progress(
      `scales: ${options.scales.map(s => `${s.services} Services / ${s.endpoints} endpoints`).join(', then ')}; ` +
        `${options.clusters} clusters; ${options.requests} requests per route at ${options.concurrency} concurrent`,
    );
    progress(`starting a ${options.clusters}-cluster test bed in ${stateDir}`);
    const state = await startTestbed({
      stateDir,
      clusters: options.clusters,
      onProgress: line => progress(`  ${line}`),
    });
    inner = runInTestbed(state.supervisorPid, {
      options,
      stateDir,
      workDir,
      startedAt,
      loadAtStart,
    });
    process.exitCode = await inner.exited;
  } catch (e) {
    process.stderr.write(
      `bench failed: ${e instanceof Error ? e.message : String(e)}\n`,
    );
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

void main();
