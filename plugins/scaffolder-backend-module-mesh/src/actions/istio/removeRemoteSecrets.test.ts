import { JsonObject } from '@backstage/config';
import { fakeWiringDeps, wiringContext } from './testUtils/wiringDeps';
import {
  ISTIO_REMOVE_REMOTE_SECRETS_ACTION_ID,
  createIstioRemoveRemoteSecretsAction,
  isRemoteSecret,
  remoteSecretRemovalPlan,
} from './removeRemoteSecrets';
import { remoteSecretFor, remoteSecretPlan } from './remoteSecret';

describe('remoteSecretRemovalPlan', () => {
  it('is the exact mirror of what create-remote-secrets applies', () => {
    const created = remoteSecretPlan(
      'east',
      ['west', 'central'],
      'tail1234.ts.net',
    ).map(p => [
      p.holder,
      p.secret.metadata!.namespace,
      p.secret.metadata!.name,
    ]);
    const removed = remoteSecretRemovalPlan('east', ['west', 'central']).map(
      p => [p.holder, p.secret.metadata!.namespace, p.secret.metadata!.name],
    );
    expect(removed).toEqual(created);
    expect(removed).toEqual([
      ['east', 'istio-system', 'istio-remote-secret-west'],
      ['west', 'istio-system', 'istio-remote-secret-east'],
      ['east', 'istio-system', 'istio-remote-secret-central'],
      ['central', 'istio-system', 'istio-remote-secret-east'],
    ]);
  });
});

describe('isRemoteSecret', () => {
  it('accepts what create-remote-secrets makes', () => {
    expect(isRemoteSecret(remoteSecretFor('west', 'tail1234.ts.net'))).toBe(
      true,
    );
  });

  it.each([
    ['no labels', {}],
    ['the label with another value', { 'istio/multiCluster': 'false' }],
    [
      'only the managed-by label',
      { 'app.kubernetes.io/managed-by': 'tailmesh' },
    ],
  ])('refuses a Secret with %s', (_, labels) => {
    expect(
      isRemoteSecret({
        metadata: { name: 'istio-remote-secret-west', labels },
      }),
    ).toBe(false);
  });
});

describe('mesh:istio:remove-remote-secrets', () => {
  const run = (input: JsonObject) =>
    createIstioRemoveRemoteSecretsAction(fakeWiringDeps().deps).handler(
      wiringContext(input),
    );

  it('has the id of its constant and supports dry run', () => {
    const action = createIstioRemoveRemoteSecretsAction(fakeWiringDeps().deps);
    expect(action.id).toBe(ISTIO_REMOVE_REMOTE_SECRETS_ACTION_ID);
    expect(action.id).toBe('mesh:istio:remove-remote-secrets');
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
  ])('rejects %j before touching a cluster', async (input, message) => {
    await expect(run(input)).rejects.toThrow(message);
  });

  it('names an unknown peer before reading or deleting anything', async () => {
    await expect(
      run({ cluster: 'east', peers: ['west', 'nowhere'] }),
    ).rejects.toThrow(
      'Unknown cluster "nowhere": it is not in mesh.clusters (configured: east, west, central)',
    );
  });

  it('names the unreachable cluster it could not read', async () => {
    await expect(run({ cluster: 'east', peers: ['west'] })).rejects.toThrow(
      /Reading Secret istio-system\/istio-remote-secret-west failed on east: cannot connect to https:\/\/127\.0\.0\.1:9/,
    );
  });
});
