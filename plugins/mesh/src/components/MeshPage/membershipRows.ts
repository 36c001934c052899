import {
  MembershipCell,
  MembershipResponse,
} from '@tailmesh/plugin-mesh-common';
import { membershipCellState } from './membershipCells';

/** A member's outgoing links, reduced for a mesh too large for the full matrix. */
export interface MembershipRow {
  cluster: string;
  /** Peers it reaches. */
  ok: number;
  /** Peers it must reach: every other member. */
  peers: number;
  /** The links that are missing or broken, in the matrix's column order. */
  problems: Array<{ cell: MembershipCell; state: 'missing' | 'broken' }>;
}

/** Counts over every link of the matrix (the diagonal left out). */
export interface MembershipTotals {
  members: number;
  links: number;
  ok: number;
  missing: number;
  broken: number;
}

/** One row per member, and the totals, computed once per membership answer. */
export function membershipRows(membership: MembershipResponse): {
  rows: MembershipRow[];
  totals: MembershipTotals;
} {
  const { clusters, matrix } = membership;
  const totals: MembershipTotals = {
    members: clusters.length,
    links: 0,
    ok: 0,
    missing: 0,
    broken: 0,
  };
  const rows = clusters.map((cluster, i) => {
    const row: MembershipRow = { cluster, ok: 0, peers: 0, problems: [] };
    for (const cell of matrix[i] ?? []) {
      const state = membershipCellState(cell);
      if (state === 'self') continue;
      row.peers += 1;
      totals.links += 1;
      totals[state] += 1;
      if (state === 'ok') row.ok += 1;
      else row.problems.push({ cell, state });
    }
    return row;
  });
  return { rows, totals };
}
