import fs from 'node:fs';
import { Config } from '@backstage/config';
import { InputError } from '@backstage/errors';
import { insecureUrlProblem } from './insecureUrl';
import {
  validateClusterName,
  validateNetwork,
  validateRegion,
  validateZone,
} from '@tailmesh/plugin-mesh-common';

/**
 * How to reach one cluster; `token` and `caData` are secrets and stay in memory.
 *
 * @public
 */
export interface MeshClusterConnection {
  name: string;
  url: string;
  token?: string;
  /** PEM text of the CA (decoded from caData, or read from caFile). */
  caPem?: string;
  tlsServerName?: string;
  skipTLSVerify: boolean;
  network?: string;
  region?: string;
  zone?: string;
}

function readOne(
  c: Config,
  where: string,
  root: Config,
): MeshClusterConnection {
  const name = c.getString('name');
  const problems: string[] = [];

  const authProvider = c.getOptionalString('authProvider') ?? 'serviceAccount';
  if (authProvider !== 'serviceAccount') {
    problems.push(
      `authProvider: only "serviceAccount" is supported, got "${authProvider}"`,
    );
  }

  let caPem: string | undefined;
  const caData = c.getOptionalString('caData');
  const caFile = c.getOptionalString('caFile');
  if (caData && caFile) problems.push('caData and caFile: give one, not both');
  if (caData) {
    caPem = Buffer.from(caData, 'base64').toString('utf8');
    if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
      problems.push('caData: is not base64 of a PEM certificate');
    }
  } else if (caFile) {
    try {
      caPem = fs.readFileSync(caFile, 'utf8');
    } catch (e) {
      problems.push(
        `caFile: cannot read ${caFile} (${(e as NodeJS.ErrnoException).code})`,
      );
    }
  }

  const connection: MeshClusterConnection = {
    name,
    url: c.getString('url').replace(/\/+$/, ''),
    token: c.getOptionalString('serviceAccountToken'),
    caPem,
    tlsServerName: c.getOptionalString('tlsServerName'),
    skipTLSVerify: c.getOptionalBoolean('skipTLSVerify') ?? false,
    network: c.getOptionalString('network'),
    region: c.getOptionalString('region'),
    zone: c.getOptionalString('zone'),
  };
  problems.unshift(...connectionProblems(connection, root));
  if (problems.length) {
    throw new InputError(
      `Invalid cluster "${name}" in ${where}: ${problems.join('; ')}`,
    );
  }
  return connection;
}

/**
 * What is wrong with one cluster's connection, wherever it came from (configuration or a
 * cluster supplier): its name is also the Istio cluster name, its URL must be `https:` unless
 * `mesh.allowInsecureHttp`, and network, region and zone become Kubernetes label values.
 */
export function connectionProblems(
  c: MeshClusterConnection,
  root: Config,
): string[] {
  const problems: string[] = [];
  const nameProblem = validateClusterName(c.name);
  if (nameProblem) problems.push(`name: ${nameProblem}`);
  const urlProblem = insecureUrlProblem(c.url, root);
  if (urlProblem) problems.push(`url: ${urlProblem}`);
  for (const [key, value, validate] of [
    ['network', c.network, validateNetwork],
    ['region', c.region, validateRegion],
    ['zone', c.zone, validateZone],
  ] as const) {
    const problem = value === undefined ? undefined : validate(value);
    if (problem) problems.push(`${key}: ${problem}`);
  }
  return problems;
}

/**
 * Reads `mesh.clusters`, and, when `mesh.useKubernetesPluginClusters` is set, the clusters of the
 * Kubernetes plugin's `config` locators. Throws InputError naming every invalid entry.
 *
 * @public
 */
export function readClusterConfig(config: Config): MeshClusterConnection[] {
  const clusters = new Map<string, MeshClusterConnection>();
  const problems: string[] = [];
  const add = (c: Config, where: string, override: boolean) => {
    try {
      const cluster = readOne(c, where, config);
      if (clusters.has(cluster.name) && !override) return;
      if (clusters.has(cluster.name) && where === 'mesh.clusters') {
        problems.push(
          `cluster "${cluster.name}" appears twice in mesh.clusters`,
        );
      }
      clusters.set(cluster.name, cluster);
    } catch (e) {
      problems.push((e as Error).message);
    }
  };

  for (const c of config.getOptionalConfigArray('mesh.clusters') ?? [])
    add(c, 'mesh.clusters', true);
  if (config.getOptionalBoolean('mesh.useKubernetesPluginClusters')) {
    for (const locator of config.getOptionalConfigArray(
      'kubernetes.clusterLocatorMethods',
    ) ?? []) {
      if (locator.getString('type') !== 'config') continue;
      for (const c of locator.getOptionalConfigArray('clusters') ?? []) {
        add(c, 'kubernetes.clusterLocatorMethods', false);
      }
    }
  }
  if (problems.length) throw new InputError(problems.join('\n'));
  return [...clusters.values()];
}
