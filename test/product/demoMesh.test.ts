import {
  AuditFinding,
  ClustersResponse,
  MembershipResponse,
} from '@tailmesh/plugin-mesh-common';
import { clustersToJoin, wiredButUnverified } from './demoMesh';

function clusters(members: Record<string, boolean>): ClustersResponse {
  return {
    generatedAt: '2026-01-01T00:00:00Z',
    clusters: Object.entries(members).map(
      ([name, member]) => ({ name, member, sync: { state: 'ok' } }) as never,
    ),
  };
}

function membership(findings: Partial<AuditFinding>[]): MembershipResponse {
  return {
    clusters: [],
    matrix: [],
    generatedAt: '2026-01-01T00:00:00Z',
    findings: findings as AuditFinding[],
  };
}

describe('clustersToJoin', () => {
  it('joins the clusters that are not members yet, in the order asked', () => {
    expect(
      clustersToJoin(
        ['cluster1', 'cluster2'],
        clusters({ cluster1: false, cluster2: false, cluster3: false }),
        membership([]),
      ),
    ).toEqual(['cluster1', 'cluster2']);
  });

  it('skips members in good shape, so a re-run of npm start converges', () => {
    expect(
      clustersToJoin(
        ['cluster1', 'cluster2'],
        clusters({ cluster1: true, cluster2: false }),
        membership([
          {
            severity: 'warning',
            clusters: ['cluster1'],
            kind: 'grant-too-broad',
          },
        ]),
      ),
    ).toEqual(['cluster2']);
  });

  it('joins a member again when an error finding involves it (an interrupted join)', () => {
    expect(
      clustersToJoin(
        ['cluster1', 'cluster2'],
        clusters({ cluster1: true, cluster2: true }),
        membership([
          {
            severity: 'error',
            clusters: ['cluster2'],
            kind: 'gateway-without-address',
          },
        ]),
      ),
    ).toEqual(['cluster2']);
  });

  it("does not join again for what istiod reports: a re-run would only fail its verify step again", () => {
    expect(
      clustersToJoin(
        ['cluster1', 'cluster2'],
        clusters({ cluster1: true, cluster2: true }),
        membership([
          {
            severity: 'error',
            clusters: ['cluster1', 'cluster2'],
            kind: 'istiod-remote-unsynced',
          },
        ]),
      ),
    ).toEqual([]);
  });

  it('fails clearly on a cluster the backend does not know', () => {
    expect(() =>
      clustersToJoin(
        ['cluster9'],
        clusters({ cluster1: true }),
        membership([]),
      ),
    ).toThrow('cluster9 is not a configured cluster');
  });
});

describe('wiredButUnverified', () => {
  it('is a join that failed at mesh:verify only', () => {
    const wired = { wiring: 'completed', egress: 'skipped', verify: 'failed' };
    expect(wiredButUnverified({ status: 'failed', steps: wired })).toBe(true);
    expect(
      wiredButUnverified({ status: 'failed', steps: { ...wired, wiring: 'failed' } }),
    ).toBe(false);
    expect(
      wiredButUnverified({ status: 'completed', steps: { ...wired, verify: 'completed' } }),
    ).toBe(false);
    expect(wiredButUnverified({ status: 'cancelled', steps: wired })).toBe(false);
  });
});
