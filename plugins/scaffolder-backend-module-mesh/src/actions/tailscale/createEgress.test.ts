import { ConfigReader } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { V1NetworkPolicy, V1Service } from '@kubernetes/client-node';
import { MeshActionDeps } from '../../service/MeshActionDeps';
import { apiEgressOpenTo, egressTargetOf } from '@tailmesh/plugin-mesh-common';
import { networkPolicyView } from '@tailmesh/plugin-mesh-node';
import { depsAt, FakeServiceApi } from './testUtils/fakeServiceApi';
import {
  EGRESS_TARGET_KINDS,
  createTailscaleCreateEgressAction,
  egressService,
  externalNameToApply,
} from './createEgress';

describe('egressService', () => {
  it("is the recipe's egress Service to the peer's API server proxy, labelled with its peer and tagged", () => {
    expect(egressService('west', 'tail1234.ts.net', 'placeholder')).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'west-k8s-operator',
        namespace: 'tailscale',
        labels: {
          'tailmesh.dev/peer': 'west',
          'app.kubernetes.io/managed-by': 'tailmesh',
        },
        annotations: {
          'tailscale.com/tailnet-fqdn': 'west-k8s-operator.tail1234.ts.net',
          'tailscale.com/tags': 'tag:tailmesh-egress',
        },
      },
      spec: {
        type: 'ExternalName',
        externalName: 'placeholder',
        ports: [{ name: 'https', port: 443, protocol: 'TCP' }],
      },
    });
    expect(
      egressService(
        'west',
        'tail1234.ts.net',
        'placeholder',
        'api-server-proxy',
      ),
    ).toEqual(egressService('west', 'tail1234.ts.net', 'placeholder'));
  });

  it("leads to the peer's east-west gateway on the mTLS port, named like the gateway", () => {
    expect(
      egressService(
        'west',
        'tail1234.ts.net',
        'placeholder',
        'east-west-gateway',
      ),
    ).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'west-istio-eastwestgateway',
        namespace: 'tailscale',
        labels: {
          'tailmesh.dev/peer': 'west',
          'app.kubernetes.io/managed-by': 'tailmesh',
        },
        annotations: {
          'tailscale.com/tailnet-fqdn':
            'west-istio-eastwestgateway.tail1234.ts.net',
          'tailscale.com/tags': 'tag:tailmesh-egress',
        },
      },
      spec: {
        type: 'ExternalName',
        externalName: 'placeholder',
        ports: [{ name: 'tls', port: 15443, protocol: 'TCP' }],
      },
    });
  });

  it('is named so the audit tells the two apart', () => {
    for (const target of EGRESS_TARGET_KINDS) {
      const made = egressService('west', 'tail1234.ts.net', undefined, target);
      expect(egressTargetOf(made.metadata!.name!, 'west')).toBe(target);
    }
    expect(EGRESS_TARGET_KINDS).toEqual([
      'api-server-proxy',
      'east-west-gateway',
    ]);
  });

  it('leaves externalName out when there is none to assert', () => {
    expect(egressService('west', 'tail1234.ts.net', undefined).spec).toEqual({
      type: 'ExternalName',
      ports: [{ name: 'https', port: 443, protocol: 'TCP' }],
    });
    expect(
      egressService('west', 'tail1234.ts.net', undefined, 'east-west-gateway')
        .spec,
    ).toEqual({
      type: 'ExternalName',
      ports: [{ name: 'tls', port: 15443, protocol: 'TCP' }],
    });
  });
});

describe('externalNameToApply', () => {
  const proxy = 'ts-west-k8s-operator-abcde.tailscale.svc.cluster.local';
  const service = (
    owners: Array<{
      manager: string;
      operation: string;
      externalName: boolean;
    }>,
  ) => ({
    metadata: {
      managedFields: owners.map(o => ({
        manager: o.manager,
        operation: o.operation,
        fieldsV1: {
          'f:spec': {
            'f:type': {},
            ...(o.externalName ? { 'f:externalName': {} } : {}),
          },
        },
      })),
    },
    spec: { externalName: proxy },
  });

  it('is the placeholder for a new Service', () => {
    expect(externalNameToApply(undefined)).toBe('placeholder');
  });

  it('re-asserts the current value while Tailmesh owns the field', () => {
    expect(
      externalNameToApply(
        service([
          { manager: 'tailmesh', operation: 'Apply', externalName: true },
        ]),
      ),
    ).toBe(proxy);
  });

  it('leaves the field to the operator once it has rewritten it', () => {
    const taken = service([
      { manager: 'tailmesh', operation: 'Apply', externalName: false },
      { manager: 'operator', operation: 'Update', externalName: true },
    ]);
    expect(externalNameToApply(taken)).toBeUndefined();
  });
});

describe('mesh:tailscale:create-egress', () => {
  it('fails on a bad peer before it resolves any cluster', async () => {
    const clusters = {
      get: jest.fn(),
      kubeConfig: jest.fn(),
      kubeconfigYaml: jest.fn(),
    };
    const deps = {
      config: new ConfigReader({
        mesh: { tailscale: { dnsName: 'tail1234.ts.net' } },
      }),
      clusters,
    } as unknown as MeshActionDeps;
    const action = createTailscaleCreateEgressAction(deps);
    await expect(
      action.handler(
        createMockActionContext({
          input: { cluster: 'east', peers: ['east'] },
        }) as never,
      ),
    ).rejects.toThrow(/must not include the cluster itself/);
    expect(clusters.get).not.toHaveBeenCalled();
  });
});

describe('mesh:tailscale:create-egress against an API server', () => {
  let api: FakeServiceApi;
  let url: string;
  beforeEach(async () => {
    api = new FakeServiceApi();
    url = await api.start();
  });
  afterEach(() => api.stop());

  // The mock context drops isDryRun, so it is set on the context it builds.
  const run = (input: Record<string, unknown>, isDryRun = false) =>
    createTailscaleCreateEgressAction(depsAt(url)).handler({
      ...createMockActionContext({ input: input as never }),
      isDryRun,
    } as never);

  it('applies both egress Services for every peer, tagged tag:tailmesh-egress', async () => {
    await run({ cluster: 'east', peers: ['west', 'central'] });
    expect([...api.services.keys()].sort()).toEqual([
      'tailscale/central-istio-eastwestgateway',
      'tailscale/central-k8s-operator',
      'tailscale/west-istio-eastwestgateway',
      'tailscale/west-k8s-operator',
    ]);
    for (const peer of ['west', 'central']) {
      const proxy = api.services.get(`tailscale/${peer}-k8s-operator`)!;
      const gateway = api.services.get(
        `tailscale/${peer}-istio-eastwestgateway`,
      )!;
      for (const svc of [proxy, gateway]) {
        expect(svc.metadata?.annotations?.['tailscale.com/tags']).toBe(
          'tag:tailmesh-egress',
        );
        expect(svc.metadata?.labels?.['tailmesh.dev/peer']).toBe(peer);
        expect(svc.spec?.type).toBe('ExternalName');
        expect(svc.spec?.externalName).toBe('placeholder');
      }
      expect(proxy.metadata?.annotations?.['tailscale.com/tailnet-fqdn']).toBe(
        `${peer}-k8s-operator.tail1234.ts.net`,
      );
      expect(proxy.spec?.ports).toEqual([
        { name: 'https', port: 443, protocol: 'TCP' },
      ]);
      expect(
        gateway.metadata?.annotations?.['tailscale.com/tailnet-fqdn'],
      ).toBe(`${peer}-istio-eastwestgateway.tail1234.ts.net`);
      expect(gateway.spec?.ports).toEqual([
        { name: 'tls', port: 15443, protocol: 'TCP' },
      ]);
    }
    // Server-side applies under Tailmesh's field manager, API server proxy (and the policy that
    // keeps other pods from its egress proxy) first per peer.
    const service = (name: string) =>
      `/api/v1/namespaces/tailscale/services/${name}`;
    const policy = (name: string) =>
      `/apis/networking.k8s.io/v1/namespaces/tailscale/networkpolicies/${name}`;
    expect(
      api.writes().map(r => [r.method, r.path, r.query.get('fieldManager')]),
    ).toEqual(
      [
        service('west-k8s-operator'),
        policy('west-k8s-operator-istiod-only'),
        service('west-istio-eastwestgateway'),
        service('central-k8s-operator'),
        policy('central-k8s-operator-istiod-only'),
        service('central-istio-eastwestgateway'),
      ].map(path => ['PATCH', path, 'tailmesh']),
    );
  });

  it("admits only istiod to each API server proxy's egress pods, selected by the Service's UID", async () => {
    await run({ cluster: 'east', peers: ['west'] });
    const uid = api.services.get('tailscale/west-k8s-operator')!.metadata!.uid;
    expect(uid).toBeTruthy();
    const policy = api.policies.get('tailscale/west-k8s-operator-istiod-only')!;
    expect(policy.metadata?.labels).toEqual({
      'tailmesh.dev/peer': 'west',
      'app.kubernetes.io/managed-by': 'tailmesh',
    });
    expect(policy.spec).toEqual({
      podSelector: { matchLabels: { app: uid } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            {
              namespaceSelector: {
                matchLabels: { 'kubernetes.io/metadata.name': 'istio-system' },
              },
              podSelector: { matchLabels: { app: 'istiod' } },
            },
          ],
          ports: [{ protocol: 'TCP', port: 443 }],
        },
      ],
    });
    // The audit's own reading agrees that nothing but istiod gets in.
    expect(
      apiEgressOpenTo([networkPolicyView(policy as V1NetworkPolicy)], uid!),
    ).toBeUndefined();
    // The gateway egress carries data-plane traffic from any pod: no policy.
    expect([...api.policies.keys()]).toEqual([
      'tailscale/west-k8s-operator-istiod-only',
    ]);
  });

  it('leaves the operator its rewritten externalName on both Services of a peer', async () => {
    await run({ cluster: 'east', peers: ['west'] });
    const proxy = 'ts-west-egress.tailscale.svc.cluster.local';
    for (const name of ['west-k8s-operator', 'west-istio-eastwestgateway']) {
      const svc = api.services.get(`tailscale/${name}`)!;
      api.services.set(`tailscale/${name}`, {
        ...svc,
        metadata: {
          ...svc.metadata,
          managedFields: [
            {
              manager: 'tailmesh',
              operation: 'Apply',
              fieldsV1: { 'f:spec': { 'f:type': {} } },
            },
            {
              manager: 'operator',
              operation: 'Update',
              fieldsV1: { 'f:spec': { 'f:externalName': {} } },
            },
          ],
        },
        spec: { ...svc.spec, externalName: proxy },
      });
    }
    api.requests.length = 0;
    await run({ cluster: 'east', peers: ['west'] });
    const applied = api
      .writes()
      .filter(r => r.path.includes('/services/'))
      .map(r => r.body as V1Service);
    expect(applied.map(s => s.metadata?.name)).toEqual([
      'west-k8s-operator',
      'west-istio-eastwestgateway',
    ]);
    for (const s of applied) expect(s.spec).not.toHaveProperty('externalName');
  });

  it('writes nothing in a dry run', async () => {
    await run({ cluster: 'east', peers: ['west'] }, true);
    expect(api.writes().map(r => [r.path, r.query.get('dryRun')])).toEqual([
      ['/api/v1/namespaces/tailscale/services/west-k8s-operator', 'All'],
      [
        '/apis/networking.k8s.io/v1/namespaces/tailscale/networkpolicies/west-k8s-operator-istiod-only',
        'All',
      ],
      [
        '/api/v1/namespaces/tailscale/services/west-istio-eastwestgateway',
        'All',
      ],
    ]);
    expect(api.services.size).toBe(0);
    expect(api.policies.size).toBe(0);
  });
});
