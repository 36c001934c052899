import { InputError } from '@backstage/errors';
import {
  MeshNetworkMember,
  MeshNetworks,
  desiredMeshNetworks,
  meshNetworksEqual,
  parseMeshNetworks,
  validateGatewayAddress,
} from './meshNetworks';

const members: MeshNetworkMember[] = [
  {
    cluster: 'cluster2',
    network: 'cluster2',
    gatewayAddress: 'cluster2-istio-eastwestgateway.tail1234.ts.net',
  },
  {
    cluster: 'cluster1',
    network: 'cluster1',
    gatewayAddress: 'cluster1-istio-eastwestgateway.tail1234.ts.net',
  },
];

describe('desiredMeshNetworks', () => {
  it("builds the recipe's step 8 block", () => {
    expect(desiredMeshNetworks(members)).toEqual({
      networks: {
        cluster1: {
          endpoints: [{ fromRegistry: 'cluster1' }],
          gateways: [
            {
              address: 'cluster1-istio-eastwestgateway.tail1234.ts.net',
              port: 15443,
            },
          ],
        },
        cluster2: {
          endpoints: [{ fromRegistry: 'cluster2' }],
          gateways: [
            {
              address: 'cluster2-istio-eastwestgateway.tail1234.ts.net',
              port: 15443,
            },
          ],
        },
      },
    });
  });

  it('gives the same output, key order included, for any member order', () => {
    const forward = desiredMeshNetworks(members);
    const backward = desiredMeshNetworks([...members].reverse());
    expect(JSON.stringify(backward)).toBe(JSON.stringify(forward));
    expect(Object.keys(forward.networks)).toEqual(['cluster1', 'cluster2']);
  });

  it('groups clusters that share a network', () => {
    const shared = desiredMeshNetworks([
      { cluster: 'b', network: 'net', gatewayAddress: '100.64.0.2' },
      { cluster: 'a', network: 'net', gatewayAddress: '100.64.0.1' },
    ]);
    expect(shared).toEqual({
      networks: {
        net: {
          endpoints: [{ fromRegistry: 'a' }, { fromRegistry: 'b' }],
          gateways: [
            { address: '100.64.0.1', port: 15443 },
            { address: '100.64.0.2', port: 15443 },
          ],
        },
      },
    });
  });

  it('returns no networks for no members', () => {
    expect(desiredMeshNetworks([])).toEqual({ networks: {} });
  });

  it('rejects invalid and duplicate members, listing every problem', () => {
    expect(() =>
      desiredMeshNetworks([
        { cluster: 'Cluster1', network: '', gatewayAddress: 'not an address' },
        { cluster: 'c2', network: 'n', gatewayAddress: '100.64.0.1' },
        { cluster: 'c2', network: 'n', gatewayAddress: '100.64.0.2' },
      ]),
    ).toThrow(
      new InputError(
        'Invalid mesh members: cluster "Cluster1" must be lowercase; ' +
          'network "" must not be empty; ' +
          'gatewayAddress "not an address" must be an IP address or a DNS name; ' +
          'cluster "c2" appears twice',
      ),
    );
  });
});

describe('validateGatewayAddress', () => {
  it.each(['100.64.0.1', 'fd7a:115c:a1e0::1', 'gw.tail1234.ts.net', 'gw'])(
    'accepts %j',
    address => {
      expect(validateGatewayAddress(address)).toBeUndefined();
    },
  );

  it.each(['', 'GW.ts.net', 'gw:15443', 'http://gw', '256.1.1.1.1.'])(
    'rejects %j',
    address => {
      expect(validateGatewayAddress(address)).toBe(
        'must be an IP address or a DNS name',
      );
    },
  );
});

describe('meshNetworksEqual', () => {
  const desired = desiredMeshNetworks(members);

  it('ignores the order of networks, endpoints and gateways', () => {
    const reordered: MeshNetworks = {
      networks: {
        net: {
          endpoints: [{ fromCidr: '10.0.0.0/8' }, { fromRegistry: 'a' }],
          gateways: [
            { address: '100.64.0.2', port: 15443 },
            {
              registryServiceName: 'gw.istio-system.svc.cluster.local',
              port: 15443,
            },
          ],
        },
        other: { endpoints: [], gateways: [] },
      },
    };
    const original: MeshNetworks = {
      networks: {
        other: { endpoints: [], gateways: [] },
        net: {
          endpoints: [{ fromRegistry: 'a' }, { fromCidr: '10.0.0.0/8' }],
          gateways: [
            {
              registryServiceName: 'gw.istio-system.svc.cluster.local',
              port: 15443,
            },
            { address: '100.64.0.2', port: 15443 },
          ],
        },
      },
    };
    expect(meshNetworksEqual(reordered, original)).toBe(true);
    expect(
      meshNetworksEqual(desired, desiredMeshNetworks([...members].reverse())),
    ).toBe(true);
  });

  it('treats an empty locality as no locality', () => {
    expect(
      meshNetworksEqual(
        {
          networks: {
            n: { endpoints: [], gateways: [{ address: 'a', port: 1 }] },
          },
        },
        {
          networks: {
            n: {
              endpoints: [],
              gateways: [{ address: 'a', port: 1, locality: '' }],
            },
          },
        },
      ),
    ).toBe(true);
  });

  it.each<[string, (m: MeshNetworks) => void]>([
    [
      'a gateway address',
      m => {
        m.networks.cluster1.gateways = [{ address: '100.64.0.9', port: 15443 }];
      },
    ],
    [
      'a gateway port',
      m => {
        m.networks.cluster1.gateways = [
          {
            address: 'cluster1-istio-eastwestgateway.tail1234.ts.net',
            port: 443,
          },
        ];
      },
    ],
    [
      'an endpoint registry',
      m => {
        m.networks.cluster1.endpoints = [{ fromRegistry: 'cluster3' }];
      },
    ],
    [
      'a registry turned into a CIDR',
      m => {
        m.networks.cluster1.endpoints = [{ fromCidr: 'cluster1' }];
      },
    ],
    [
      'a missing network',
      m => {
        delete m.networks.cluster2;
      },
    ],
    [
      'a renamed network',
      m => {
        m.networks.renamed = m.networks.cluster2;
        delete m.networks.cluster2;
      },
    ],
    [
      'a locality',
      m => {
        m.networks.cluster1.gateways[0].locality = 'eu-west-1';
      },
    ],
  ])('notices a different %s', (_, change) => {
    const changed = structuredClone(desired);
    change(changed);
    expect(meshNetworksEqual(desired, changed)).toBe(false);
    expect(meshNetworksEqual(changed, desired)).toBe(false);
  });
});

describe('parseMeshNetworks', () => {
  it('reads what the istiod chart and the recipe write', () => {
    expect(parseMeshNetworks({ networks: {} })).toEqual({ networks: {} });
    expect(parseMeshNetworks(null)).toEqual({ networks: {} });
    expect(parseMeshNetworks(undefined)).toEqual({ networks: {} });
    expect(parseMeshNetworks({})).toEqual({ networks: {} });
    const desired = desiredMeshNetworks(members);
    expect(parseMeshNetworks(JSON.parse(JSON.stringify(desired)))).toEqual(
      desired,
    );
  });

  it('keeps registryServiceName gateways, CIDR endpoints and localities', () => {
    const input = {
      networks: {
        n: {
          endpoints: [{ fromCidr: '10.0.0.0/8' }],
          gateways: [
            { registryServiceName: 'gw.svc', port: 15443, locality: 'r/z' },
          ],
        },
        empty: { endpoints: null },
      },
    };
    expect(parseMeshNetworks(input)).toEqual({
      networks: {
        n: input.networks.n,
        empty: { endpoints: [], gateways: [] },
      },
    });
  });

  it('lists every malformed entry', () => {
    expect(() =>
      parseMeshNetworks({
        networks: {
          a: 'x',
          b: {
            endpoints: [{ fromRegistry: 'r', fromCidr: '10.0.0.0/8' }, {}],
            gateways: [
              { address: 'gw', registryServiceName: 'gw.svc', port: 1 },
              { address: 'gw', port: 0 },
              { address: 'gw', port: 1, locality: 3 },
              'gw',
            ],
          },
          c: { endpoints: 'r' },
        },
      }),
    ).toThrow(
      new InputError(
        'Invalid meshNetworks: networks.a must be an object, got "x"; ' +
          'networks.b.endpoints[0] must have exactly one of fromRegistry or fromCidr; ' +
          'networks.b.endpoints[1] must have exactly one of fromRegistry or fromCidr; ' +
          'networks.b.gateways[0] must have exactly one of address or registryServiceName; ' +
          'networks.b.gateways[1] port number 0 must be a port number; ' +
          'networks.b.gateways[2] locality must be a string; ' +
          'networks.b.gateways[3] must be an object, got "gw"; ' +
          'networks.c.endpoints must be a list, got "r"',
      ),
    );
  });

  it('rejects a non-object document or networks field', () => {
    expect(() => parseMeshNetworks('networks')).toThrow(InputError);
    expect(() => parseMeshNetworks({ networks: [] })).toThrow(
      'Invalid meshNetworks: networks must be an object, got an array',
    );
  });
});
