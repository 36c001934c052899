import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ProductEnvironment,
  startProductEnvironment,
} from '../../product/productEnvironment';
import {
  E2E_API_URL_ENV,
  E2E_BACKEND_LOG_ENV,
  E2E_STATE_DIR_ENV,
  E2E_URL_ENV,
} from './environment';

/**
 * Starts the product exactly as `npm start` does, but on its own test bed in a temp dir and on
 * ports of its own, so it never meets a product a developer has running.
 */
export default async function globalSetup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-e2e-'));
  const started = Date.now();
  const say = (line: string) =>
    process.stdout.write(
      `[e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`,
    );
  process.stdout.write('\n');
  let env: ProductEnvironment;
  try {
    env = await startProductEnvironment({
      stateDir: path.join(dir, 'testbed'),
      clusters: 3,
      // Below the ephemeral port range (32768+), where a client socket could take a listener's port.
      basePort: 30000,
      backendPort: 7107,
      logDir: path.join(dir, 'logs'),
      onProgress: say,
    });
  } catch (e) {
    if (!process.env.TAILMESH_KEEP_TESTBED)
      fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  // globalTeardown runs in this same process and stops it.
  Object.assign(globalThis, { tailmeshE2e: { env, dir } });
  process.env[E2E_URL_ENV] = env.url;
  process.env[E2E_API_URL_ENV] = env.apiUrl;
  process.env[E2E_STATE_DIR_ENV] = env.state.stateDir;
  process.env[E2E_BACKEND_LOG_ENV] = env.backend.logFile;
  say(
    `product ready: ${env.url} (${Object.entries(env.timings)
      .map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`)
      .join(', ')})`,
  );
}
