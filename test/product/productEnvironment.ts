import fs from 'node:fs';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { TestbedState } from '../testbed/src/state';
import {
  runningTestbed,
  startTestbed,
  stopTestbed,
} from '../testbed/src/testbed';
import { ensureAppBuild } from './appBuild';
import { BackendProcess, startBackend } from './backendProcess';
import { BackstageClient } from './backstageClient';
import { joinDemoMembers } from './demoMesh';
import { deployDemoServices, injectDemoSidecars } from './demoWorkloads';
import { baseAppConfig, writeTestbedAppConfig } from './productConfig';

export interface ProductEnvironmentOptions {
  /** The test bed's state dir; a test bed already running there is reused when it is big enough. */
  stateDir: string;
  clusters: number;
  basePort: number;
  backendPort: number;
  /** Config layered over app-config.yaml and the test bed's (e.g. app-config.local.yaml). */
  extraConfigPaths?: string[];
  /** Where the app build's and the backend's logs go (not the state dir: a new test bed wipes it). */
  logDir: string;
  onProgress: (line: string) => void;
  /** Aborting stops the start-up where it is and undoes it (Ctrl-C during `npm start`). */
  signal?: AbortSignal;
}

export interface ProductEnvironment {
  /** The URL for a browser (the configured base URL). */
  url: string;
  /** The same backend by loopback address, for API calls from this process. */
  apiUrl: string;
  state: TestbedState;
  /** False when a running test bed was reused; then stop() leaves it running. */
  startedTestbed: boolean;
  configPaths: string[];
  backend: BackendProcess;
  client: BackstageClient;
  /** Milliseconds per start-up step; a step that had nothing to do is absent. */
  timings: Record<string, number>;
  stop(opts?: { keepTestbed?: boolean }): Promise<void>;
}

async function timed<T>(
  timings: Record<string, number>,
  name: string,
  fn: () => Promise<T>,
): Promise<T> {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    timings[name] = Date.now() - started;
  }
}

/**
 * The local product on the test bed: the test bed (started, or reused), the app built, the demo
 * services deployed, the backend started with the test bed's generated config, and the demo
 * members joined through the backend's own scaffolder. `npm start` and the browser tests both
 * use this, so what the tests exercise is what users run.
 */
export async function startProductEnvironment(
  opts: ProductEnvironmentOptions,
): Promise<ProductEnvironment> {
  const { onProgress } = opts;
  const timings: Record<string, number> = {};
  fs.mkdirSync(opts.logDir, { recursive: true, mode: 0o700 });

  const running = runningTestbed(opts.stateDir);
  if (running && running.phase !== 'ready') {
    throw new Error(
      `the test bed in ${opts.stateDir} is ${running.phase}; stop it with: npm run testbed -- down`,
    );
  }
  if (running && running.clusters.length < opts.clusters) {
    throw new Error(
      `a test bed with ${running.clusters.length} clusters runs in ${opts.stateDir}, ${opts.clusters} are needed; stop it with: npm run testbed -- down`,
    );
  }
  const startedTestbed = !running;
  let backend: BackendProcess | undefined;
  // A test bed that is still starting cannot be asked to stop early; stopping its supervisor makes
  // startTestbed fail at once, and the catch below undoes the rest.
  const abortTestbed = () => {
    if (startedTestbed) void stopTestbed(opts.stateDir);
  };
  opts.signal?.addEventListener('abort', abortTestbed, { once: true });
  try {
    // The bundle builds while the control planes start: both mostly wait on different things.
    // Both are awaited before anything is stopped, so a failure never races a half-started part.
    const [testbed, build] = await Promise.allSettled([
      running
        ? Promise.resolve(running)
        : timed(timings, 'testbed', () =>
            startTestbed({
              stateDir: opts.stateDir,
              clusters: opts.clusters,
              basePort: opts.basePort,
              onProgress: line => onProgress(`[testbed] ${line}`),
            }),
          ),
      timed(timings, 'appBuild', () =>
        ensureAppBuild({
          logFile: path.join(opts.logDir, 'app-build.log'),
          onProgress: line => onProgress(`[app] ${line}`),
        }),
      ),
    ]);
    if (testbed.status === 'rejected') throw testbed.reason;
    if (build.status === 'rejected') throw build.reason;
    opts.signal?.throwIfAborted();
    const state = testbed.value;
    if (build.value.built) {
      onProgress(`[app] built in ${(build.value.ms / 1000).toFixed(1)} s`);
    } else {
      delete timings.appBuild;
      onProgress('[app] build is up to date');
    }
    if (running)
      onProgress(`[testbed] reusing the test bed in ${opts.stateDir}`);

    const kubeConfigOf = (name: string) => {
      const cluster = state.clusters.find(c => c.name === name);
      if (!cluster) throw new Error(`the test bed has no ${name}`);
      const kc = new KubeConfig();
      kc.loadFromFile(cluster.kubeconfigPath);
      return kc;
    };
    await timed(timings, 'demoServices', () =>
      deployDemoServices(kubeConfigOf, line => onProgress(`[demo] ${line}`)),
    );

    opts.signal?.throwIfAborted();
    const configPaths = [
      baseAppConfig,
      writeTestbedAppConfig(state, { backendPort: opts.backendPort }),
      ...(opts.extraConfigPaths ?? []),
    ];
    onProgress('[backend] starting');
    backend = await timed(timings, 'backend', () =>
      startBackend({
        configPaths,
        port: opts.backendPort,
        logFile: path.join(opts.logDir, 'backend.log'),
        signal: opts.signal,
      }),
    );
    onProgress(
      `[backend] ready in ${(timings.backend / 1000).toFixed(1)} s (log: ${backend.logFile})`,
    );

    // The demo joins run as the mesh admin: the product's policy refuses them to a guest.
    const client = await BackstageClient.signInAsMeshAdmin(backend.url);
    const joins = await timed(timings, 'demoJoins', () =>
      joinDemoMembers(client, state, line => onProgress(`[demo] ${line}`), {
        signal: opts.signal,
      }),
    );
    for (const j of joins) {
      if (j.ms !== undefined) timings[`join:${j.cluster}`] = j.ms;
    }
    await timed(timings, 'demoSidecars', () =>
      injectDemoSidecars(
        kubeConfigOf,
        joins.map(j => j.cluster),
        line => onProgress(`[demo] ${line}`),
      ),
    );

    opts.signal?.removeEventListener('abort', abortTestbed);
    const started = backend;
    return {
      url: `http://localhost:${opts.backendPort}`,
      apiUrl: backend.url,
      state,
      startedTestbed,
      configPaths,
      backend,
      client,
      timings,
      async stop({ keepTestbed = false } = {}) {
        await started.stop();
        if (startedTestbed && !keepTestbed) await stopTestbed(opts.stateDir);
      },
    };
  } catch (e) {
    opts.signal?.removeEventListener('abort', abortTestbed);
    await backend?.stop();
    if (startedTestbed) await stopTestbed(opts.stateDir);
    throw e;
  }
}
