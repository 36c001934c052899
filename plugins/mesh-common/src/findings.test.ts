import { AuditFinding, AuditFindingKind, AuditSeverity } from './api';
import { auditFindingId, severityRank, sortFindings } from './findings';

function finding(
  severity: AuditSeverity,
  kind: AuditFindingKind,
  clusters: string[],
): AuditFinding {
  return {
    id: auditFindingId(kind, clusters),
    kind,
    severity,
    clusters,
    message: `${kind} on ${clusters.join(', ')}`,
    fix: 'fix it',
  };
}

describe('severityRank', () => {
  it('ranks error above warning above info', () => {
    expect(severityRank('error')).toBeGreaterThan(severityRank('warning'));
    expect(severityRank('warning')).toBeGreaterThan(severityRank('info'));
  });
});

describe('auditFindingId', () => {
  it('is derived from the kind and the clusters', () => {
    expect(auditFindingId('root-ca-mismatch', ['a', 'b'])).toBe(
      'root-ca-mismatch:a,b',
    );
    expect(auditFindingId('grant-too-broad', [])).toBe('grant-too-broad');
  });

  it('keeps the direction of directional findings', () => {
    expect(auditFindingId('one-way-remote-secret', ['a', 'b'])).not.toBe(
      auditFindingId('one-way-remote-secret', ['b', 'a']),
    );
  });
});

describe('sortFindings', () => {
  it('sorts by severity, then kind, then clusters', () => {
    const findings = [
      finding('info', 'root-ca-mismatch', ['a']),
      finding('warning', 'grant-too-broad', []),
      finding('error', 'istiod-not-ready', ['b']),
      finding('error', 'root-ca-mismatch', ['b', 'c']),
      finding('error', 'istiod-not-ready', ['a']),
      finding('error', 'root-ca-mismatch', ['a', 'c']),
      finding('warning', 'remote-secret-for-non-member', ['a', 'x']),
    ];
    expect(sortFindings(findings).map(f => f.id)).toEqual([
      'root-ca-mismatch:a,c',
      'root-ca-mismatch:b,c',
      'istiod-not-ready:a',
      'istiod-not-ready:b',
      'remote-secret-for-non-member:a,x',
      'grant-too-broad',
      'root-ca-mismatch:a',
    ]);
  });

  it('puts a shorter cluster list first when one is a prefix of the other', () => {
    const sorted = sortFindings([
      finding('error', 'network-clash', ['a', 'b']),
      finding('error', 'network-clash', ['a']),
    ]);
    expect(sorted.map(f => f.clusters)).toEqual([['a'], ['a', 'b']]);
  });

  it('is deterministic and leaves its input alone', () => {
    const findings = [
      finding('warning', 'mesh-networks-missing-member', ['b', 'a']),
      finding('error', 'mesh-id-clash', ['a', 'b']),
      finding('warning', 'mesh-networks-missing-member', ['a', 'b']),
    ];
    const copy = [...findings];
    const sorted = sortFindings(findings);
    expect(findings).toEqual(copy);
    expect(sortFindings([...findings].reverse())).toEqual(sorted);
    expect(sorted.map(f => f.id)).toEqual([
      'mesh-id-clash:a,b',
      'mesh-networks-missing-member:a,b',
      'mesh-networks-missing-member:b,a',
    ]);
  });
});
