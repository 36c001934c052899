import fs from 'node:fs';
import { stopTestbed } from '../testbed/src/testbed';
import { stopTestPostgres } from './postgres';

export default async function globalTeardown() {
  await stopTestPostgres();
  const stateDir = process.env.TAILMESH_TESTBED_STATE_DIR;
  if (!stateDir) return;
  await stopTestbed(stateDir);
  // Kubeconfigs, tokens and CA material of the run go with it.
  if (!process.env.TAILMESH_KEEP_TESTBED)
    fs.rmSync(stateDir, { recursive: true, force: true });
}
