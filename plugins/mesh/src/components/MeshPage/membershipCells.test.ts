import { MembershipCell } from '@tailmesh/plugin-mesh-common';
import { describeMembershipCell, membershipCellState } from './membershipCells';

function cell(overrides: Partial<MembershipCell>): MembershipCell {
  return {
    from: 'cluster1',
    to: 'cluster2',
    remoteSecret: 'present',
    gatewayInMeshNetworks: 'present',
    istiodSync: 'unknown',
    ...overrides,
  };
}

describe('membershipCellState', () => {
  it.each<[Partial<MembershipCell>, string]>([
    [{}, 'ok'],
    [{ gatewayInMeshNetworks: 'not-applicable' }, 'ok'],
    [{ remoteSecret: 'missing' }, 'missing'],
    [{ gatewayInMeshNetworks: 'missing' }, 'missing'],
    [{ gatewayInMeshNetworks: 'wrong-address' }, 'broken'],
    [{ istiodSync: 'synced' }, 'ok'],
    [{ istiodSync: 'syncing' }, 'ok'],
    [{ istiodSync: 'timeout' }, 'broken'],
    [{ istiodSync: 'closed' }, 'broken'],
    [
      { remoteSecret: 'missing', gatewayInMeshNetworks: 'wrong-address' },
      'broken',
    ],
    [
      {
        to: 'cluster1',
        remoteSecret: 'not-applicable',
        gatewayInMeshNetworks: 'not-applicable',
        istiodSync: 'not-applicable',
      },
      'self',
    ],
  ])('%j is %s', (overrides, state) => {
    expect(membershipCellState(cell(overrides))).toBe(state);
  });
});

describe('describeMembershipCell', () => {
  it('says what is there and what is not, from which cluster to which', () => {
    expect(describeMembershipCell(cell({ remoteSecret: 'missing' }))).toBe(
      "cluster1 → cluster2: missing (remote secret missing; cluster2's gateway in cluster1's meshNetworks)",
    );
    expect(
      describeMembershipCell(cell({ gatewayInMeshNetworks: 'not-applicable' })),
    ).toBe(
      'cluster1 → cluster2: ok (remote secret present; cluster1 discovers gateways without meshNetworks)',
    );
    expect(describeMembershipCell(cell({ istiodSync: 'timeout' }))).toBe(
      "cluster1 → cluster2: broken (remote secret present; cluster2's gateway in cluster1's meshNetworks; cluster1's istiod reports cluster2 timeout)",
    );
  });
});
