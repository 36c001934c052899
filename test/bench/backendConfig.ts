import { JsonObject } from '@backstage/types';
/** One cluster as both plugins are given it: the same URL, CA and service-account token. */
export interface BenchCluster {
  name: string;
  url: string;
  caData: string;
  token: string;
}

export interface BenchBackendConfigOptions {
  clusters: BenchCluster[];
  port: number;
  /** The load generator's static external-access token. */
  accessToken: string;
  /** The tailnet's MagicDNS domain, as a mesh deployment configures it (adds the CoreDNS watch). */
  tailnet: string;
}

/** The subject the load generator's requests are made as. */
export const BENCH_SUBJECT = 'tailmesh-bench';

/**
 * The app-config of the backend under test. The clusters are configured once, for the Kubernetes
 * plugin, and the mesh backend takes them from there (`mesh.useKubernetesPluginClusters`), so
 * both reach the same apiservers with the same credentials.
 *
 * The Kubernetes plugin keeps its defaults (multi-tenant: every entity is looked for in every
 * cluster; the default object types) except `skipMetricsLookup`: the test bed has no
 * metrics-server, and the mesh backend answers without pod metrics too.
 */
export function benchBackendConfig(
  opts: BenchBackendConfigOptions,
): JsonObject {
  const baseUrl = `http://127.0.0.1:${opts.port}`;
  return {
    backend: {
      baseUrl,
      listen: { host: '127.0.0.1', port: opts.port },
      database: { client: 'better-sqlite3', connection: ':memory:' },
      auth: {
        externalAccess: [
          {
            type: 'static',
            options: { token: opts.accessToken, subject: BENCH_SUBJECT },
          },
        ],
      },
    },
    // Allow-all: the bench measures the plugins, not a permission backend.
    permission: { enabled: false },
    kubernetes: {
      serviceLocatorMethod: { type: 'multiTenant' },
      clusterLocatorMethods: [
        {
          type: 'config',
          clusters: opts.clusters.map(c => ({
            name: c.name,
            url: c.url,
            authProvider: 'serviceAccount',
            serviceAccountToken: c.token,
            caData: c.caData,
            skipMetricsLookup: true,
          })),
        },
      ],
    },
    mesh: {
      useKubernetesPluginClusters: true,
      tailscale: { dnsName: opts.tailnet },
    },
  };
}
