/**
 * `npm start`: the local Tailmesh product. With the test bed (the default): starts it with 3
 * clusters (or reuses a running one), deploys the demo services, starts Backstage and joins
 * cluster1 and cluster2 through its scaffolder; cluster3 is left for the user to join. With an
 * app-config.local.yaml that names clusters: Backstage against those, no test bed.
 * Ctrl-C stops what this started.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  defaultBasePort,
  defaultStateDir,
  repoRoot,
} from '../testbed/src/layout';
import { ensureAppBuild } from './appBuild';
import { BackendProcess, startBackend } from './backendProcess';
import {
  ProductEnvironment,
  startProductEnvironment,
} from './productEnvironment';
import {
  baseAppConfig,
  defaultBackendPort,
  localAppConfig,
  localConfigNamesClusters,
} from './productConfig';

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const say = (line: string) =>
  process.stdout.write(`[${elapsed().padStart(7)}] ${line}\n`);
const logDir = path.join(repoRoot, '.testbed', 'product');

function clusterCount(): number {
  const raw = process.env.TAILMESH_CLUSTERS ?? '3';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 2 || n > 9) {
    throw new Error(
      `TAILMESH_CLUSTERS must be a whole number from 2 to 9 (the demo joins cluster1 and cluster2), got "${raw}"`,
    );
  }
  return n;
}

async function startOnTestbed(
  signal: AbortSignal,
): Promise<ProductEnvironment> {
  const clusters = clusterCount();
  const local = fs.existsSync(localAppConfig) ? [localAppConfig] : [];
  const env = await startProductEnvironment({
    stateDir: defaultStateDir,
    clusters,
    basePort: defaultBasePort,
    backendPort: defaultBackendPort,
    extraConfigPaths: local,
    logDir,
    // Once interrupted, the parts' shutdown noise would only bury the outcome.
    onProgress: line => {
      if (!signal.aborted) say(line);
    },
    signal,
  });
  const t = (name: string) =>
    env.timings[name] === undefined
      ? 'up to date'
      : `${(env.timings[name] / 1000).toFixed(1)} s`;
  const joins = Object.keys(env.timings)
    .filter(k => k.startsWith('join:'))
    .map(k => `${k.slice(5)} ${t(k)}`);
  const free = env.state.clusters.slice(2).map(c => c.name);
  process.stdout.write(
    `\nTailmesh is ready in ${elapsed()}: ${env.url}\n` +
      `  enter as mesh admin (or as guest, who reads only); the mesh: ${env.url}/mesh; join ${free.join(', ') || 'another cluster'} from ${env.url}/create\n` +
      `  test bed ${env.startedTestbed ? `started in ${t('testbed')}` : 'reused'}, app build ${t('appBuild')}, backend ${t('backend')}, ` +
      `joins ${joins.length ? joins.join(', ') : 'none needed'}\n` +
      `  kubeconfigs: ${path.relative(repoRoot, env.state.stateDir)}/clusters/<name>/kubeconfig; backend log: ${path.relative(repoRoot, env.backend.logFile)}\n` +
      `  Ctrl-C stops the backend${env.startedTestbed ? (process.env.TAILMESH_KEEP_TESTBED ? ' (the test bed stays up: TAILMESH_KEEP_TESTBED)' : ' and the test bed') : ' (the reused test bed stays up)'}.\n\n`,
  );
  return env;
}

async function startOnLocalConfig(
  signal: AbortSignal,
): Promise<BackendProcess> {
  say(`${path.basename(localAppConfig)} names clusters: no test bed`);
  const build = await ensureAppBuild({
    logFile: path.join(logDir, 'app-build.log'),
    onProgress: line => say(`[app] ${line}`),
  });
  say(
    build.built
      ? `[app] built in ${(build.ms / 1000).toFixed(1)} s`
      : '[app] build is up to date',
  );
  say('[backend] starting');
  const backend = await startBackend({
    configPaths: [baseAppConfig, localAppConfig],
    port: defaultBackendPort,
    logFile: path.join(logDir, 'backend.log'),
    signal,
  });
  process.stdout.write(
    `\nTailmesh is ready in ${elapsed()}: http://localhost:${defaultBackendPort}\n` +
      `  backend log: ${path.relative(repoRoot, backend.logFile)}; Ctrl-C stops it.\n\n`,
  );
  return backend;
}

// Ctrl-C while starting: abort, and let the start-up undo what it had started.
const starting = new AbortController();

async function main() {
  fs.mkdirSync(logDir, { recursive: true, mode: 0o700 });
  const interrupt = () => {
    if (starting.signal.aborted) return;
    say('interrupted: stopping what was started');
    starting.abort(new Error('interrupted'));
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);

  let stop: () => Promise<void>;
  let backend: BackendProcess;
  if (localConfigNamesClusters()) {
    backend = await startOnLocalConfig(starting.signal);
    stop = () => backend.stop();
  } else {
    const env = await startOnTestbed(starting.signal);
    backend = env.backend;
    stop = () =>
      env.stop({ keepTestbed: Boolean(process.env.TAILMESH_KEEP_TESTBED) });
  }
  process.removeListener('SIGINT', interrupt);
  process.removeListener('SIGTERM', interrupt);

  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping');
    await stop();
    say('stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  await backend.exited;
  if (!stopping) {
    say(`the backend exited; see ${backend.logFile}`);
    await shutdown(1);
  }
}

main().catch(e => {
  if (starting.signal.aborted) {
    process.stderr.write('stopped\n');
    process.exit(130);
  }
  process.stderr.write(
    `\nnpm start failed: ${e instanceof Error ? e.message : String(e)}\n`,
  );
  process.exit(1);
});
