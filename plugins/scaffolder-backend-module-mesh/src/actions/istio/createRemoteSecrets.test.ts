import { JsonObject } from '@backstage/config';
import { parse } from 'yaml';
import { fakeWiringDeps, wiringContext } from './testUtils/wiringDeps';
import {
  ISTIO_CREATE_REMOTE_SECRETS_ACTION_ID,
  createIstioCreateRemoteSecretsAction,
} from './createRemoteSecrets';
import {
  remoteSecretFor,
  remoteSecretKubeconfig,
  remoteSecretPlan,
} from './remoteSecret';

describe('remoteSecretKubeconfig', () => {
  it('points at the peer API server proxy, with no CA data and the placeholder token, named like istioctl names it', () => {
    const text = remoteSecretKubeconfig('west', 'tail1234.ts.net');
    expect(parse(text)).toEqual({
      apiVersion: 'v1',
      clusters: [
        {
          cluster: { server: 'https://west-k8s-operator.tail1234.ts.net' },
          name: 'west',
        },
      ],
      contexts: [{ context: { cluster: 'west', user: 'west' }, name: 'west' }],
      'current-context': 'west',
      kind: 'Config',
      preferences: {},
      users: [{ name: 'west', user: { token: 'unused' } }],
    });
    expect(text).not.toContain('certificate-authority');
    // client-go writes the keys in alphabetical order; so does this.
    expect(
      text
        .split('\n')
        .filter(l => /^\S/.test(l))
        .map(l => l.split(':')[0]),
    ).toEqual([
      'apiVersion',
      'clusters',
      'contexts',
      'current-context',
      'kind',
      'preferences',
      'users',
    ]);
  });
});

describe('remoteSecretFor', () => {
  it('names, labels and annotates the Secret as istiod looks for it, with one key named after the cluster', () => {
    const secret = remoteSecretFor('west', 'tail1234.ts.net');
    expect(secret.metadata).toEqual({
      name: 'istio-remote-secret-west',
      namespace: 'istio-system',
      labels: {
        'istio/multiCluster': 'true',
        'app.kubernetes.io/managed-by': 'tailmesh',
      },
      annotations: { 'networking.istio.io/cluster': 'west' },
    });
    expect(Object.keys(secret.data!)).toEqual(['west']);
    expect(Buffer.from(secret.data!.west, 'base64').toString()).toBe(
      remoteSecretKubeconfig('west', 'tail1234.ts.net'),
    );
  });
});

describe('remoteSecretPlan', () => {
  it('puts each peer secret in the cluster and the cluster secret in each peer', () => {
    const plan = remoteSecretPlan(
      'east',
      ['west', 'central'],
      'tail1234.ts.net',
    );
    expect(plan.map(p => [p.holder, p.secret.metadata!.name])).toEqual([
      ['east', 'istio-remote-secret-west'],
      ['west', 'istio-remote-secret-east'],
      ['east', 'istio-remote-secret-central'],
      ['central', 'istio-remote-secret-east'],
    ]);
  });
});

describe('mesh:istio:create-remote-secrets', () => {
  const run = (input: JsonObject, tailscale?: Record<string, string>) =>
    createIstioCreateRemoteSecretsAction(
      fakeWiringDeps(tailscale).deps,
    ).handler(wiringContext(input));

  it('has the id of its constant and supports dry run', () => {
    const action = createIstioCreateRemoteSecretsAction(fakeWiringDeps().deps);
    expect(action.id).toBe(ISTIO_CREATE_REMOTE_SECRETS_ACTION_ID);
    expect(action.supportsDryRun).toBe(true);
  });

  it.each([
    [
      { cluster: 'east', peers: ['east', 'west'] },
      'Invalid input: peers must not include the cluster itself ("east")',
    ],
    [
      { cluster: 'east', peers: [] },
      'Invalid input: peers must list at least one cluster',
    ],
    [
      { cluster: 'east', peers: ['west', 'west'] },
      'Invalid input: peers lists "west" more than once',
    ],
    [{ cluster: 'east', peers: ['West_1'] }, 'Invalid input: peers "West_1"'],
    [{ cluster: '9east', peers: ['west'] }, 'Invalid input: cluster "9east"'],
    [
      { cluster: 'east', peers: ['west'], tailnet: 'localhost' },
      'Invalid input: tailnet "localhost"',
    ],
  ])('rejects %j before touching a cluster', async (input, message) => {
    await expect(run(input)).rejects.toThrow(message);
  });

  it('needs the tailnet configured', async () => {
    await expect(run({ cluster: 'east', peers: ['west'] }, {})).rejects.toThrow(
      /^No tailnet configured: set mesh.tailscale.dnsName/,
    );
  });

  it('names an unknown peer before writing anywhere', async () => {
    await expect(
      run({ cluster: 'east', peers: ['west', 'nowhere'] }),
    ).rejects.toThrow(
      'Unknown cluster "nowhere": it is not in mesh.clusters (configured: east, west, central)',
    );
  });
});
