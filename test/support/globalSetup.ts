import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestbed } from '../testbed/src/testbed';
import { startTestPostgres, stopTestPostgres } from './postgres';

/** Brings the test bed up once per Jest run; tests find it through TAILMESH_TESTBED_STATE_DIR. */
export default async function globalSetup() {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-testbed-'));
  // Each integration file owns some clusters so files never see each other's objects: which
  // and what for in test/support/clusterOwners.ts.
  const clusters = Number(process.env.TAILMESH_TESTBED_CLUSTERS ?? 25);
  const started = Date.now();
  // PostgreSQL starts beside the clusters, for the tests that run database code on it too.
  const [testbedStart, postgres] = await Promise.all([
    // 25 apiservers starting at once on 2 cores take 1.5 to 3 minutes (173 s seen on a loaded
    // machine), more than startTestbed's default deadline of 3 minutes allows for.
    startTestbed({ stateDir, clusters, basePort: 32000, timeoutMs: 420_000 }).then(
      s => ({ ok: true as const, state: s }),
      (error: unknown) => ({ ok: false as const, error }),
    ),
    startTestPostgres(),
  ]);
  if (!testbedStart.ok) {
    // Jest runs no teardown after a failed setup.
    await stopTestPostgres();
    throw testbedStart.error;
  }
  const { state } = testbedStart;
  process.env.TAILMESH_TESTBED_STATE_DIR = stateDir;
  process.stdout.write(
    `\ntest bed: ${state.clusters.length} clusters ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${stateDir})\n`,
  );
  process.stdout.write(`test bed: ${postgres}\n`);
}
