import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { testbedMeshConfig } from '../testbed/src/appConfig';
import { repoRoot } from '../testbed/src/layout';
import { TestbedState } from '../testbed/src/state';

export const baseAppConfig = path.join(repoRoot, 'app-config.yaml');
export const localAppConfig = path.join(repoRoot, 'app-config.local.yaml');
export const defaultBackendPort = 7007;

/** Where the generated config of a test bed lives: with the test bed's own state, wiped with it. */
export const testbedAppConfigPath = (stateDir: string) =>
  path.join(stateDir, 'app-config.testbed.yaml');

/**
 * Whether app-config.local.yaml points the product at clusters of its own (then the test bed is
 * not needed). Any other local config (a port, a database) is layered on top of the test bed's.
 */
export function localConfigNamesClusters(file = localAppConfig): boolean {
  if (!fs.existsSync(file)) return false;
  let doc: { mesh?: Record<string, unknown> } | null;
  try {
    doc = parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file} is not valid YAML: ${(e as Error).message}`);
  }
  const mesh = doc?.mesh;
  return Boolean(mesh?.clusters || mesh?.useKubernetesPluginClusters);
}

/**
 * Writes the app-config for a running test bed (0600: it holds the clusters' tokens and the
 * OAuth client secret): its clusters and stand-ins, a SQLite database that lives and dies with
 * the test bed, and the backend's port.
 */
export function writeTestbedAppConfig(
  state: TestbedState,
  opts: { backendPort?: number } = {},
): string {
  const port = opts.backendPort ?? defaultBackendPort;
  const baseUrl = `http://localhost:${port}`;
  const database = {
    client: 'better-sqlite3',
    connection: { directory: path.join(state.stateDir, 'backstage-db') },
  };
  const config = {
    app: { baseUrl },
    backend: { baseUrl, listen: { host: '127.0.0.1', port }, database },
    ...testbedMeshConfig(state),
  };
  const file = testbedAppConfigPath(state.stateDir);
  fs.mkdirSync(database.connection.directory, {
    recursive: true,
    mode: 0o700,
  });
  fs.writeFileSync(`${file}.tmp`, stringify(config), { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
  return file;
}
