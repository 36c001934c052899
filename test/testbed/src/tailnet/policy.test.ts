/**
 * The tailnet policy model: what a policy file lets one node do to another, which capabilities it
 * hands out, and who may apply which tag. Expectations follow Tailscale's docs and the behaviour
 * captured from Tailscale's control plane that headscale publishes (see policy.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  compilePolicy,
  PolicyError,
  type TailnetNode,
  type TailnetUser,
} from './policy';

const alice: TailnetUser = { loginName: 'alice@example.com', role: 'admin' };
const bob: TailnetUser = { loginName: 'bob@example.com', role: 'member' };
const carol: TailnetUser = { loginName: 'carol@example.com', role: 'member' };
const dave: TailnetUser = {
  loginName: 'dave@example.com',
  role: 'network-admin',
};
const users = [alice, bob, carol, dave];

let nextHost = 1;
function node(
  name: string,
  identity: { tags?: string[]; user?: string; ipv4?: string; ipv6?: string },
): TailnetNode {
  const host = nextHost++;
  return {
    name: `${name}.tailmesh-test.ts.net`,
    ipv4: identity.ipv4 ?? `100.64.0.${host}`,
    ipv6: identity.ipv6 ?? `fd7a:115c:a1e0::${host.toString(16)}`,
    tags: identity.tags ?? [],
    user: identity.user,
  };
}

const compile = (text: string) => compilePolicy(text, { users });

/** Tailmesh's tag owners, its app grant to the operators and the east-west gateways' grant. */
const MESH_POLICY = `
// The mesh's part of the tailnet policy file.
{
	"groups": {"group:platform": ["alice@example.com", "bob@example.com"]},
	"tagOwners": {
		"tag:k8s-operator":          ["group:platform"],
		"tag:k8s":                   ["tag:k8s-operator"],
		"tag:istio-eastwestgateway": ["group:platform", "tag:k8s-operator"],
	},
	"grants": [
		{
			"src": ["tag:k8s"],
			"dst": ["tag:k8s-operator"],
			"app": {"tailscale.com/cap/kubernetes": [
				{"impersonate": {"groups": ["tailmesh:istio-remote-readers"]}},
			]},
		},
		{"src": ["tag:istio-eastwestgateway"], "dst": ["tag:istio-eastwestgateway"], "ip": ["tcp:15443"]},
	],
}`;

const IP_GRANT_TO_OPERATOR = `{"src": ["tag:k8s"], "dst": ["tag:k8s-operator"], "ip": ["tcp:443"]},`;

const operator1 = node('cluster1-k8s-operator', { tags: ['tag:k8s-operator'] });
const operator2 = node('cluster2-k8s-operator', { tags: ['tag:k8s-operator'] });
const egress1 = node('cluster1-egress', { tags: ['tag:k8s'] });
const gateway1 = node('cluster1-eastwest', {
  tags: ['tag:istio-eastwestgateway'],
});
const gateway2 = node('cluster2-eastwest', {
  tags: ['tag:istio-eastwestgateway'],
});
const aliceLaptop = node('alice-laptop', { user: alice.loginName });
const alicePhone = node('alice-phone', { user: alice.loginName });
const bobLaptop = node('bob-laptop', { user: bob.loginName });
const carolLaptop = node('carol-laptop', { user: carol.loginName });

describe('grants: the mesh policy', () => {
  it('gives an app-only grant capabilities but no network access', () => {
    const policy = compile(MESH_POLICY);
    expect(policy.allows(egress1, operator2, 'tcp', 443)).toBe(false);
    expect(policy.capabilities(egress1, operator2)).toEqual({
      'tailscale.com/cap/kubernetes': [
        { impersonate: { groups: ['tailmesh:istio-remote-readers'] } },
      ],
    });
    // The capability is for tag:k8s sources only, and on tag:k8s-operator destinations only.
    expect(policy.capabilities(gateway1, operator2)).toEqual({});
    expect(policy.capabilities(egress1, gateway2)).toEqual({});
  });

  it('opens exactly the granted protocol and port', () => {
    const policy = compile(
      MESH_POLICY.replace('"grants": [', `"grants": [${IP_GRANT_TO_OPERATOR}`),
    );
    expect(policy.allows(egress1, operator2, 'tcp', 443)).toBe(true);
    expect(policy.allows(egress1, operator2, 'tcp', 444)).toBe(false);
    expect(policy.allows(egress1, operator2, 'udp', 443)).toBe(false);
    // Grants are one-way: the operator may not open a connection back to the proxy.
    expect(policy.allows(operator2, egress1, 'tcp', 443)).toBe(false);
  });

  it('lets east-west gateways reach each other on their port only', () => {
    const policy = compile(MESH_POLICY);
    expect(policy.allows(gateway1, gateway2, 'tcp', 15443)).toBe(true);
    expect(policy.allows(gateway1, gateway2, 'tcp', 15012)).toBe(false);
    expect(policy.allows(operator1, gateway2, 'tcp', 15443)).toBe(false);
    expect(policy.allows(aliceLaptop, gateway2, 'tcp', 15443)).toBe(false);
  });

  it('reads a bare port as TCP and UDP, and "*" as every port', () => {
    const policy = compile(`{
      "tagOwners": {"tag:dns": [], "tag:web": []},
      "grants": [
        {"src": ["*"], "dst": ["tag:dns"], "ip": ["53"]},
        {"src": ["bob@example.com"], "dst": ["tag:web"], "ip": ["*"]},
        {"src": ["carol@example.com"], "dst": ["tag:web"], "ip": ["tcp:*", "udp:1000-2000"]},
      ],
    }`);
    const dns = node('dns', { tags: ['tag:dns'] });
    const web = node('web', { tags: ['tag:web'] });
    expect(policy.allows(bobLaptop, dns, 'udp', 53)).toBe(true);
    expect(policy.allows(bobLaptop, dns, 'tcp', 53)).toBe(true);
    expect(policy.allows(bobLaptop, dns, 'udp', 54)).toBe(false);
    expect(policy.allows(bobLaptop, web, 'udp', 65535)).toBe(true);
    expect(policy.allows(carolLaptop, web, 'tcp', 1)).toBe(true);
    expect(policy.allows(carolLaptop, web, 'udp', 2000)).toBe(true);
    expect(policy.allows(carolLaptop, web, 'udp', 2001)).toBe(false);
  });

  it('merges the capabilities of every matching grant in policy order', () => {
    const policy = compile(`{
      "tagOwners": {"tag:server": [], "tag:client": []},
      "grants": [
        {"src": ["*"], "dst": ["tag:server"], "app": {"example.com/cap/test": [{"v": 1}]}},
        {"src": ["tag:client"], "dst": ["tag:server", "*"], "app": {
          "example.com/cap/test": [{"v": 2}, {"v": 3}],
          "example.com/cap/other": [{}],
        }},
        {"src": ["tag:client"], "dst": ["bob@example.com"], "app": {"example.com/cap/test": [{"v": 4}]}},
      ],
    }`);
    const server = node('server', { tags: ['tag:server'] });
    const client = node('client', { tags: ['tag:client'] });
    const caps = policy.capabilities(client, server);
    expect(caps).toEqual({
      'example.com/cap/test': [{ v: 1 }, { v: 2 }, { v: 3 }],
      'example.com/cap/other': [{}],
    });
    // Callers get copies: changing them does not change the policy.
    (caps['example.com/cap/test'][0] as { v: number }).v = 99;
    expect(policy.capabilities(client, server)['example.com/cap/test']).toEqual(
      [{ v: 1 }, { v: 2 }, { v: 3 }],
    );
    expect(policy.capabilities(aliceLaptop, server)).toEqual({
      'example.com/cap/test': [{ v: 1 }],
    });
  });
});

describe('legacy acls', () => {
  const policy = compile(`{
    "groups": {"group:dev": ["bob@example.com", "Carol@Example.com"]},
    "hosts": {"build": "100.64.9.9", "lab": "10.20.0.0/16"},
    "tagOwners": {"tag:web": ["group:dev"], "tag:db": ["group:dev"]},
    "acls": [
      {"action": "accept", "src": ["group:dev"], "dst": ["tag:web:80,443", "tag:db:5000-5010"]},
      {"action": "accept", "src": ["bob@example.com"], "proto": "udp", "dst": ["tag:db:53"]},
      {"action": "accept", "src": ["carol@example.com"], "proto": "17", "dst": ["tag:db:54"]},
      {"action": "accept", "users": ["alice@example.com"], "ports": ["build:22", "100.64.8.0/24:8080"]},
      {"action": "accept", "src": ["tag:web"], "dst": ["fd7a:115c:a1e0:ab::/64:*", "[fd7a:115c:a1e0::99]:9"]},
    ],
  }`);
  const web = node('web', { tags: ['tag:web'] });
  const db = node('db', { tags: ['tag:db'] });

  it('opens listed ports and ranges, on TCP and UDP when no proto is given', () => {
    expect(policy.allows(bobLaptop, web, 'tcp', 80)).toBe(true);
    expect(policy.allows(bobLaptop, web, 'tcp', 443)).toBe(true);
    expect(policy.allows(bobLaptop, web, 'udp', 443)).toBe(true);
    expect(policy.allows(bobLaptop, web, 'tcp', 8080)).toBe(false);
    expect(policy.allows(bobLaptop, db, 'tcp', 5000)).toBe(true);
    expect(policy.allows(bobLaptop, db, 'tcp', 5010)).toBe(true);
    expect(policy.allows(bobLaptop, db, 'tcp', 5011)).toBe(false);
    // Each dst entry keeps its own ports: 80 is open on tag:web, not on tag:db.
    expect(policy.allows(bobLaptop, db, 'tcp', 80)).toBe(false);
  });

  it('restricts a row to its proto, by name or by number', () => {
    expect(policy.allows(bobLaptop, db, 'udp', 53)).toBe(true);
    expect(policy.allows(bobLaptop, db, 'tcp', 53)).toBe(false);
    expect(policy.allows(carolLaptop, db, 'udp', 54)).toBe(true);
    expect(policy.allows(carolLaptop, db, 'tcp', 54)).toBe(false);
  });

  it('matches group members (case-insensitively) and nobody else', () => {
    expect(policy.allows(carolLaptop, web, 'tcp', 80)).toBe(true);
    expect(policy.allows(aliceLaptop, web, 'tcp', 80)).toBe(false);
    // A tagged device is identified by its tags only, even if a group member set it up.
    const bobsServer = node('bob-server', {
      tags: ['tag:db'],
      user: bob.loginName,
    });
    expect(policy.allows(bobsServer, web, 'tcp', 80)).toBe(false);
  });

  it('reads the legacy users/ports spelling, host aliases and CIDRs', () => {
    const build = node('build', { ipv4: '100.64.9.9', tags: ['tag:web'] });
    const inSubnet = node('in-subnet', {
      ipv4: '100.64.8.77',
      user: bob.loginName,
    });
    const outside = node('outside', {
      ipv4: '100.64.7.77',
      user: bob.loginName,
    });
    expect(policy.allows(aliceLaptop, build, 'tcp', 22)).toBe(true);
    expect(policy.allows(aliceLaptop, build, 'tcp', 23)).toBe(false);
    expect(policy.allows(aliceLaptop, inSubnet, 'tcp', 8080)).toBe(true);
    expect(policy.allows(aliceLaptop, outside, 'tcp', 8080)).toBe(false);
  });

  it('matches IPv6 CIDRs and bracketed IPv6 addresses', () => {
    const v6Subnet = node('v6', {
      ipv6: 'fd7a:115c:a1e0:ab::5',
      user: bob.loginName,
    });
    const v6Host = node('v6-host', {
      ipv6: 'fd7a:115c:a1e0::99',
      user: bob.loginName,
    });
    const v6Other = node('v6-other', {
      ipv6: 'fd7a:115c:a1e0:ac::5',
      user: bob.loginName,
    });
    expect(policy.allows(web, v6Subnet, 'tcp', 1234)).toBe(true);
    expect(policy.allows(web, v6Host, 'udp', 9)).toBe(true);
    expect(policy.allows(web, v6Host, 'udp', 10)).toBe(false);
    expect(policy.allows(web, v6Other, 'tcp', 1234)).toBe(false);
  });
});

describe('selectors', () => {
  it('autogroup:self reaches the same user’s untagged devices only', () => {
    const policy = compile(`{
      "tagOwners": {"tag:server": []},
      "grants": [{"src": ["autogroup:member"], "dst": ["autogroup:self"], "ip": ["*"]}],
    }`);
    const aliceServer = node('alice-server', {
      tags: ['tag:server'],
      user: alice.loginName,
    });
    expect(policy.allows(aliceLaptop, alicePhone, 'tcp', 22)).toBe(true);
    expect(policy.allows(alicePhone, aliceLaptop, 'udp', 5353)).toBe(true);
    expect(policy.allows(aliceLaptop, bobLaptop, 'tcp', 22)).toBe(false);
    expect(policy.allows(aliceLaptop, aliceServer, 'tcp', 22)).toBe(false);
    expect(policy.allows(aliceServer, aliceLaptop, 'tcp', 22)).toBe(false);
  });

  it('autogroup:self with a user source covers that user only', () => {
    const policy = compile(`{
      "acls": [{"action": "accept", "src": ["bob@example.com"], "dst": ["autogroup:self:22"]}],
    }`);
    const bobPhone = node('bob-phone', { user: bob.loginName });
    expect(policy.allows(bobLaptop, bobPhone, 'tcp', 22)).toBe(true);
    expect(policy.allows(bobLaptop, bobPhone, 'tcp', 23)).toBe(false);
    expect(policy.allows(aliceLaptop, alicePhone, 'tcp', 22)).toBe(false);
  });

  it('autogroup:member, autogroup:tagged and role autogroups', () => {
    const policy = compile(`{
      "tagOwners": {"tag:a": [], "tag:b": []},
      "grants": [
        {"src": ["autogroup:member"], "dst": ["tag:a"], "ip": ["tcp:1"]},
        {"src": ["autogroup:tagged"], "dst": ["tag:a"], "ip": ["tcp:2"]},
        {"src": ["autogroup:admin"], "dst": ["tag:a"], "ip": ["tcp:3"]},
        {"src": ["autogroup:network-admin"], "dst": ["autogroup:member"], "ip": ["tcp:4"]},
      ],
    }`);
    const a = node('a', { tags: ['tag:a'] });
    const b = node('b', { tags: ['tag:b'] });
    const daveLaptop = node('dave-laptop', { user: dave.loginName });
    const stranger = node('stranger', { user: 'mallory@elsewhere.example' });
    expect(policy.allows(bobLaptop, a, 'tcp', 1)).toBe(true);
    expect(policy.allows(b, a, 'tcp', 1)).toBe(false);
    expect(policy.allows(stranger, a, 'tcp', 1)).toBe(false);
    expect(policy.allows(b, a, 'tcp', 2)).toBe(true);
    expect(policy.allows(bobLaptop, a, 'tcp', 2)).toBe(false);
    expect(policy.allows(aliceLaptop, a, 'tcp', 3)).toBe(true);
    expect(policy.allows(bobLaptop, a, 'tcp', 3)).toBe(false);
    expect(policy.allows(daveLaptop, bobLaptop, 'tcp', 4)).toBe(true);
    expect(policy.allows(daveLaptop, a, 'tcp', 4)).toBe(false);
  });

  it('user:*@<domain> selects the untagged devices of that domain’s users', () => {
    const policy = compile(`{
      "tagOwners": {"tag:server": []},
      "grants": [
        {"src": ["user:*@example.com"], "dst": ["tag:server"], "ip": ["tcp:22"]},
        {"src": ["tag:server"], "dst": ["user:*@example.org"], "ip": ["tcp:9100"]},
      ],
    }`);
    const server = node('server', { tags: ['tag:server'] });
    const outsider = node('outsider', { user: 'thor@example.org' });
    const taggedByBob = node('bob-ci', {
      tags: ['tag:server'],
      user: bob.loginName,
    });
    expect(policy.allows(bobLaptop, server, 'tcp', 22)).toBe(true);
    expect(policy.allows(outsider, server, 'tcp', 22)).toBe(false);
    expect(policy.allows(taggedByBob, server, 'tcp', 22)).toBe(false);
    expect(policy.allows(server, outsider, 'tcp', 9100)).toBe(true);
    expect(policy.allows(server, bobLaptop, 'tcp', 9100)).toBe(false);
    expect(() =>
      compile(
        '{"grants": [{"src": ["user:bob@example.com"], "dst": ["*"], "ip": ["*"]}]}',
      ),
    ).toThrow(/invalid selector "user:bob@example.com"/);
  });

  it('an empty src or dst list matches nothing', () => {
    const policy = compile(`{"grants": [
      {"src": [], "dst": ["*"], "ip": ["*"], "app": {"example.com/cap/x": [{}]}},
      {"src": ["*"], "dst": [], "ip": ["*"]},
    ]}`);
    expect(policy.allows(aliceLaptop, bobLaptop, 'tcp', 22)).toBe(false);
    expect(policy.capabilities(aliceLaptop, bobLaptop)).toEqual({});
  });

  it('treats tags missing from tagOwners as void', () => {
    const policy = compile(`{
      "tagOwners": {"tag:live": []},
      "grants": [
        {"src": ["*"], "dst": ["tag:live"], "ip": ["tcp:80"]},
        {"src": ["autogroup:tagged"], "dst": ["*"], "ip": ["tcp:81"]},
        {"src": ["bob@example.com"], "dst": ["*"], "ip": ["tcp:82"]},
      ],
    }`);
    const stale = node('stale', { tags: ['tag:gone'], user: bob.loginName });
    const mixed = node('mixed', { tags: ['tag:gone', 'tag:live', 'tag:live'] });
    expect(policy.effectiveTags(stale)).toEqual([]);
    expect(policy.effectiveTags(mixed)).toEqual(['tag:live']);
    expect(policy.allows(bobLaptop, mixed, 'tcp', 80)).toBe(true);
    expect(policy.allows(bobLaptop, stale, 'tcp', 80)).toBe(false);
    // A void tag gives no tag identity, and the device is not its user's either.
    expect(policy.allows(mixed, bobLaptop, 'tcp', 81)).toBe(true);
    expect(policy.allows(stale, bobLaptop, 'tcp', 81)).toBe(false);
    expect(policy.allows(stale, aliceLaptop, 'tcp', 82)).toBe(false);
    // "*" is every node of the tailnet.
    expect(policy.allows(stale, mixed, 'tcp', 80)).toBe(true);
  });

  it('matches nothing for selectors it does not model', () => {
    const policy = compile(`{
      "ipsets": {"ipset:all": ["100.64.0.0/10"]},
      "grants": [
        {"src": ["ipset:all"], "dst": ["*"], "ip": ["*"]},
        {"src": ["autogroup:shared"], "dst": ["*"], "ip": ["*"]},
        {"src": ["autogroup:no-such-group"], "dst": ["*"], "ip": ["*"]},
        {"src": ["*"], "dst": ["autogroup:internet"], "ip": ["*"]},
      ],
    }`);
    expect(policy.allows(aliceLaptop, bobLaptop, 'tcp', 22)).toBe(false);
    expect(policy.allows(bobLaptop, aliceLaptop, 'udp', 53)).toBe(false);
  });
});

describe('conditions the model cannot satisfy', () => {
  it('a grant with srcPosture matches nothing, the same grant without it does', () => {
    const grant = `{"src": ["*"], "dst": ["*"], "ip": ["tcp:22"], "app": {"example.com/cap/x": [{}]}`;
    const withPosture = compile(`{
      "postures": {"posture:latest": ["node:tsReleaseTrack == 'stable'"]},
      "grants": [${grant}, "srcPosture": ["posture:latest"]}],
    }`);
    expect(withPosture.allows(aliceLaptop, bobLaptop, 'tcp', 22)).toBe(false);
    expect(withPosture.capabilities(aliceLaptop, bobLaptop)).toEqual({});
    const without = compile(`{"grants": [${grant}}]}`);
    expect(without.allows(aliceLaptop, bobLaptop, 'tcp', 22)).toBe(true);
  });

  it('defaultSrcPosture conditions every rule without its own srcPosture', () => {
    const policy = compile(`{
      "postures": {"posture:mac": ["node:os == 'macos'"]},
      "defaultSrcPosture": ["posture:mac"],
      "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
    }`);
    expect(policy.allows(aliceLaptop, bobLaptop, 'tcp', 22)).toBe(false);
  });

  it('a via grant gives no node-to-node access', () => {
    const policy = compile(`{
      "tagOwners": {"tag:router": []},
      "grants": [{"src": ["*"], "dst": ["*"], "ip": ["*"], "via": ["tag:router"]}],
    }`);
    expect(policy.allows(aliceLaptop, bobLaptop, 'tcp', 22)).toBe(false);
  });
});

describe('mayApplyTag', () => {
  const policy = compile(`{
    "groups": {"group:platform": ["bob@example.com"]},
    "tagOwners": {
      "tag:k8s-operator":          ["group:platform"],
      "tag:k8s":                   ["tag:k8s-operator"],
      "tag:istio-eastwestgateway": ["tag:k8s-operator", "carol@example.com"],
      "tag:admins-only":           [],
      "tag:anyone":                ["autogroup:member"],
    },
  }`);

  it('lets a tag apply itself and the tags it owns, not the tags that own it', () => {
    const operator = { tags: ['tag:k8s-operator'] };
    expect(policy.mayApplyTag('tag:k8s-operator', operator)).toBe(true);
    expect(policy.mayApplyTag('tag:k8s', operator)).toBe(true);
    expect(policy.mayApplyTag('tag:istio-eastwestgateway', operator)).toBe(
      true,
    );
    expect(policy.mayApplyTag('tag:admins-only', operator)).toBe(false);
    expect(policy.mayApplyTag('tag:k8s-operator', { tags: ['tag:k8s'] })).toBe(
      false,
    );
    expect(policy.mayApplyTag('tag:anyone', operator)).toBe(false);
  });

  it('lets users apply the tags they own, directly or through an owning tag', () => {
    expect(policy.mayApplyTag('tag:k8s-operator', { user: bob })).toBe(true);
    expect(policy.mayApplyTag('tag:k8s', { user: bob })).toBe(true);
    expect(
      policy.mayApplyTag('tag:istio-eastwestgateway', { user: carol }),
    ).toBe(true);
    expect(policy.mayApplyTag('tag:k8s', { user: carol })).toBe(false);
    expect(policy.mayApplyTag('tag:admins-only', { user: bob })).toBe(false);
    expect(policy.mayApplyTag('tag:anyone', { user: carol })).toBe(true);
  });

  it('lets owners, admins and network admins apply any defined tag', () => {
    expect(policy.mayApplyTag('tag:admins-only', { user: alice })).toBe(true);
    expect(policy.mayApplyTag('tag:admins-only', { user: dave })).toBe(true);
    const itAdmin: TailnetUser = {
      loginName: 'it@example.com',
      role: 'it-admin',
    };
    expect(policy.mayApplyTag('tag:admins-only', { user: itAdmin })).toBe(
      false,
    );
  });

  it('never applies a tag that tagOwners does not define', () => {
    expect(policy.mayApplyTag('tag:undefined', { user: alice })).toBe(false);
    expect(
      policy.mayApplyTag('tag:undefined', { tags: ['tag:undefined'] }),
    ).toBe(false);
  });
});

describe('the policy file', () => {
  it('accepts HuJSON comments and trailing commas', () => {
    const policy = compile(`
      /* block comment */
      {
        // line comment
        "acls": [
          {"action": "accept", "src": ["*"], "dst": ["*:22",],}, // trailing commas
        ],
      }
    `);
    expect(policy.allows(aliceLaptop, bobLaptop, 'tcp', 22)).toBe(true);
  });

  it('reports a syntax error with its position', () => {
    expect(() =>
      compile('{\n  "acls": [\n    {"action": "accept" "src": ["*"]}\n  ]\n}'),
    ).toThrow(/not valid HuJSON: line 3, column 25: CommaExpected/);
    expect(() => compile('')).toThrow(PolicyError);
    expect(() => compile('[]')).toThrow(/must be a JSON object/);
  });

  it('allows everything without acls and grants, nothing with empty ones', () => {
    expect(compile('{}').allows(aliceLaptop, bobLaptop, 'udp', 9)).toBe(true);
    expect(
      compile('{"grants": []}').allows(aliceLaptop, bobLaptop, 'tcp', 22),
    ).toBe(false);
    expect(
      compile('{"acls": []}').allows(aliceLaptop, bobLaptop, 'tcp', 22),
    ).toBe(false);
  });

  it('refuses what Tailscale refuses, saying where', () => {
    const cases: Array<[string, RegExp]> = [
      [
        '{"acls": [{"action": "accept", "src": ["tag:nope"], "dst": ["*:*"]}]}',
        /acls\[0\]\.src\[0\]: tag not found: "tag:nope"/,
      ],
      [
        '{"groups": {"group:a": ["group:b"], "group:b": ["x@example.com"]}}',
        /group members cannot be recursive/,
      ],
      [
        '{"tagOwners": {"tag:t": []}, "grants": [{"src": ["tag:t"], "dst": ["autogroup:self"], "ip": ["*"]}]}',
        /autogroup:self can only be used with users, groups/,
      ],
      [
        '{"grants": [{"src": ["*"], "dst": ["autogroup:self"], "ip": ["*"]}]}',
        /autogroup:self can only be used/,
      ],
      [
        '{"grants": [{"src": ["autogroup:self"], "dst": ["*"], "ip": ["*"]}]}',
        /not valid on the src side/,
      ],
      [
        '{"grants": [{"src": ["*"], "dst": ["*"]}]}',
        /grants\[0\]: ip and app can not both be empty/,
      ],
      [
        '{"grants": [{"src": ["*"], "dst": ["*"], "ip": ["tcp:0"]}]}',
        /first port must be >0/,
      ],
      [
        '{"grants": [{"src": ["*"], "dst": ["*"], "ip": ["icmp"]}]}',
        /port range "icmp"/,
      ],
      [
        '{"grants": [{"src": ["*"], "dst": ["0.0.0.0/0"], "ip": ["*"]}]}',
        /to allow all IP addresses/,
      ],
      [
        '{"grants": [{"src": ["*"], "dst": ["*"], "ip": ["*"], "srcPostures": ["posture:x"]}]}',
        /unknown field "srcPostures"/,
      ],
      [
        '{"acls": [{"action": "deny", "src": ["*"], "dst": ["*:*"]}]}',
        /action="deny" is not supported/,
      ],
      [
        '{"acls": [{"action": "accept", "src": ["*"], "dst": ["autogroup:self"]}]}',
        /port range "self"/,
      ],
      [
        '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:1-99999"]}]}',
        /ports must be 0-65535/,
      ],
      [
        '{"acls": [{"action": "accept", "src": ["*"], "proto": "ssh", "dst": ["*:*"]}]}',
        /not a known protocol/,
      ],
      [
        '{"acls": [{"action": "accept", "src": ["*"], "dst": ["nohost:22"]}]}',
        /invalid selector "nohost"/,
      ],
      [
        '{"grants": [{"src": ["*"], "dst": ["*"], "app": {"https://example.com/cap": [{}]}}]}',
        /\{domain\}\/\{path\}/,
      ],
      ['{"acl": []}', /unknown field "acl"/],
      [
        '{"grants": [{"src": ["*"], "dst": ["*"], "app": {"tailscale.com/cap/relay-target": [{}]}}]}',
        /must not be in the tailscale.com domain/,
      ],
      [
        '{"grants": [{"src": ["*"], "dst": ["autogroup:internet"], "app": {"example.com/cap/x": [{}]}}]}',
        /cannot use app grants with autogroup:internet/,
      ],
    ];
    for (const [text, message] of cases)
      expect(() => compile(text)).toThrow(message);
  });

  it('reads field names case-insensitively, as Tailscale’s decoder does', () => {
    const policy = compile(
      '{"ACLs": [{"Action": "accept", "Users": ["*"], "Ports": ["*:22"]}]}',
    );
    expect(policy.allows(aliceLaptop, bobLaptop, 'tcp', 22)).toBe(true);
    expect(policy.allows(aliceLaptop, bobLaptop, 'tcp', 23)).toBe(false);
  });

  it('compiles the test bed’s starting policy', () => {
    const text = fs.readFileSync(
      path.join(__dirname, '../../fixtures/tailnet-policy.hujson'),
      'utf8',
    );
    const policy = compile(text);
    const ci = node('ci', { tags: ['tag:ci'] });
    const monitoring = node('monitoring', { tags: ['tag:monitoring'] });
    expect(policy.allows(ci, monitoring, 'tcp', 22)).toBe(true);
    expect(policy.allows(ci, monitoring, 'tcp', 80)).toBe(false);
    expect(policy.allows(monitoring, ci, 'tcp', 22)).toBe(false);
    expect(policy.allows(aliceLaptop, alicePhone, 'tcp', 8080)).toBe(true);
    expect(policy.allows(aliceLaptop, bobLaptop, 'tcp', 8080)).toBe(false);
    expect(policy.mayApplyTag('tag:ci', { user: bob })).toBe(true);
    expect(policy.mayApplyTag('tag:ci', { user: carol })).toBe(false);
  });

  it('rejects ports and protocols outside the packet filter’s domain', () => {
    const policy = compile('{}');
    expect(() => policy.allows(aliceLaptop, bobLaptop, 'tcp', 65536)).toThrow(
      RangeError,
    );
    expect(() => policy.allows(aliceLaptop, bobLaptop, 'tcp', 1.5)).toThrow(
      RangeError,
    );
  });
});
