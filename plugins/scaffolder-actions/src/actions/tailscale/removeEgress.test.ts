import { ConfigReader } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { ClusterAccess } from '@tailmesh/plugin-mesh-node';
import { MeshActionDeps } from '../../service/MeshActionDeps';
import { egressService } from './createEgress';
import {
  TAILSCALE_REMOVE_EGRESS_ACTION_ID,
  createTailscaleRemoveEgressAction,
  egressServiceRef,
  isEgressServiceFor,
} from './removeEgress';

/** Three clusters at an address nothing listens on: any read fails with "cannot connect". */
const deps = {
  config: new ConfigReader({}),
  clusters: new ClusterAccess(
    ['east', 'west', 'central'].map(name => ({
      name,
      url: 'https://127.0.0.1:9',
      skipTLSVerify: false,
    })),
  ),
} as unknown as MeshActionDeps;

const run = (input: Record<string, unknown>) =>
  createTailscaleRemoveEgressAction(deps).handler(
    createMockActionContext({ input: input as never }) as never,
  );

describe('egressServiceRef', () => {
  it('names the Service create-egress makes', () => {
    const made = egressService('west', 'tail1234.ts.net', undefined);
    expect(egressServiceRef('west')).toEqual({
      apiVersion: made.apiVersion,
      kind: made.kind,
      metadata: {
        name: made.metadata!.name,
        namespace: made.metadata!.namespace,
      },
    });
  });
});

describe('isEgressServiceFor', () => {
  it("accepts create-egress's Service for its peer only", () => {
    const made = egressService('west', 'tail1234.ts.net', undefined);
    expect(isEgressServiceFor(made, 'west')).toBe(true);
    expect(isEgressServiceFor(made, 'central')).toBe(false);
  });

  it('refuses a Service of that name without the peer label', () => {
    expect(
      isEgressServiceFor(
        {
          metadata: {
            name: 'west-k8s-operator',
            labels: { 'app.kubernetes.io/managed-by': 'tailmesh' },
          },
        },
        'west',
      ),
    ).toBe(false);
  });
});

describe('mesh:tailscale:remove-egress', () => {
  it('has the id of its constant and supports dry run', () => {
    const action = createTailscaleRemoveEgressAction(deps);
    expect(action.id).toBe(TAILSCALE_REMOVE_EGRESS_ACTION_ID);
    expect(action.id).toBe('mesh:tailscale:remove-egress');
    expect(action.supportsDryRun).toBe(true);
  });

  it.each([
    [
      { cluster: 'east', peers: ['west', 'east'] },
      'peers must not include the cluster itself ("east")',
    ],
    [
      { cluster: 'east', peers: ['west', 'west'] },
      'peers lists "west" more than once',
    ],
    [{ cluster: 'east', peers: ['West_1'] }, 'Invalid input: peers "West_1"'],
  ])('rejects %j before touching a cluster', async (input, message) => {
    await expect(run(input)).rejects.toThrow(message);
  });

  it('names an unknown cluster or peer before reading anything', async () => {
    await expect(run({ cluster: 'nowhere', peers: ['west'] })).rejects.toThrow(
      'Unknown cluster "nowhere"',
    );
    await expect(
      run({ cluster: 'east', peers: ['west', 'nowhere'] }),
    ).rejects.toThrow('Unknown cluster "nowhere"');
  });

  it('names the unreachable cluster it could not read', async () => {
    await expect(run({ cluster: 'east', peers: ['west'] })).rejects.toThrow(
      /Reading Service tailscale\/west-k8s-operator failed on east: cannot connect/,
    );
  });
});
