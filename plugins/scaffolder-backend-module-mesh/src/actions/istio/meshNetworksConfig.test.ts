import { stringify } from 'yaml';
import { foreignNetworks } from './meshNetworksConfig';

const tailnet = 'tail1234.ts.net';
const desired = {
  networks: {
    east: {
      endpoints: [{ fromRegistry: 'east' }],
      gateways: [
        { address: `east-istio-eastwestgateway.${tailnet}`, port: 15443 },
      ],
    },
  },
};
const data = (networks: Record<string, unknown>) => ({
  meshNetworks: stringify({ networks }),
});

describe('foreignNetworks', () => {
  it("keeps networks Tailmesh did not write, and drops a former member's", () => {
    const vm = {
      endpoints: [{ fromCidr: '192.168.10.0/24' }],
      gateways: [{ address: 'vm-gateway.corp.example', port: 15443 }],
    };
    const byIstioctl = {
      endpoints: [{ fromRegistry: 'legacy' }],
      gateways: [
        {
          registryServiceName:
            'istio-eastwestgateway.istio-system.svc.cluster.local',
          port: 15443,
        },
      ],
    };
    const formerMember = {
      endpoints: [{ fromRegistry: 'west' }],
      gateways: [
        { address: `west-istio-eastwestgateway.${tailnet}`, port: 15443 },
      ],
    };
    const handEditedMember = {
      endpoints: [{ fromRegistry: 'east' }],
      gateways: [],
    };
    expect(
      foreignNetworks(
        data({
          vm,
          legacy: byIstioctl,
          west: formerMember,
          east: handEditedMember,
        }),
        desired,
        tailnet,
      ),
    ).toEqual({ vm, legacy: byIstioctl });
  });

  it('has nothing to keep in an absent or unreadable text', () => {
    expect(foreignNetworks(undefined, desired, tailnet)).toEqual({});
    expect(
      foreignNetworks({ meshNetworks: 'networks: [' }, desired, tailnet),
    ).toEqual({});
  });
});
