import { auditMesh, MeshClusterSnapshot } from './audit';
import {
  auditMissingGrants,
  auditTailnetPolicy,
  TAILSCALE_API_PROXY_PORT,
} from './auditTailnetPolicy';
import { EAST_WEST_TLS_PORT } from './istio';
import { ISTIO_REMOTE_READERS_GROUP } from './remoteAccess';
import {
  TAG_ISTIO_EAST_WEST_GATEWAY,
  TAG_K8S_OPERATOR,
  TAG_K8S_PROXY,
  TAG_MESH_EGRESS,
  TAILSCALE_KUBERNETES_CAPABILITY,
} from './tailscale';

const CLUSTERS = ['east', 'west'];

/** The Kubernetes capability the API server proxies need, impersonating Istio's readers only. */
const readerCapability = () => ({
  [TAILSCALE_KUBERNETES_CAPABILITY]: [
    { impersonate: { groups: [ISTIO_REMOTE_READERS_GROUP] } },
  ],
});

/** The grants mesh:tailscale:grant-access writes: what the mesh needs and no more. */
const meshGrants = () => [
  {
    src: [TAG_MESH_EGRESS],
    dst: [TAG_K8S_OPERATOR],
    ip: [`tcp:${TAILSCALE_API_PROXY_PORT}`],
    app: readerCapability(),
  },
  {
    src: [TAG_MESH_EGRESS],
    dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
    ip: [`tcp:${EAST_WEST_TLS_PORT}`],
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

  it('flags autogroup:member where tag:tailmesh-egress is enough for the API proxies', () => {
    const grant = meshGrants()[0];
    const f = single({
      grants: [{ ...grant, src: ['autogroup:member'] }, meshGrants()[1]],
    });
    expect(f.message).toContain(
      `lets autogroup:member reach ${TAG_K8S_OPERATOR}, where the mesh needs only ${TAG_MESH_EGRESS}`,
    );
    expect(f.fix).toContain(`use src ["${TAG_MESH_EGRESS}"]`);
  });

  it('flags autogroup:tagged toward the gateways, suggesting tag:tailmesh-egress', () => {
    const f = single({
      grants: [
        meshGrants()[0],
        { ...meshGrants()[1], src: ['autogroup:tagged'] },
      ],
    });
    expect(f.message).toContain(
      `grants[1] (autogroup:tagged → ${TAG_ISTIO_EAST_WEST_GATEWAY}) lets autogroup:tagged reach ${TAG_ISTIO_EAST_WEST_GATEWAY}, where the mesh needs only ${TAG_MESH_EGRESS}`,
    );
    expect(f.fix).toContain(`use src ["${TAG_MESH_EGRESS}"] in grants[1]`);
  });

  it("flags a range toward the gateways that holds ports besides the mTLS port (the chart's istiod ports included)", () => {
    const f = single(
      policyWith({
        src: [TAG_MESH_EGRESS],
        dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
        ip: ['tcp:15443-15444'],
      }),
    );
    expect(f.message).toContain('"tcp:15443-15444"');
    expect(f.fix).toContain(
      `tcp:${EAST_WEST_TLS_PORT} on ${TAG_ISTIO_EAST_WEST_GATEWAY}`,
    );
    // 15021 is the gateway's readiness port: the cluster probes it, no peer does.
    expect(f.fix).not.toContain('15021');
  });

  it('flags system:masters impersonated by the egress proxies', () => {
    const f = single({
      grants: [
        {
          ...meshGrants()[0],
          app: {
            [TAILSCALE_KUBERNETES_CAPABILITY]: [
              { impersonate: { groups: ['system:masters'] } },
            ],
          },
        },
        meshGrants()[1],
      ],
    });
    expect(f.message).toContain(
      `lets ${TAG_MESH_EGRESS} impersonate system:masters`,
    );
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
    // "*" → "*" on every port opens the network but grants no Kubernetes capability.
    expect(findings.map(f => [f.id, f.severity])).toEqual([
      ['grant-missing:east,west', 'error'],
      ['grant-too-broad:east,west', 'warning'],
    ]);
    expect(findings[0].clusters).toEqual(['east', 'west']);
  });

  it("finds nothing in the mesh's own grants", () => {
    expect(
      auditMesh(snapshots, { tailnetPolicy: { grants: meshGrants() } }),
    ).toEqual([]);
  });

  it('raises grant-missing for the members when the policy lacks the grants', () => {
    const findings = auditMesh(snapshots, { tailnetPolicy: {} });
    expect(findings.map(f => f.id)).toEqual(['grant-missing:east,west']);
  });

  it('raises no grant-missing for a single member: it has no peer to reach', () => {
    const alone: MeshClusterSnapshot = {
      ...member('east', 1),
      remoteSecretsFor: [],
    };
    expect(
      auditMesh(
        [alone, { cluster: 'outsider', remoteSecretsFor: [], egressFor: [] }],
        { tailnetPolicy: {} },
      ),
    ).toEqual([]);
  });

  it('skips the grant checks while the policy is unknown', () => {
    expect(auditMesh(snapshots)).toEqual([]);
    expect(auditMesh(snapshots, { tailnetPolicy: undefined })).toEqual([]);
  });
});

describe('auditMissingGrants', () => {
  const API_NETWORK = `network access from ${TAG_MESH_EGRESS} to tcp:${TAILSCALE_API_PROXY_PORT} on ${TAG_K8S_OPERATOR}`;
  const API_CAPABILITY = `the ${TAILSCALE_KUBERNETES_CAPABILITY} capability from ${TAG_MESH_EGRESS} to ${TAG_K8S_OPERATOR} impersonating ${ISTIO_REMOTE_READERS_GROUP}`;
  const GATEWAY_NETWORK = `network access from ${TAG_MESH_EGRESS} to tcp:${EAST_WEST_TLS_PORT} on ${TAG_ISTIO_EAST_WEST_GATEWAY}`;
  const ALL = [API_NETWORK, API_CAPABILITY, GATEWAY_NETWORK];

  /** Which of the needed flows the one `grant-missing` finding names; [] when there is none. */
  function missingFlows(policy: unknown): string[] {
    const findings = auditMissingGrants(policy, CLUSTERS);
    expect(findings.length).toBeLessThanOrEqual(1);
    if (findings.length === 0) return [];
    const named = ALL.filter(what => findings[0].message.includes(what));
    expect(named).not.toEqual([]);
    return named;
  }

  it("accepts the mesh's own grants, alone or beside the admin's", () => {
    expect(auditMissingGrants({ grants: meshGrants() }, CLUSTERS)).toEqual([]);
    expect(auditMissingGrants(policyWith(), CLUSTERS)).toEqual([]);
  });

  it('names every missing flow in one error for the members', () => {
    expect(missingFlows({ grants: adminGrants() })).toEqual(ALL);
    const [f] = auditMissingGrants({ grants: adminGrants() }, CLUSTERS);
    expect(f).toMatchObject({
      id: 'grant-missing:east,west',
      kind: 'grant-missing',
      severity: 'error',
      clusters: CLUSTERS,
    });
    expect(f.message).toMatch(
      /^The tailnet policy file lacks what the mesh's traffic needs/,
    );
    expect(f.message).toContain("istiod's calls to peers' API server proxies");
    expect(f.message).toContain("pods' requests to peers' east-west gateways");
    expect(f.fix).toContain('mesh:tailscale:grant-access');
    expect(f.fix).toContain(ISTIO_REMOTE_READERS_GROUP);
    expect(f.fix).toContain(`"ip": ["tcp:${EAST_WEST_TLS_PORT}"]`);
  });

  it('treats what is not a policy as one without grants', () => {
    for (const policy of [null, 'text', [], {}, { grants: 'x' }]) {
      expect(missingFlows(policy)).toEqual(ALL);
    }
  });

  it("names the API proxies' network access alone when only it is missing", () => {
    const [api, gateway] = meshGrants();
    const { ip: _ip, ...appOnly } = api;
    expect(missingFlows({ grants: [appOnly, gateway] })).toEqual([API_NETWORK]);
  });

  it('names the Kubernetes capability alone when only it is missing', () => {
    const [api, gateway] = meshGrants();
    const { app: _app, ...networkOnly } = api;
    expect(missingFlows({ grants: [networkOnly, gateway] })).toEqual([
      API_CAPABILITY,
    ]);
  });

  it("names the gateways' network access alone when only it is missing", () => {
    expect(missingFlows({ grants: [meshGrants()[0]] })).toEqual([
      GATEWAY_NETWORK,
    ]);
  });

  it('does not count an app grant as network access', () => {
    expect(
      missingFlows({
        grants: [
          {
            src: [TAG_MESH_EGRESS],
            dst: [TAG_K8S_OPERATOR, TAG_ISTIO_EAST_WEST_GATEWAY],
            app: readerCapability(),
          },
        ],
      }),
    ).toEqual([API_NETWORK, GATEWAY_NETWORK]);
  });

  it('lacks everything with the grants grant-access used to write', () => {
    expect(
      missingFlows({
        grants: [
          {
            src: [TAG_K8S_PROXY],
            dst: [TAG_K8S_OPERATOR],
            app: readerCapability(),
          },
          {
            src: [TAG_ISTIO_EAST_WEST_GATEWAY],
            dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
            ip: ['tcp:15021', 'tcp:15443', 'tcp:15012', 'tcp:15017'],
          },
        ],
      }),
    ).toEqual(ALL);
  });

  it.each([
    ['UDP on the port', 'udp:443', 'udp:15443'],
    ['another TCP port', 'tcp:4430', 'tcp:15444'],
    ['a range that misses the port', 'tcp:1-442', 'tcp:15444-16000'],
    ['ICMP', 'icmp:*', '1:*'],
    ['UDP by its IANA number', '17:443', '17:15443'],
  ])('does not count %s', (_what, apiEntry, gatewayEntry) => {
    const [api, gateway] = meshGrants();
    expect(
      missingFlows({
        grants: [
          { ...api, ip: [apiEntry] },
          { ...gateway, ip: [gatewayEntry] },
        ],
      }),
    ).toEqual([API_NETWORK, GATEWAY_NETWORK]);
  });

  it.each([
    ['a port range', 'tcp:400-500', 'tcp:15000-16000'],
    ['a bare port (every protocol)', '443', '15443'],
    ['every TCP port', 'tcp:*', 'tcp:*'],
    ['every port', '*', '*'],
    ['a list of ports', 'tcp:80,443', 'tcp:15021,15443'],
    ['TCP by its IANA number', '6:443', '6:15443'],
  ])('counts %s as network access', (_what, apiEntry, gatewayEntry) => {
    const [api, gateway] = meshGrants();
    expect(
      auditMissingGrants(
        {
          grants: [
            { ...api, ip: [apiEntry] },
            { ...gateway, ip: [gatewayEntry] },
          ],
        },
        CLUSTERS,
      ),
    ).toEqual([]);
  });

  it.each([['*'], ['autogroup:tagged']])(
    'counts src %j: it takes in the egress proxies',
    src => {
      const [api, gateway] = meshGrants();
      expect(
        auditMissingGrants(
          {
            grants: [
              { ...api, src: [src] },
              { ...gateway, src: [src] },
            ],
          },
          CLUSTERS,
        ),
      ).toEqual([]);
    },
  );

  it.each([['autogroup:member'], [TAG_K8S_PROXY], ['group:platform']])(
    'does not count src %j: it does not take in the egress proxies',
    src => {
      const [api, gateway] = meshGrants();
      expect(
        missingFlows({
          grants: [
            { ...api, src: [src] },
            { ...gateway, src: [src] },
          ],
        }),
      ).toEqual(ALL);
    },
  );

  it('counts dst "*": it takes in the operators and the gateways', () => {
    expect(
      auditMissingGrants(
        {
          grants: [
            {
              src: [TAG_MESH_EGRESS],
              dst: ['*'],
              ip: ['tcp:443', 'tcp:15443'],
              app: readerCapability(),
            },
          ],
        },
        CLUSTERS,
      ),
    ).toEqual([]);
  });

  it('does not count a grant to the wrong tag', () => {
    const [api, gateway] = meshGrants();
    expect(
      missingFlows({
        grants: [
          { ...api, dst: [TAG_ISTIO_EAST_WEST_GATEWAY] },
          { ...gateway, dst: [TAG_K8S_OPERATOR] },
        ],
      }),
    ).toEqual(ALL);
  });

  it('does not count the capability impersonating another group', () => {
    const [api, gateway] = meshGrants();
    expect(
      missingFlows({
        grants: [
          {
            ...api,
            app: {
              [TAILSCALE_KUBERNETES_CAPABILITY]: [
                { impersonate: { groups: ['system:masters'] } },
              ],
            },
          },
          gateway,
        ],
      }),
    ).toEqual([API_CAPABILITY]);
  });

  it('counts network access and the capability given in separate grants', () => {
    const [api, gateway] = meshGrants();
    const { app: _app, ...networkOnly } = api;
    const { ip: _ip, ...appOnly } = api;
    expect(
      auditMissingGrants({ grants: [networkOnly, appOnly, gateway] }, CLUSTERS),
    ).toEqual([]);
  });

  it('counts legacy ACL rows as network access, but not as the capability', () => {
    const [api] = meshGrants();
    const { ip: _ip, ...appOnly } = api;
    const acl = {
      action: 'accept',
      src: [TAG_MESH_EGRESS],
      dst: [
        `${TAG_K8S_OPERATOR}:${TAILSCALE_API_PROXY_PORT}`,
        `${TAG_ISTIO_EAST_WEST_GATEWAY}:${EAST_WEST_TLS_PORT}`,
      ],
    };
    expect(
      auditMissingGrants({ grants: [appOnly], acls: [acl] }, CLUSTERS),
    ).toEqual([]);
    expect(missingFlows({ acls: [acl] })).toEqual([API_CAPABILITY]);
  });

  it('reads legacy users/ports rows, their proto, and "*" rows', () => {
    const [api] = meshGrants();
    const { ip: _ip, ...appOnly } = api;
    expect(
      auditMissingGrants(
        {
          grants: [appOnly],
          acls: [
            {
              action: 'accept',
              users: [TAG_MESH_EGRESS],
              ports: [
                `${TAG_K8S_OPERATOR}:400-500`,
                `${TAG_ISTIO_EAST_WEST_GATEWAY}:*`,
              ],
            },
          ],
        },
        CLUSTERS,
      ),
    ).toEqual([]);
    expect(
      auditMissingGrants(
        {
          grants: [appOnly],
          acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }],
        },
        CLUSTERS,
      ),
    ).toEqual([]);
    expect(
      missingFlows({
        grants: [appOnly],
        acls: [
          {
            action: 'accept',
            src: [TAG_MESH_EGRESS],
            proto: 'udp',
            dst: [
              `${TAG_K8S_OPERATOR}:${TAILSCALE_API_PROXY_PORT}`,
              `${TAG_ISTIO_EAST_WEST_GATEWAY}:${EAST_WEST_TLS_PORT}`,
            ],
          },
        ],
      }),
    ).toEqual([API_NETWORK, GATEWAY_NETWORK]);
  });
});
