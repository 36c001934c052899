import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { binDir, chartsDir } from './layout';
import { TestbedState } from './state';

interface Kubeconfig {
  clusters: Array<{
    cluster: { server: string; 'certificate-authority-data': string };
  }>;
  users: Array<{ user: { token: string } }>;
}

/** The `mesh` app-config a platform team would write for the test bed's clusters. */
export type TestbedMeshConfig = {
  mesh: {
    allowInsecureHttp: boolean;
    clusters: Array<{
      name: string;
      url: string;
      authProvider: 'serviceAccount';
      serviceAccountToken: string;
      caData: string;
    }>;
    tailscale: {
      apiUrl: string;
      tailnet: string;
      dnsName: string;
      oauth: { clientId: string; clientSecret: string };
      operatorOauth: { clientId: string; clientSecret: string };
    };
    charts: {
      istioBase: { chart: string };
      istiod: { chart: string };
      gateway: { chart: string };
      tailscaleOperator: { chart: string };
      tailscaleOperatorCrds: string;
    };
    helm: { binary: string };
    ca: { store: { type: 'file'; directory: string } };
  };
};

/**
 * The app-config for a running test bed: every cluster (or those named) with its token and CA,
 * the charts from the Go module cache, the Tailscale stand-in with its OAuth client. Shared by the
 * integration tests and the local product, so both talk to the test bed the same way.
 */
export function testbedMeshConfig(
  state: TestbedState,
  clusterNames?: string[],
): TestbedMeshConfig {
  if (!state.tailscaleApi) {
    throw new Error(
      `the test bed in ${state.stateDir} has no Tailscale API stand-in yet (phase ${state.phase})`,
    );
  }
  const clusters = state.clusters
    .filter(c => !clusterNames || clusterNames.includes(c.name))
    .map(c => {
      const kc = parse(fs.readFileSync(c.kubeconfigPath, 'utf8')) as Kubeconfig;
      return {
        name: c.name,
        url: kc.clusters[0].cluster.server,
        authProvider: 'serviceAccount' as const,
        serviceAccountToken: kc.users[0].user.token,
        caData: kc.clusters[0].cluster['certificate-authority-data'],
      };
    });
  const { clientId, clientSecret, operator } = JSON.parse(
    fs.readFileSync(state.tailscaleApi.credentialsPath, 'utf8'),
  ) as {
    clientId: string;
    clientSecret: string;
    operator: { clientId: string; clientSecret: string };
  };
  return {
    mesh: {
      clusters,
      // The Tailscale API stand-in listens on http://127.0.0.1 inside the test bed's own network
      // namespace; a real deployment never sets this.
      allowInsecureHttp: true,
      tailscale: {
        apiUrl: state.tailscaleApi.url,
        tailnet: '-',
        dnsName: state.tailnet,
        oauth: { clientId, clientSecret },
        operatorOauth: operator,
      },
      charts: {
        istioBase: { chart: path.join(chartsDir, 'istio-base') },
        istiod: { chart: path.join(chartsDir, 'istiod') },
        gateway: { chart: path.join(chartsDir, 'gateway') },
        tailscaleOperator: {
          chart: path.join(chartsDir, 'tailscale-operator'),
        },
        tailscaleOperatorCrds: path.join(chartsDir, 'tailscale-crds'),
      },
      helm: { binary: path.join(binDir, 'helm') },
      ca: {
        store: {
          type: 'file',
          directory: path.join(state.stateDir, 'mesh-root-ca'),
        },
      },
    },
  };
}

/** Every secret value in a test bed config, for scans of logs, outputs and pages. */
export function testbedSecretValues(config: TestbedMeshConfig): string[] {
  return [
    ...config.mesh.clusters.map(c => c.serviceAccountToken),
    config.mesh.tailscale.oauth.clientSecret,
    config.mesh.tailscale.operatorOauth.clientSecret,
  ];
}
