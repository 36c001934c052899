import {
  MembershipResponse,
  MeshClusterStatus,
  compareStrings,
} from '@tailmesh/plugin-mesh-common';

/** What the first line of the mesh page says: is the mesh healthy, and if not, where to look. */
export interface MeshHealth {
  severity: 'ok' | 'warning' | 'error';
  headline: string;
  /** Clusters named by an error or warning finding, or that cannot be read, sorted. */
  clusters: string[];
}

const plural = (n: number, one: string, many = `${one}s`) =>
  `${n} ${n === 1 ? one : many}`;

/**
 * The mesh at a glance: an error finding or an unreadable member makes it an error, a warning
 * finding or an unreadable non-member a warning; info findings do not count.
 */
export function meshHealth(
  clusters: ReadonlyArray<MeshClusterStatus>,
  membership: MembershipResponse,
): MeshHealth {
  const errors = membership.findings.filter(f => f.severity === 'error');
  const warnings = membership.findings.filter(f => f.severity === 'warning');
  const unreadable = clusters.filter(c => c.sync.state === 'error');
  const unreadableMembers = unreadable.filter(c => c.member);
  const involved = new Set<string>([
    ...[...errors, ...warnings].flatMap(f => f.clusters),
    ...unreadable.map(c => c.name),
  ]);
  const severity =
    errors.length || unreadableMembers.length
      ? 'error'
      : warnings.length || unreadable.length
        ? 'warning'
        : 'ok';
  const members = clusters.filter(c => c.member).length;
  if (severity === 'ok')
    return {
      severity,
      headline: `The mesh is healthy: ${plural(members, 'member')}, every cluster readable, no error or warning`,
      clusters: [],
    };
  const parts: string[] = [];
  if (errors.length) parts.push(plural(errors.length, 'error'));
  if (warnings.length) parts.push(plural(warnings.length, 'warning'));
  if (unreadable.length)
    parts.push(
      `${plural(unreadable.length, 'cluster')} cannot be read${unreadableMembers.length ? ` (${plural(unreadableMembers.length, 'member')})` : ''}`,
    );
  return {
    severity,
    headline: `${severity === 'error' ? 'The mesh needs attention' : 'The mesh works, with warnings'}: ${parts.join(', ')}`,
    clusters: [...involved].sort(compareStrings),
  };
}
