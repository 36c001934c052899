import { MembershipCell } from '@tailmesh/plugin-mesh-common';

/**
 * A matrix cell reduced to one state: `ok` when `from` can reach `to`, `missing` when something it
 * needs is absent, `broken` when it is there but points at the wrong gateway address or `from`'s
 * istiod itself reports `to` as unreachable (`timeout`, `closed`), `self` on the diagonal.
 */
export type MembershipCellState = 'ok' | 'missing' | 'broken' | 'self';

export function membershipCellState(cell: MembershipCell): MembershipCellState {
  if (cell.from === cell.to) return 'self';
  if (
    cell.gatewayInMeshNetworks === 'wrong-address' ||
    cell.istiodSync === 'timeout' ||
    cell.istiodSync === 'closed'
  ) {
    return 'broken';
  }
  if (
    cell.remoteSecret === 'missing' ||
    cell.gatewayInMeshNetworks === 'missing'
  ) {
    return 'missing';
  }
  return 'ok';
}

const REMOTE_SECRET_TEXT: Record<MembershipCell['remoteSecret'], string> = {
  present: 'remote secret present',
  missing: 'remote secret missing',
  'not-applicable': 'no remote secret needed',
};

function gatewayText(cell: MembershipCell): string {
  switch (cell.gatewayInMeshNetworks) {
    case 'present':
      return `${cell.to}'s gateway in ${cell.from}'s meshNetworks`;
    case 'missing':
      return `${cell.to}'s gateway missing from ${cell.from}'s meshNetworks`;
    case 'wrong-address':
      return `${cell.from}'s meshNetworks has a wrong address for ${cell.to}'s gateway`;
    default:
      return `${cell.from} discovers gateways without meshNetworks`;
  }
}

function istiodText(cell: MembershipCell): string | undefined {
  switch (cell.istiodSync) {
    case 'unknown':
    case 'not-applicable':
      return undefined;
    case 'not-listed':
      return `${cell.from}'s istiod does not list ${cell.to}`;
    default:
      return `${cell.from}'s istiod reports ${cell.to} ${cell.istiodSync}`;
  }
}

/** What a matrix cell means, in one sentence: "cluster1 → cluster2: ok (remote secret …)". */
export function describeMembershipCell(cell: MembershipCell): string {
  const state = membershipCellState(cell);
  if (state === 'self') return `${cell.from}: itself`;
  const parts = [
    REMOTE_SECRET_TEXT[cell.remoteSecret],
    gatewayText(cell),
    istiodText(cell),
  ];
  return `${cell.from} → ${cell.to}: ${state} (${parts.filter(Boolean).join('; ')})`;
}
