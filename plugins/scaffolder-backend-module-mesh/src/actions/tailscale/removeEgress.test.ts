import { ConfigReader } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { ClusterAccess } from '@tailmesh/plugin-mesh-node';
import { MeshActionDeps } from '../../service/MeshActionDeps';
import { depsAt, FakeServiceApi } from './testUtils/fakeServiceApi';
import { apiEgressPolicy, egressService } from './createEgress';
import {
  TAILSCALE_REMOVE_EGRESS_ACTION_ID,
  createTailscaleRemoveEgressAction,
  egressServiceRef,
  isEgressObjectFor,
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
  it.each([['api-server-proxy'], ['east-west-gateway']] as const)(
    'names the Service create-egress makes to the %s',
    target => {
      const made = egressService('west', 'tail1234.ts.net', undefined, target);
      expect(egressServiceRef('west', target)).toEqual({
        apiVersion: made.apiVersion,
        kind: made.kind,
        metadata: {
          name: made.metadata!.name,
          namespace: made.metadata!.namespace,
        },
      });
    },
  );

  it('names the API server proxy one by default', () => {
    expect(egressServiceRef('west').metadata?.name).toBe('west-k8s-operator');
    expect(egressServiceRef('west', 'east-west-gateway').metadata?.name).toBe(
      'west-istio-eastwestgateway',
    );
  });
});

describe('isEgressObjectFor', () => {
  it("accepts create-egress's Service for its peer only", () => {
    const made = egressService('west', 'tail1234.ts.net', undefined);
    expect(isEgressObjectFor(made, 'west')).toBe(true);
    expect(isEgressObjectFor(made, 'central')).toBe(false);
  });

  it('refuses a Service of that name without the peer label', () => {
    expect(
      isEgressObjectFor(
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

describe('mesh:tailscale:remove-egress against an API server', () => {
  let api: FakeServiceApi;
  let url: string;
  beforeEach(async () => {
    api = new FakeServiceApi();
    url = await api.start();
  });
  afterEach(() => api.stop());

  /** Stores the Services create-egress makes for `peer`, as the API server would. */
  const created = (peer: string) => {
    for (const target of ['api-server-proxy', 'east-west-gateway'] as const) {
      const svc = egressService(peer, 'tail1234.ts.net', 'placeholder', target);
      api.services.set(`tailscale/${svc.metadata!.name}`, {
        ...svc,
        metadata: { ...svc.metadata, uid: `uid-${svc.metadata!.name}` },
      });
    }
    const policy = apiEgressPolicy(peer, `uid-${peer}-k8s-operator`);
    api.policies.set(`tailscale/${policy.metadata!.name}`, {
      ...policy,
      metadata: { ...policy.metadata, uid: `uid-${policy.metadata!.name}` },
    });
  };
  const policyPath = (peer: string) =>
    `/apis/networking.k8s.io/v1/namespaces/tailscale/networkpolicies/${peer}-k8s-operator-istiod-only`;
  // The mock context drops isDryRun, so it is set on the context it builds.
  const runAt = (input: Record<string, unknown>, isDryRun = false) =>
    createTailscaleRemoveEgressAction(depsAt(url)).handler({
      ...createMockActionContext({ input: input as never }),
      isDryRun,
    } as never);

  it('deletes both egress Services of each peer, as read, and waits until they are gone', async () => {
    created('west');
    created('central');
    await runAt({ cluster: 'east', peers: ['west'] });
    expect([...api.services.keys()].sort()).toEqual([
      'tailscale/central-istio-eastwestgateway',
      'tailscale/central-k8s-operator',
    ]);
    // The policy that keeps other pods off the API egress proxy goes last, once the proxies
    // are gone.
    expect(api.writes().map(r => [r.method, r.path, r.body])).toEqual([
      ...['west-k8s-operator', 'west-istio-eastwestgateway'].map(name => [
        'DELETE',
        `/api/v1/namespaces/tailscale/services/${name}`,
        { preconditions: { uid: `uid-${name}` } },
      ]),
      [
        'DELETE',
        policyPath('west'),
        { preconditions: { uid: 'uid-west-k8s-operator-istiod-only' } },
      ],
    ]);
    expect([...api.policies.keys()]).toEqual([
      'tailscale/central-k8s-operator-istiod-only',
    ]);
  });

  it("refuses a NetworkPolicy of that name that is not create-egress's, deleting nothing", async () => {
    created('west');
    api.policies.set('tailscale/west-k8s-operator-istiod-only', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name: 'west-k8s-operator-istiod-only',
        namespace: 'tailscale',
      },
    });
    await expect(runAt({ cluster: 'east', peers: ['west'] })).rejects.toThrow(
      'Refusing to delete NetworkPolicy tailscale/west-k8s-operator-istiod-only on east',
    );
    expect(api.writes()).toEqual([]);
  });

  it('deletes the one that is there when the other is already gone', async () => {
    created('west');
    api.services.delete('tailscale/west-k8s-operator');
    api.policies.clear();
    await runAt({ cluster: 'east', peers: ['west'] });
    expect(api.services.size).toBe(0);
    expect(api.writes().map(r => r.path)).toEqual([
      '/api/v1/namespaces/tailscale/services/west-istio-eastwestgateway',
    ]);
  });

  it("refuses a Service at the gateway egress name that is not create-egress's, deleting nothing", async () => {
    created('west');
    api.services.set('tailscale/west-istio-eastwestgateway', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'west-istio-eastwestgateway', namespace: 'tailscale' },
    });
    await expect(runAt({ cluster: 'east', peers: ['west'] })).rejects.toThrow(
      'Refusing to delete Service tailscale/west-istio-eastwestgateway on east',
    );
    expect(api.writes()).toEqual([]);
    expect(api.services.size).toBe(2);
  });

  it('deletes nothing in a dry run, asking the server about both', async () => {
    created('west');
    await runAt({ cluster: 'east', peers: ['west'] }, true);
    expect(api.services.size).toBe(2);
    expect(api.policies.size).toBe(1);
    expect(api.writes().map(r => [r.path, r.body])).toEqual([
      ...['west-k8s-operator', 'west-istio-eastwestgateway'].map(name => [
        `/api/v1/namespaces/tailscale/services/${name}`,
        { preconditions: { uid: `uid-${name}` }, dryRun: ['All'] },
      ]),
      [
        policyPath('west'),
        {
          preconditions: { uid: 'uid-west-k8s-operator-istiod-only' },
          dryRun: ['All'],
        },
      ],
    ]);
  });
});
