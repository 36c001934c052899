import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestbed } from '../testbed/src/testbed';

/** Brings the test bed up once per Jest run; tests find it through TAILMESH_TESTBED_STATE_DIR. */
export default async function globalSetup() {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-testbed-'));
  // Each integration file owns some clusters so files never see each other's objects:
  // cluster1-3 the full mesh join, cluster4 Tailscale and Istio install actions, cluster5-6 the
  // Istio wiring actions, cluster7 the test bed's own smoke test, cluster8 the CA action,
  // cluster9 the removal actions (with cluster7 as its peer, touching only cluster9's objects),
  // cluster10-12 the templates run by the scaffolder engine, cluster13-14 the backend's watch
  // cache and routes, cluster15-16 the audit findings induced one by one.
  const clusters = Number(process.env.TAILMESH_TESTBED_CLUSTERS ?? 16);
  const started = Date.now();
  const state = await startTestbed({ stateDir, clusters, basePort: 32000 });
  process.env.TAILMESH_TESTBED_STATE_DIR = stateDir;
  process.stdout.write(
    `\ntest bed: ${state.clusters.length} clusters ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${stateDir})\n`,
  );
}
