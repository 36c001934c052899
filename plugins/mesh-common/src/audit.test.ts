import { auditMesh, membershipMatrix, MeshClusterSnapshot } from './audit';
import { desiredMeshNetworks } from './meshNetworks';

const ROOT =
  'AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99';
const OTHER_ROOT =
  '11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00';
const names = ['east', 'west', 'central'];
const hostname = (c: string) => `${c}-istio-eastwestgateway.tail1234.ts.net`;
const networks = desiredMeshNetworks(
  names.map(c => ({
    cluster: c,
    network: `${c}-net`,
    gatewayAddress: hostname(c),
  })),
);

/** A healthy member of a healthy three-cluster mesh; tests break one thing at a time. */
function member(
  cluster: string,
  overrides: Partial<MeshClusterSnapshot> = {},
): MeshClusterSnapshot {
  const peers = names.filter(n => n !== cluster);
  return {
    cluster,
    network: `${cluster}-net`,
    meshId: 'mesh1',
    istiod: { ready: true, version: '1.28.0' },
    operator: { ready: true },
    gateway: { hostname: hostname(cluster), ip: '100.64.0.1' },
    rootFingerprint: ROOT,
    remoteSecretsFor: peers,
    egressFor: peers.flatMap(peer => [
      { peer, to: 'api-server-proxy' as const, ready: true },
      { peer, to: 'east-west-gateway' as const, ready: true },
    ]),
    meshNetworks: networks,
    tailnetDns: true,
    ...overrides,
  };
}

const healthy = () => names.map(n => member(n));
const withCluster = (name: string, overrides: Partial<MeshClusterSnapshot>) =>
  healthy().map(s => (s.cluster === name ? member(name, overrides) : s));
const kinds = (snapshots: MeshClusterSnapshot[]) =>
  auditMesh(snapshots).map(f => `${f.kind} ${f.clusters.join(',')}`);

describe('auditMesh', () => {
  it('finds nothing wrong in a healthy mesh', () => {
    expect(auditMesh(healthy())).toEqual([]);
  });

  it('finds the cluster whose root differs from the rest', () => {
    const [f] = auditMesh(withCluster('west', { rootFingerprint: OTHER_ROOT }));
    expect(f).toMatchObject({
      kind: 'root-ca-mismatch',
      severity: 'error',
      clusters: ['west'],
      id: 'root-ca-mismatch:west',
    });
    expect(f.fix).toMatch(/mesh:ca:issue-intermediate/);
  });

  it('finds a one-way remote secret, naming the cluster that lacks it first', () => {
    expect(
      kinds(withCluster('east', { remoteSecretsFor: ['central'] })),
    ).toEqual(['one-way-remote-secret east,west']);
  });

  it('finds a pair with no remote secret either way', () => {
    const snapshots = healthy().map(s =>
      s.cluster === 'central' ? s : { ...s, remoteSecretsFor: ['central'] },
    );
    expect(kinds(snapshots)).toEqual(['remote-secrets-missing east,west']);
  });

  it('warns about a remote secret for a cluster that is not a member', () => {
    const snapshots = [
      ...withCluster('east', { remoteSecretsFor: ['west', 'central', 'gone'] }),
    ];
    const [f] = auditMesh(snapshots);
    expect(f).toMatchObject({
      kind: 'remote-secret-for-non-member',
      severity: 'warning',
      clusters: ['east', 'gone'],
    });
  });

  it('does not blame a member for a remote secret to a cluster it cannot read', () => {
    const snapshots = [
      ...healthy(),
      {
        cluster: 'lab',
        error: { kind: 'timeout' as const, message: 'lab: timeout' },
        remoteSecretsFor: [],
        egressFor: [],
      },
    ].map(s =>
      s.cluster === 'east'
        ? { ...s, remoteSecretsFor: [...s.remoteSecretsFor, 'lab'] }
        : s,
    );
    expect(auditMesh(snapshots)).toEqual([]);
  });

  it("finds a peer istiod cannot sync, and names the members' Istio versions when they differ", () => {
    const reported = (status: 'synced' | 'timeout') => ({
      state: 'reported' as const,
      readAt: '2026-12-05T00:00:00.000Z',
      remotes: ['central', 'west'].map(cluster => ({
        cluster,
        status: cluster === 'west' ? status : ('synced' as const),
      })),
    });
    const east = (status: 'synced' | 'timeout') =>
      healthy().map(s =>
        s.cluster === 'east' ? { ...s, istiodRemotes: reported(status) } : s,
      );
    expect(auditMesh(east('synced'))).toEqual([]);
    const [same] = auditMesh(east('timeout'));
    expect(same).toMatchObject({
      kind: 'istiod-remote-unsynced',
      clusters: ['east', 'west'],
      message:
        "east's istiod reports west as \"timeout\": it cannot read west's API server, so east knows none of west's endpoints",
    });
    expect(same.fix).toMatch(
      /^Check the way from east to west's API server proxy/,
    );

    const skewed = east('timeout').map(s =>
      s.cluster === 'west'
        ? { ...s, istiod: { ready: true, version: '1.29.6' } }
        : s,
    );
    const [skew] = auditMesh(skewed);
    expect(skew.message).toMatch(
      /\(east runs istiod 1\.28\.0, west 1\.29\.6\)$/,
    );
    expect(skew.fix).toMatch(
      /^Run one Istio version on every member: .*istio-reader ClusterRole.*If that is not it, check the way from east to west's API server proxy/,
    );
  });

  it('finds a mesh id clash and a network clash', () => {
    expect(kinds(withCluster('west', { meshId: 'mesh2' }))).toEqual([
      'mesh-id-clash central,east,west',
    ]);
    const clash = kinds(withCluster('west', { network: 'east-net' }));
    expect(clash).toContain('network-clash east,west');
  });

  it('finds a gateway without an address and a missing gateway', () => {
    expect(kinds(withCluster('west', { gateway: {} }))).toEqual([
      'gateway-without-address west',
    ]);
    const [missing] = auditMesh(withCluster('west', { gateway: undefined }));
    expect(missing.message).toBe('west has no east-west gateway');
  });

  it('finds istiod and the operator not ready, missing egress and tailnet DNS', () => {
    expect(kinds(withCluster('west', { istiod: { ready: false } }))).toEqual([
      'istiod-not-ready west',
    ]);
    expect(kinds(withCluster('west', { operator: { ready: false } }))).toEqual([
      'operator-not-ready west',
    ]);
    expect(kinds(withCluster('west', { tailnetDns: false }))).toEqual([
      'tailnet-dns-missing west',
    ]);
  });

  it('finds missing and unwired egress Services, one finding per peer listing each problem', () => {
    const findings = auditMesh(
      withCluster('west', {
        egressFor: [
          { peer: 'east', to: 'api-server-proxy', ready: false },
          { peer: 'east', to: 'east-west-gateway', ready: true },
        ],
      }),
    );
    expect(findings.map(f => [f.id, f.severity])).toEqual([
      ['egress-missing:west,central', 'error'],
      ['egress-missing:west,east', 'error'],
    ]);
    expect(findings[0].message).toBe(
      "West has no egress Service for central's API proxy; west has no egress Service for central's east-west gateway",
    );
    expect(findings[1].message).toBe(
      "The egress Service in west for east's API proxy is not wired by the operator yet",
    );
    expect(findings[1].fix).toBe(
      'Run mesh:tailscale:create-egress for west with peer east.',
    );
  });

  it("finds a missing egress Service for a peer's east-west gateway alone", () => {
    const findings = auditMesh(
      withCluster('west', {
        egressFor: member('west').egressFor.filter(
          e => !(e.peer === 'east' && e.to === 'east-west-gateway'),
        ),
      }),
    );
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({
      id: 'egress-missing:west,east',
      kind: 'egress-missing',
      severity: 'error',
      clusters: ['west', 'east'],
      message: "West has no egress Service for east's east-west gateway",
    });
  });

  it("finds an unwired egress Service for a peer's east-west gateway", () => {
    const [f, ...rest] = auditMesh(
      withCluster('west', {
        egressFor: member('west').egressFor.map(e =>
          e.peer === 'central' && e.to === 'east-west-gateway'
            ? { ...e, ready: false }
            : e,
        ),
      }),
    );
    expect(rest).toEqual([]);
    expect(f.id).toBe('egress-missing:west,central');
    expect(f.message).toBe(
      "The egress Service in west for central's east-west gateway is not wired by the operator yet",
    );
  });

  it('does not take an egress Service named like neither target for either', () => {
    const egressFor = member('west').egressFor.map(e =>
      e.peer === 'east' ? { peer: e.peer, ready: true } : e,
    );
    expect(kinds(withCluster('west', { egressFor }))).toEqual([
      'egress-missing west,east',
    ]);
  });

  it("warns when pods other than istiod can reach a peer's API server proxy through the egress", () => {
    const egressFor = member('west').egressFor.map(e =>
      e.peer === 'east' && e.to === 'api-server-proxy'
        ? { ...e, openToPods: 'no NetworkPolicy selects its proxy pods' }
        : e,
    );
    const findings = auditMesh(withCluster('west', { egressFor }));
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({
      id: 'grant-reachable-from-pods:west,east',
      kind: 'grant-reachable-from-pods',
      severity: 'warning',
      clusters: ['west', 'east'],
      message:
        "Any pod in west can reach east's API server proxy through egress Service tailscale/east-k8s-operator (no NetworkPolicy selects its proxy pods), and with it the tailnet grant through which istiod reads every Secret in east",
    });
    expect(findings[0].fix).toContain(
      'NetworkPolicy tailscale/east-k8s-operator-istiod-only',
    );
    // The gateway egress carries data-plane traffic from any pod by design: never judged.
    const gateway = member('west').egressFor.map(e =>
      e.to === 'east-west-gateway' ? { ...e, openToPods: 'anything' } : e,
    );
    expect(kinds(withCluster('west', { egressFor: gateway }))).toEqual([]);
  });

  it('leaves egress alone where the operator is not installed', () => {
    expect(
      kinds(withCluster('west', { operator: undefined, egressFor: [] })),
    ).toEqual([]);
  });

  it('finds meshNetworks missing a member or pointing at an old address', () => {
    const partial = desiredMeshNetworks([
      {
        cluster: 'east',
        network: 'east-net',
        gatewayAddress: hostname('east'),
      },
      { cluster: 'west', network: 'west-net', gatewayAddress: '100.64.9.9' },
    ]);
    expect(kinds(withCluster('east', { meshNetworks: partial }))).toEqual([
      'mesh-networks-missing-member east,central',
      'mesh-networks-wrong-address east,west',
    ]);
  });

  it('skips meshNetworks checks where meshNetworks is not used (gateways discovered by label)', () => {
    expect(
      auditMesh(withCluster('east', { meshNetworks: { networks: {} } })),
    ).toEqual([]);
  });

  it('sorts errors before warnings', () => {
    const findings = auditMesh(
      withCluster('east', {
        remoteSecretsFor: ['central', 'gone'],
        istiod: { ready: false },
      }),
    );
    expect(findings.map(f => f.severity)).toEqual([
      'error',
      'error',
      'warning',
    ]);
  });
});

describe('auditMesh: CA expiry', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const inDays = (d: number) =>
    new Date(now.getTime() + d * 24 * 60 * 60 * 1000).toISOString();
  const audit = (caNotAfter: MeshClusterSnapshot['caNotAfter']) =>
    auditMesh(withCluster('west', { caNotAfter }), { now }).filter(
      f => f.kind === 'ca-expiring',
    );

  it('says nothing while both certificates have more than 90 days', () => {
    expect(audit({ root: inDays(3000), intermediate: inDays(91) })).toEqual([]);
    expect(audit(undefined)).toEqual([]);
  });

  it("warns when a member's intermediate nears its end, naming the date and the fix", () => {
    const [f] = audit({ root: inDays(3000), intermediate: inDays(30) });
    expect(f).toMatchObject({ severity: 'warning', clusters: ['west'] });
    expect(f.message).toBe(
      `west's intermediate CA expires on ${inDays(30)} (in 30 days)`,
    );
    expect(f.fix).toContain('mesh:ca:issue-intermediate for west');
  });

  it('is an error once a certificate has expired, and names the root too', () => {
    const [f] = audit({ root: inDays(10), intermediate: inDays(-1) });
    expect(f.severity).toBe('error');
    expect(f.message).toContain("west's intermediate CA expired on");
    expect(f.message).toContain("west's mesh root CA expires on");
    expect(f.fix).toContain('Rotate the mesh root');
  });

  it('ignores a date it cannot read', () => {
    expect(audit({ intermediate: 'soon' })).toEqual([]);
  });
});

describe('membershipMatrix', () => {
  it('is an N x N matrix of members in name order', () => {
    const snapshots = withCluster('east', {
      remoteSecretsFor: ['central'],
      meshNetworks: { networks: {} },
    });
    const { clusters, matrix } = membershipMatrix(snapshots);
    expect(clusters).toEqual(['central', 'east', 'west']);
    expect(
      matrix[1].map(c => [c.to, c.remoteSecret, c.gatewayInMeshNetworks]),
    ).toEqual([
      ['central', 'present', 'not-applicable'],
      ['east', 'not-applicable', 'not-applicable'],
      ['west', 'missing', 'not-applicable'],
    ]);
    expect(matrix[0][2]).toEqual({
      from: 'central',
      to: 'west',
      remoteSecret: 'present',
      gatewayInMeshNetworks: 'present',
      // No istiod view was read for these snapshots.
      istiodSync: 'unknown',
    });
  });

  it('leaves out clusters that are not members', () => {
    const { clusters } = membershipMatrix([
      ...healthy(),
      { cluster: 'bare', remoteSecretsFor: [], egressFor: [] },
    ]);
    expect(clusters).toEqual(['central', 'east', 'west']);
  });
});

describe('a hundred-cluster mesh', () => {
  const fleet = Array.from(
    { length: 100 },
    (_, i) => `c${String(i).padStart(3, '0')}`,
  );
  const fleetNetworks = desiredMeshNetworks(
    fleet.map(c => ({
      cluster: c,
      network: `${c}-net`,
      gatewayAddress: hostname(c),
    })),
  );
  const snapshots = fleet.map(cluster => {
    const peers = fleet.filter(n => n !== cluster);
    return member(cluster, {
      remoteSecretsFor: peers,
      egressFor: peers.flatMap(peer => [
        { peer, to: 'api-server-proxy' as const, ready: true },
        { peer, to: 'east-west-gateway' as const, ready: true },
      ]),
      meshNetworks: fleetNetworks,
    });
  });

  it('is judged healthy, with its 100 x 100 matrix, in well under a second', () => {
    const started = performance.now();
    const findings = auditMesh(snapshots);
    const audited = performance.now();
    const { clusters, matrix } = membershipMatrix(snapshots);
    const done = performance.now();
    // The figure for the issue note (100 clusters: audit and matrix time).
    process.stdout.write(
      `100 members: audit ${(audited - started).toFixed(1)} ms, matrix ${(done - audited).toFixed(1)} ms\n`,
    );
    expect(findings).toEqual([]);
    expect(clusters).toHaveLength(100);
    expect(matrix.map(row => row.length)).toEqual(fleet.map(() => 100));
    const cells = matrix.flat().filter(cell => cell.from !== cell.to);
    expect(cells).toHaveLength(100 * 99);
    expect(
      cells.every(
        cell =>
          cell.remoteSecret === 'present' &&
          cell.gatewayInMeshNetworks === 'present',
      ),
    ).toBe(true);
    expect(done - started).toBeLessThan(1000);
  });

  it('names the one member a peer cannot reach, among a hundred', () => {
    const broken = snapshots.map(s =>
      s.cluster === 'c042'
        ? {
            ...s,
            remoteSecretsFor: (s.remoteSecretsFor ?? []).filter(
              p => p !== 'c007',
            ),
          }
        : s,
    );
    expect(
      auditMesh(broken).map(f => `${f.kind} ${f.clusters.join(',')}`),
    ).toEqual(['one-way-remote-secret c042,c007']);
  });
});
