import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestbed } from '../testbed/src/testbed';
import { startTestPostgres, stopTestPostgres } from './postgres';

/** Brings the test bed up once per Jest run; tests find it through TAILMESH_TESTBED_STATE_DIR. */
export default async function globalSetup() {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-testbed-'));
  // Each integration file owns some clusters so files never see each other's objects:
  // cluster1-3 the full mesh join, cluster4 Tailscale and Istio install actions, cluster5-6 the
  // Istio wiring actions, cluster7 the test bed's own smoke test, cluster8 the CA action,
  // cluster9 the removal actions (with cluster7 as its peer, touching only cluster9's objects),
  // cluster10-12 the templates run by the scaffolder engine, cluster13-14 the backend's watch
  // cache, routes, history and MCP tools (cluster14 joining and leaving), cluster15-16 the audit findings
  // induced one by one, cluster17-19 the mesh judged by its real consumers (istiod, the enforcing
  // tailnet), cluster20 the chart-driven actions with Istio's release charts, cluster21 a cluster
  // that already runs things Tailmesh did not make (hostile-input and adoption tests), cluster22
  // the root CA Secret store of the CA action's test (a cluster outside the mesh, never istiod),
  // cluster23-24 the Join template on a cluster that already runs Istio, a remote secret and
  // CoreDNS of its own (cluster24 the member it joins), cluster25 a join whose backend is killed
  // mid-way (backend/replicas.test.ts).
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
