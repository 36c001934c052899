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

describe('ClusterAccess.update', () => {
  const east = { name: 'east', url: 'https://east', skipTLSVerify: false };
  const lab = { name: 'lab', url: 'https://lab', skipTLSVerify: false };

  it('says which clusters came, went and now connect differently, and serves the new list', () => {
    const access = new ClusterAccess([east, lab]);
    const heard: unknown[] = [];
    access.onChange(change => heard.push(change));
    const west = { name: 'west', url: 'https://west', skipTLSVerify: false };
    const change = access.update([{ ...east, token: 'rotated' }, west]);
    expect(change).toEqual({
      added: ['west'],
      removed: ['lab'],
      changed: ['east'],
    });
    expect(heard).toEqual([change]);
    expect(access.names()).toEqual(['east', 'west']);
    expect(access.get('east').token).toBe('rotated');
    expect(() => access.get('lab')).toThrow('Unknown cluster "lab"');
  });

  it('tells no one of a list equal to the one it has', () => {
    const access = new ClusterAccess([east, lab]);
    const listener = jest.fn();
    access.onChange(listener);
    access.update([{ ...east }, { ...lab }]);
    expect(listener).not.toHaveBeenCalled();
    // The order is the configuration's, and rows follow it.
    access.update([lab, east]);
    expect(listener).toHaveBeenCalledWith({
      added: [],
      removed: [],
      changed: [],
    });
  });

  it('close() stops following the source and drops the listeners', () => {
    const onClose = jest.fn();
    const access = new ClusterAccess([east], { onClose });
    const listener = jest.fn();
    access.onChange(listener);
    access.close();
    access.close();
    expect(onClose).toHaveBeenCalledTimes(1);
    access.update([lab]);
    expect(listener).not.toHaveBeenCalled();
  });
});
