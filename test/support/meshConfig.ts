import fs from 'node:fs';
import path from 'node:path';
import { ConfigReader } from '@backstage/config';
import { parse } from 'yaml';
import { binDir, chartsDir } from '../testbed/src/layout';
import { tailscaleCredentials, testbed } from './testbed';

interface Kubeconfig {
  clusters: Array<{
    cluster: { server: string; 'certificate-authority-data': string };
  }>;
  users: Array<{ user: { token: string } }>;
}

/**
 * The app-config a platform team would write for the test bed: every cluster with its token and
 * CA, the charts from the Go module cache, the Tailscale stand-in with its OAuth client.
 */
export function testbedAppConfig(clusterNames?: string[]) {
  const state = testbed();
  const clusters = state.clusters
    .filter(c => !clusterNames || clusterNames.includes(c.name))
    .map(c => {
      const kc = parse(fs.readFileSync(c.kubeconfigPath, 'utf8')) as Kubeconfig;
      return {
        name: c.name,
        url: kc.clusters[0].cluster.server,
        authProvider: 'serviceAccount',
        serviceAccountToken: kc.users[0].user.token,
        caData: kc.clusters[0].cluster['certificate-authority-data'],
      };
    });
  const { clientId, clientSecret } = tailscaleCredentials();
  return {
    mesh: {
      clusters,
      tailscale: {
        apiUrl: state.tailscaleApi!.url,
        tailnet: '-',
        dnsName: state.tailnet,
        oauth: { clientId, clientSecret },
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

export const testbedConfig = (clusterNames?: string[]) =>
  new ConfigReader(testbedAppConfig(clusterNames));

/** Every secret value of the test bed config, for scans of logs and outputs. */
export function testbedSecrets(): string[] {
  const config = testbedAppConfig();
  return [
    ...config.mesh.clusters.map(c => c.serviceAccountToken),
    config.mesh.tailscale.oauth.clientSecret,
  ];
}
