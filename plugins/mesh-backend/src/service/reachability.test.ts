import {
  MeshClusterSnapshot,
  ServiceEndpointsInCluster,
} from '@tailmesh/plugin-mesh-common';
import { memberSnapshot } from '../testUtils/fakeMeshState';
import { serviceRoutes } from './MeshStatusService';
import { whyUnreachable } from './reachability';

const networks = {
  networks: Object.fromEntries(
    ['a', 'b', 'c'].map((c, i) => [
      `network${i + 1}`,
      {
        endpoints: [{ fromRegistry: c }],
        gateways: [{ address: `${c}-gw.ts.net`, port: 15443 }],
      },
    ]),
  ),
};
const row = (
  cluster: string,
  ready: number,
  reachable = true,
): ServiceEndpointsInCluster => ({
  cluster,
  reachable,
  ...(reachable
    ? {}
    : { error: { kind: 'connection-refused', message: 'connection refused' } }),
  serving: ready > 0,
  endpoints: { ready, notReady: 0 },
  zones: [],
  network: '',
});

/** Every route's reasons, by the cluster requests leave from; what serviceRoutes decides is the input. */
function reasons(
  rows: ServiceEndpointsInCluster[],
  snapshots: MeshClusterSnapshot[],
) {
  return Object.fromEntries(
    serviceRoutes(rows, snapshots).map(r => [
      r.fromCluster,
      whyUnreachable(r, rows, snapshots),
    ]),
  );
}

describe('whyUnreachable', () => {
  it('says nothing for clusters that reach the Service', () => {
    const snapshots = ['a', 'b'].map((c, i) => ({
      ...memberSnapshot(
        c,
        i + 1,
        ['a', 'b'].filter(p => p !== c),
      ),
      meshNetworks: networks,
    }));
    expect(reasons([row('a', 2), row('b', 0)], snapshots)).toEqual({
      a: [],
      b: [],
    });
  });

  it('names the missing remote secret and the missing meshNetworks gateway, each with what to run', () => {
    const withoutC = {
      networks: {
        network1: networks.networks.network1,
        network2: networks.networks.network2,
      },
    };
    const snapshots = [
      // a knows b only, and its meshNetworks has no gateway for c's network.
      { ...memberSnapshot('a', 1, ['b']), meshNetworks: withoutC },
      { ...memberSnapshot('b', 2, ['a', 'c']), meshNetworks: networks },
      { ...memberSnapshot('c', 3, ['a', 'b']), meshNetworks: networks },
    ];
    const snapshotsNoGateway = [
      { ...memberSnapshot('a', 1, ['b', 'c']), meshNetworks: withoutC },
      ...snapshots.slice(1),
    ];
    expect(
      reasons([row('a', 0), row('b', 0), row('c', 2)], snapshots).a,
    ).toEqual([
      'a has no endpoint of the Service',
      "a holds no remote secret for c, so its istiod does not know c's endpoints; run mesh:istio:create-remote-secrets for a and c (or the Join template for a again)",
    ]);
    expect(
      reasons([row('a', 0), row('b', 0), row('c', 2)], snapshotsNoGateway).a,
    ).toEqual([
      'a has no endpoint of the Service',
      "a's meshNetworks names no gateway address for c's network network3, so its istiod drops those endpoints; run mesh:istio:configure-networks (or the Join template for c again)",
    ]);
  });

  it('tells a cluster outside the mesh to join, and a serving cluster outside the mesh too', () => {
    const member = { ...memberSnapshot('a', 1, []), meshNetworks: networks };
    const outside = {
      cluster: 'b',
      remoteSecretsFor: [],
      egressFor: [],
    } as MeshClusterSnapshot;
    expect(reasons([row('a', 2), row('b', 0)], [member, outside]).b).toEqual([
      'b has no endpoint of the Service, and b is not a mesh member, so its sidecars are given only its own endpoints; join it with the "Join cluster to mesh" template',
    ]);
    const c = { ...memberSnapshot('c', 3, ['a']), meshNetworks: networks };
    expect(
      reasons(
        [row('a', 0), row('b', 3), row('c', 0)],
        [{ ...member, remoteSecretsFor: ['c'] }, outside, c],
      ).a,
    ).toEqual([
      'a has no endpoint of the Service',
      'b serves it but is not a mesh member; join it with the "Join cluster to mesh" template',
    ]);
  });

  it('says what cannot be known when a cluster could not be read', () => {
    const snapshots = ['a', 'b'].map((c, i) => ({
      ...memberSnapshot(
        c,
        i + 1,
        ['a', 'b'].filter(p => p !== c),
      ),
      meshNetworks: networks,
    }));
    const rows = [row('a', 0), row('b', 0, false)];
    expect(reasons(rows, snapshots)).toEqual({
      a: [
        'a has no endpoint of the Service, and no other cluster has a ready one that could be read',
        'b could not be read, so whether it serves the Service is unknown',
      ],
      b: [
        'b could not be read (connection refused), so what its sidecars are given is unknown',
      ],
    });
  });
});
