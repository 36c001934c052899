import { auditMesh, MeshClusterSnapshot } from './audit';
import {
  auditTailnetPolicy,
  TAILSCALE_API_PROXY_PORT,
} from './auditTailnetPolicy';
import { EAST_WEST_GATEWAY_PORTS } from './istio';
import { ISTIO_REMOTE_READERS_GROUP } from './remoteAccess';
import {
  TAG_ISTIO_EAST_WEST_GATEWAY,
  TAG_K8S_OPERATOR,
  TAG_K8S_PROXY,
  TAILSCALE_KUBERNETES_CAPABILITY,
} from './tailscale';

const CLUSTERS = ['east', 'west'];

/** The grants mesh:tailscale:grant-access writes: what the mesh needs and no more. */
const meshGrants = () => [
  {
    src: [TAG_K8S_PROXY],
    dst: [TAG_K8S_OPERATOR],
    app: {
      [TAILSCALE_KUBERNETES_CAPABILITY]: [
        { impersonate: { groups: [ISTIO_REMOTE_READERS_GROUP] } },
      ],
    },
  },
  {
    src: [TAG_ISTIO_EAST_WEST_GATEWAY],
    dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
    ip: EAST_WEST_GATEWAY_PORTS.map(p => `tcp:${p.port}`),
  },
];

/** The admin's own entries of the test bed's fixture, which are not the mesh's business. */
const adminGrants = () => [
  { src: ['autogroup:member'], dst: ['autogroup:self'], ip: ['*'] },
  { src: ['tag:ci'], dst: ['tag:monitoring'], ip: ['tcp:22', 'tcp:443'] },
  {
    src: ['group:platform'],
    dst: [TAG_K8S_OPERATOR],
    app: {
      [TAILSCALE_KUBERNETES_CAPABILITY]: [
        { impersonate: { groups: ['system:masters'] } },
      ],
    },
  },
  { src: ['group:platform'], dst: ['*'], ip: ['tcp:22'] },
  {
    src: ['tag:monitoring'],
    dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
    ip: ['tcp:15090'],
  },
];

const policyWith = (...extra: unknown[]) => ({
  grants: [...meshGrants(), ...adminGrants(), ...extra],
});

function single(policy: unknown) {
  const findings = auditTailnetPolicy(policy, CLUSTERS);
  expect(findings).toHaveLength(1);
  return findings[0];
}

describe('auditTailnetPolicy', () => {
  it("accepts the mesh's own grants beside the admin's", () => {
    expect(auditTailnetPolicy(policyWith(), CLUSTERS)).toEqual([]);
  });

  it('ignores what is not a policy, or not a grant', () => {
    for (const policy of [
      null,
      'text',
      [],
      {},
      { grants: 'x' },
      { grants: [null, 1, { src: 'x' }] },
    ]) {
      expect(auditTailnetPolicy(policy, CLUSTERS)).toEqual([]);
    }
  });

  it.each([
    ['every port', '*'],
    ['every TCP port', 'tcp:*'],
    ['a range beyond the east-west ports', 'tcp:15000-16000'],
    ['a list with a wildcard', 'tcp:15443,*'],
  ])('flags %s toward the east-west gateways', (_what, entry) => {
    const f = single(
      policyWith({
        src: [TAG_ISTIO_EAST_WEST_GATEWAY],
        dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
        ip: [entry],
      }),
    );
    expect(f).toMatchObject({
      id: 'grant-too-broad:east,west',
      kind: 'grant-too-broad',
      severity: 'warning',
      clusters: CLUSTERS,
    });
    expect(f.message).toContain(JSON.stringify(entry));
    expect(f.message).toContain(`grants[7]`);
    expect(f.fix).toContain('tcp:15443');
    expect(f.fix).toContain('mesh:tailscale:grant-access');
  });

  it('accepts a range that holds only the ports the mesh uses', () => {
    expect(
      auditTailnetPolicy(
        policyWith({
          src: [TAG_ISTIO_EAST_WEST_GATEWAY],
          dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
          ip: ['tcp:15443-15443', `${TAILSCALE_API_PROXY_PORT}`],
        }),
        CLUSTERS,
      ),
    ).toEqual([]);
  });

  it('flags dst "*" with every port: it takes in the gateways and the API proxies', () => {
    const f = single(policyWith({ src: ['*'], dst: ['*'], ip: ['*'] }));
    expect(f.message).toContain(
      `to ${TAG_ISTIO_EAST_WEST_GATEWAY} and ${TAG_K8S_OPERATOR}`,
    );
    expect(f.message).toContain('dst "*"');
    expect(f.fix).toContain(
      `tcp:${TAILSCALE_API_PROXY_PORT} on ${TAG_K8S_OPERATOR}`,
    );
  });

  it('flags the recipe grant: system:masters impersonated by the operators', () => {
    const f = single({
      grants: [
        ...adminGrants(),
        {
          src: [TAG_K8S_OPERATOR],
          dst: [TAG_K8S_OPERATOR],
          app: {
            [TAILSCALE_KUBERNETES_CAPABILITY]: [
              { impersonate: { groups: ['system:masters'] } },
            ],
          },
        },
      ],
    });
    expect(f.message).toMatch(/impersonate system:masters/);
    expect(f.fix).toContain(
      `impersonate only the group ${ISTIO_REMOTE_READERS_GROUP}`,
    );
  });

  it('flags autogroup:member where tag:k8s is enough for the API proxies', () => {
    const grant = meshGrants()[0];
    const f = single({
      grants: [{ ...grant, src: ['autogroup:member'] }, meshGrants()[1]],
    });
    expect(f.message).toContain(
      `lets autogroup:member reach ${TAG_K8S_OPERATOR}, where the mesh needs only ${TAG_K8S_PROXY}`,
    );
    expect(f.fix).toContain(`use src ["${TAG_K8S_PROXY}"]`);
  });

  it('flags the Kubernetes capability toward dst "*" for everyone', () => {
    const f = single({
      grants: [
        {
          src: ['*'],
          dst: ['*'],
          app: {
            [TAILSCALE_KUBERNETES_CAPABILITY]: [
              { impersonate: { groups: [ISTIO_REMOTE_READERS_GROUP] } },
            ],
          },
        },
      ],
    });
    expect(f.message).toContain('lets * reach');
  });

  it('judges legacy ACL rows like grants', () => {
    const f = single({
      grants: meshGrants(),
      acls: [
        { action: 'accept', src: ['group:platform'], dst: ['tag:ci:22'] },
        { action: 'accept', src: ['*'], dst: ['*:*'] },
      ],
    });
    expect(f.message).toContain('acls[1] (* → *)');
    expect(
      auditTailnetPolicy(
        {
          acls: [
            {
              action: 'accept',
              users: [TAG_ISTIO_EAST_WEST_GATEWAY],
              ports: [`${TAG_ISTIO_EAST_WEST_GATEWAY}:15443`],
            },
          ],
        },
        CLUSTERS,
      ),
    ).toEqual([]);
  });

  it('lists every broad grant in one finding', () => {
    const f = single(
      policyWith(
        { src: ['*'], dst: ['*'], ip: ['*'] },
        {
          src: [TAG_K8S_PROXY],
          dst: [TAG_K8S_OPERATOR],
          app: {
            [TAILSCALE_KUBERNETES_CAPABILITY]: [
              { impersonate: { groups: ['system:masters'] } },
            ],
          },
        },
      ),
    );
    expect(f.message).toContain('grants[7]');
    expect(f.message).toContain('grants[8]');
  });
});

describe('auditMesh with the tailnet policy', () => {
  const member = (cluster: string, n: number): MeshClusterSnapshot => ({
    cluster,
    network: `network${n}`,
    meshId: 'mesh1',
    istiod: { ready: true },
    gateway: { ip: `100.64.0.${n}` },
    remoteSecretsFor: CLUSTERS.filter(c => c !== cluster),
    egressFor: [],
  });
  const snapshots = [member('west', 2), member('east', 1)];
  const broad = { grants: [{ src: ['*'], dst: ['*'], ip: ['*'] }] };

  it('raises grant-too-broad for the members, sorted after the errors', () => {
    const findings = auditMesh(
      [
        ...snapshots,
        { cluster: 'outsider', remoteSecretsFor: [], egressFor: [] },
      ],
      { tailnetPolicy: broad },
    );
    expect(findings.map(f => f.id)).toEqual(['grant-too-broad:east,west']);
  });

  it('skips the grant checks while the policy is unknown', () => {
    expect(auditMesh(snapshots)).toEqual([]);
    expect(auditMesh(snapshots, { tailnetPolicy: undefined })).toEqual([]);
  });
});
