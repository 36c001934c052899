import { MeshClusterSnapshot } from '@tailmesh/plugin-mesh-common';
import { membersOnNetwork } from './checkJoin';

const snapshot = (
  cluster: string,
  s: Partial<MeshClusterSnapshot> = {},
): MeshClusterSnapshot => ({
  cluster,
  remoteSecretsFor: [],
  egressFor: [],
  ...s,
});

/** What mesh:istio:install leaves on a member, as far as isMeshMember looks. */
const member = (cluster: string, network: string) =>
  snapshot(cluster, { istiod: { ready: true }, meshId: 'mesh1', network });

describe('membersOnNetwork', () => {
  it('names the other members on the network, sorted', () => {
    expect(
      membersOnNetwork(
        [
          member('west', 'shared'),
          member('central', 'central-net'),
          member('Zulu', 'shared'),
          member('alpha', 'shared'),
        ],
        'east',
        'shared',
      ),
    ).toEqual(['Zulu', 'alpha', 'west']);
  });

  it('is empty when no other member uses the network', () => {
    expect(
      membersOnNetwork(
        [member('west', 'west-net'), member('central', 'central-net')],
        'east',
        'east-net',
      ),
    ).toEqual([]);
    expect(membersOnNetwork([], 'east', 'east-net')).toEqual([]);
  });

  it('leaves out the joining cluster itself (a re-run of its own join)', () => {
    expect(
      membersOnNetwork(
        [member('east', 'east-net'), member('west', 'east-net')],
        'east',
        'east-net',
      ),
    ).toEqual(['west']);
  });

  it('counts an istiod that is not ready yet as a member', () => {
    expect(
      membersOnNetwork(
        [
          snapshot('west', {
            istiod: { ready: false },
            meshId: 'mesh1',
            network: 'n',
          }),
        ],
        'east',
        'n',
      ),
    ).toEqual(['west']);
  });

  it('ignores clusters on the network that are not members', () => {
    const network = 'n';
    expect(
      membersOnNetwork(
        [
          // Left the mesh: mesh:istio:leave removed the mesh id, the network label stays.
          snapshot('left', { istiod: { ready: true }, network }),
          // Labelled but no istiod installed (yet).
          snapshot('bare', { meshId: 'mesh1', network }),
          // Only the network label.
          snapshot('labelled', { network }),
          // Unreadable: whatever it says is unknown.
          snapshot('unreadable', {
            istiod: { ready: true },
            meshId: 'mesh1',
            network,
            error: { kind: 'timeout', message: 'unreadable: no answer' },
          }),
          member('real', network),
        ],
        'east',
        network,
      ),
    ).toEqual(['real']);
  });

  it('matches the network id exactly', () => {
    expect(
      membersOnNetwork(
        [
          member('west', 'Net1'),
          member('north', 'net10'),
          member('south', 'net1'),
        ],
        'east',
        'net1',
      ),
    ).toEqual(['south']);
  });

  it('does not reorder its argument', () => {
    const snapshots = [member('west', 'n'), member('central', 'n')];
    expect(membersOnNetwork(snapshots, 'east', 'n')).toEqual([
      'central',
      'west',
    ]);
    expect(snapshots.map(s => s.cluster)).toEqual(['west', 'central']);
  });
});
