import {
  AUDIT_FINDING_KINDS,
  AuditFinding,
  AuditFindingKind,
  AuditSeverity,
} from './api';
import { compareStrings } from './compareStrings';

const SEVERITY_RANKS: Record<AuditSeverity, number> = {
  error: 2,
  warning: 1,
  info: 0,
};

/**
 * Orders severities: the higher the rank, the more severe (`error` 2, `warning` 1, `info` 0).
 *
 * @public
 */
export function severityRank(severity: AuditSeverity): number {
  return SEVERITY_RANKS[severity];
}

/**
 * ID of a finding: its kind and clusters in the given order, which is significant (see
 * {@link AuditFinding.clusters}), so that A missing B's secret and B missing A's stay distinct.
 * Stable across runs, so history can tell a finding that persists from a new one.
 *
 * @public
 */
export function auditFindingId(
  kind: AuditFindingKind,
  clusters: ReadonlyArray<string>,
): string {
  return clusters.length === 0 ? kind : `${kind}:${clusters.join(',')}`;
}

function compareClusterLists(
  a: ReadonlyArray<string>,
  b: ReadonlyArray<string>,
): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const order = compareStrings(a[i], b[i]);
    if (order !== 0) {
      return order;
    }
  }
  return a.length - b.length;
}

/**
 * Sorts findings (into a new array) by severity, most severe first, then by kind in the order of
 * {@link AUDIT_FINDING_KINDS}, then by clusters, then by ID, so output never depends on the order
 * checks ran in.
 *
 * @public
 */
export function sortFindings(
  findings: ReadonlyArray<AuditFinding>,
): AuditFinding[] {
  return [...findings].sort(
    (a, b) =>
      severityRank(b.severity) - severityRank(a.severity) ||
      AUDIT_FINDING_KINDS.indexOf(a.kind) -
        AUDIT_FINDING_KINDS.indexOf(b.kind) ||
      compareClusterLists(a.clusters, b.clusters) ||
      compareStrings(a.id, b.id),
  );
}
