import { ConfigReader } from '@backstage/config';
import { parse } from 'yaml';
import { ClusterAccess } from './ClusterAccess';

const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('ClusterAccess', () => {
  const access = ClusterAccess.fromConfig(
    new ConfigReader({
      mesh: {
        clusters: [
          {
            name: 'east',
            url: 'https://east:6443',
            serviceAccountToken: 'tok',
            caData: Buffer.from(pem).toString('base64'),
            tlsServerName: 'kube',
          },
          { name: 'lab', url: 'https://lab', skipTLSVerify: true },
        ],
      },
    }),
  );

  it('builds a kubeconfig with the server, CA, server name and token', () => {
    const kc = parse(access.kubeconfigYaml('east'));
    expect(kc.clusters[0].cluster).toEqual({
      server: 'https://east:6443',
      'certificate-authority-data': Buffer.from(pem).toString('base64'),
      'tls-server-name': 'kube',
    });
    expect(kc.users[0].user).toEqual({ token: 'tok' });
    expect(access.kubeConfig('east').getCurrentCluster()?.server).toBe(
      'https://east:6443',
    );
    expect(access.kubeConfig('lab').getCurrentCluster()?.skipTLSVerify).toBe(
      true,
    );
  });

  it('says which clusters exist when asked for an unknown one', () => {
    expect(() => access.get('west')).toThrow(
      'Unknown cluster "west": it is not in mesh.clusters (configured: east, lab)',
    );
    expect(access.names()).toEqual(['east', 'lab']);
  });
});

describe('ClusterAccess request timeout', () => {
  it('reads mesh.clusterRequestTimeoutSeconds, 10 s by default, and refuses nonsense', () => {
    expect(
      ClusterAccess.fromConfig(new ConfigReader({})).requestTimeoutMs,
    ).toBe(10_000);
    expect(
      ClusterAccess.fromConfig(
        new ConfigReader({ mesh: { clusterRequestTimeoutSeconds: 2.5 } }),
      ).requestTimeoutMs,
    ).toBe(2_500);
    expect(() =>
      ClusterAccess.fromConfig(
        new ConfigReader({ mesh: { clusterRequestTimeoutSeconds: -1 } }),
      ),
    ).toThrow(
      'mesh.clusterRequestTimeoutSeconds must be a positive number of seconds, got -1',
    );
  });
});
