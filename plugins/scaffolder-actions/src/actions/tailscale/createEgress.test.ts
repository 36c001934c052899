import { ConfigReader } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { MeshActionDeps } from '../../service/MeshActionDeps';
import {
  createTailscaleCreateEgressAction,
  egressService,
  externalNameToApply,
} from './createEgress';

describe('egressService', () => {
  it("is the recipe's egress Service, labelled with its peer", () => {
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
        },
      },
      spec: {
        type: 'ExternalName',
        externalName: 'placeholder',
        ports: [{ name: 'https', port: 443, protocol: 'TCP' }],
      },
    });
  });

  it('leaves externalName out when there is none to assert', () => {
    expect(egressService('west', 'tail1234.ts.net', undefined).spec).toEqual({
      type: 'ExternalName',
      ports: [{ name: 'https', port: 443, protocol: 'TCP' }],
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
