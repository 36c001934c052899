import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '@backstage/errors';
import {
  ISTIO_REMOTE_READERS_GROUP,
  TAG_ISTIO_EAST_WEST_GATEWAY,
  TAG_K8S_OPERATOR,
  TAG_K8S_PROXY,
  TAG_MESH_EGRESS,
  auditMissingGrants,
  auditTailnetPolicy,
} from '@tailmesh/plugin-mesh-common';
import { parse } from 'jsonc-parser';
import {
  addMeshPolicy,
  inlineJson,
  meshPolicy,
  unifiedDiff,
} from './policyEdit';

const fixture = fs.readFileSync(
  path.resolve(
    __dirname,
    '../../../../../test/testbed/fixtures/tailnet-policy.hujson',
  ),
  'utf8',
);

const values = (text: string) => parse(text, [], { allowTrailingComma: true });

describe('meshPolicy', () => {
  it('grants the egress proxies tcp:443 and Istio reader impersonation on the operators, and tcp:15443 only on the gateways', () => {
    const policy = meshPolicy(['autogroup:admin']);
    expect(policy.tagOwners).toEqual({
      [TAG_K8S_OPERATOR]: ['autogroup:admin'],
      [TAG_K8S_PROXY]: [TAG_K8S_OPERATOR],
      [TAG_MESH_EGRESS]: [TAG_K8S_OPERATOR],
      [TAG_ISTIO_EAST_WEST_GATEWAY]: ['autogroup:admin', TAG_K8S_OPERATOR],
    });
    expect(TAG_MESH_EGRESS).toBe('tag:tailmesh-egress');
    const [api, eastWest, ...rest] = policy.grants.map(g => g.grant);
    expect(rest).toEqual([]);
    expect(api).toEqual({
      src: [TAG_MESH_EGRESS],
      dst: [TAG_K8S_OPERATOR],
      ip: ['tcp:443'],
      app: {
        'tailscale.com/cap/kubernetes': [
          { impersonate: { groups: [ISTIO_REMOTE_READERS_GROUP] } },
        ],
      },
    });
    expect(JSON.stringify(api)).not.toContain('system:masters');
    expect(eastWest).toEqual({
      src: [TAG_MESH_EGRESS],
      dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
      ip: ['tcp:15443'],
    });
  });

  it('is exactly what the audit asks for: nothing missing, nothing too broad', () => {
    const policy = {
      grants: meshPolicy(['autogroup:admin']).grants.map(g => g.grant),
    };
    expect(auditMissingGrants(policy, ['east', 'west'])).toEqual([]);
    expect(auditTailnetPolicy(policy, ['east', 'west'])).toEqual([]);
  });
});

describe('addMeshPolicy', () => {
  const wanted = meshPolicy(['autogroup:admin']);

  it("adds the mesh's entries and keeps every line of the admin's file", () => {
    const { text, changes } = addMeshPolicy(fixture, wanted);
    expect(changes).toEqual([
      `tagOwners: added ${TAG_K8S_OPERATOR} owned by autogroup:admin`,
      `tagOwners: added ${TAG_K8S_PROXY} owned by ${TAG_K8S_OPERATOR}`,
      `tagOwners: added ${TAG_MESH_EGRESS} owned by ${TAG_K8S_OPERATOR}`,
      `tagOwners: added ${TAG_ISTIO_EAST_WEST_GATEWAY} owned by autogroup:admin, ${TAG_K8S_OPERATOR}`,
      ...wanted.grants.map(g => `grants: added ${inlineJson(g.grant)}`),
    ]);
    const diff = unifiedDiff(fixture, text, 'a', 'b');
    expect(
      diff.split('\n').filter(l => l.startsWith('-') && !l.startsWith('---')),
    ).toEqual([]);
    for (const comment of [
      '// Prometheus scrapers',
      '// People who run the platform.',
      '// CI deploys to the monitoring hosts',
    ]) {
      expect(text).toContain(comment);
    }
    expect(text).toContain(
      '\t\t"tag:monitoring": ["group:platform"], // Prometheus scrapers\n\t\t"tag:k8s-operator": ["autogroup:admin"],\n',
    );
    const policy = values(text);
    expect(policy.tagOwners[TAG_K8S_PROXY]).toEqual([TAG_K8S_OPERATOR]);
    expect(policy.tagOwners[TAG_MESH_EGRESS]).toEqual([TAG_K8S_OPERATOR]);
    expect(policy.grants).toHaveLength(4);
    expect(policy.grants.slice(2)).toEqual(wanted.grants.map(g => g.grant));
    expect(policy.groups).toEqual(values(fixture).groups);
  });

  it('replaces the grants an earlier Tailmesh wrote, and nothing the admin wrote', () => {
    const earlier = [
      '{',
      '\t"grants": [',
      '\t\t// Members reach their own devices.',
      '\t\t{"src": ["autogroup:member"], "dst": ["autogroup:self"], "ip": ["*"]},',
      "\t\t// Tailmesh: istiod reads peer clusters through their operators' API server proxies, as Istio's reader role only.",
      `\t\t{"src": ["tag:k8s"], "dst": ["tag:k8s-operator"], "app": {"tailscale.com/cap/kubernetes": [{"impersonate": {"groups": ["${ISTIO_REMOTE_READERS_GROUP}"]}}]}},`,
      "\t\t// Tailmesh: east-west gateways reach each other on Istio's east-west ports only.",
      '\t\t{"src": ["tag:istio-eastwestgateway"], "dst": ["tag:istio-eastwestgateway"], "ip": ["tcp:15021", "tcp:15443", "tcp:15012", "tcp:15017"]},',
      "\t\t// An admin's own grant that looks like one of ours but is not the same.",
      '\t\t{"src": ["tag:k8s"], "dst": ["tag:k8s-operator"], "ip": ["tcp:443"]},',
      '\t],',
      '}',
      '',
    ].join('\n');
    const result = addMeshPolicy(earlier, meshPolicy(['autogroup:admin']));
    expect(
      result.changes.filter(c => c.startsWith('grants: removed')),
    ).toHaveLength(2);
    expect(result.text).not.toContain('"tcp:15012"');
    expect(result.text).not.toContain('east-west gateways reach each other');
    expect(result.text).toContain('// Members reach their own devices.');
    expect(result.text).toContain(
      '{"src": ["tag:k8s"], "dst": ["tag:k8s-operator"], "ip": ["tcp:443"]},',
    );
    const grants = (parse(result.text) as { grants: Array<{ src: string[] }> })
      .grants;
    expect(grants.map(g => g.src[0])).toEqual([
      'autogroup:member',
      'tag:k8s',
      TAG_MESH_EGRESS,
      TAG_MESH_EGRESS,
    ]);
    expect(
      addMeshPolicy(result.text, meshPolicy(['autogroup:admin'])).changes,
    ).toEqual([]);
  });

  it('changes nothing the second time', () => {
    const once = addMeshPolicy(fixture, wanted).text;
    expect(addMeshPolicy(once, wanted)).toEqual({ text: once, changes: [] });
  });

  it('adds missing owners to a tag that exists, keeping its owners', () => {
    const once = addMeshPolicy(fixture, wanted).text;
    const { text, changes } = addMeshPolicy(
      once,
      meshPolicy(['autogroup:admin', 'group:platform']),
    );
    expect(changes).toEqual([
      `tagOwners: ${TAG_K8S_OPERATOR} now also owned by group:platform`,
      `tagOwners: ${TAG_ISTIO_EAST_WEST_GATEWAY} now also owned by group:platform`,
    ]);
    expect(values(text).tagOwners[TAG_K8S_OPERATOR]).toEqual([
      'autogroup:admin',
      'group:platform',
    ]);
  });

  it('recognises a grant that is already there in another order', () => {
    const policy = `{"grants": [{"app": {"tailscale.com/cap/kubernetes": [{"impersonate": {"groups": ["${ISTIO_REMOTE_READERS_GROUP}"]}}]}, "ip": ["tcp:443"], "dst": ["${TAG_K8S_OPERATOR}"], "src": ["${TAG_MESH_EGRESS}", "${TAG_MESH_EGRESS}"]}]}`;
    const { changes } = addMeshPolicy(policy, wanted);
    expect(changes.filter(c => c.startsWith('grants'))).toEqual([
      `grants: added {"src": ["${TAG_MESH_EGRESS}"], "dst": ["${TAG_ISTIO_EAST_WEST_GATEWAY}"], "ip": ["tcp:15443"]}`,
    ]);
  });

  it('creates missing sections in a space-indented JSON file', () => {
    const policy =
      '{\n  "acls": [\n    {"action": "accept", "src": ["*"], "dst": ["*:*"]}\n  ]\n}\n';
    const { text } = addMeshPolicy(policy, wanted);
    expect(text).toContain(
      '{\n  "acls": [\n    {"action": "accept", "src": ["*"], "dst": ["*:*"]}\n  ],\n',
    );
    expect(text).toContain(
      '\n  "tagOwners": {\n    "tag:k8s-operator": ["autogroup:admin"],\n',
    );
    expect(text).not.toMatch(/,\s*[}\]]/);
    expect(values(text).grants).toHaveLength(2);
    expect(values(text).acls).toHaveLength(1);
  });

  it('fills an empty owner list inline, as it was written', () => {
    const { text } = addMeshPolicy(
      '{\n\t"tagOwners": {\n\t\t"tag:k8s-operator": [],\n\t},\n}\n',
      wanted,
    );
    expect(text).toContain(
      '\t\t"tag:k8s-operator": ["autogroup:admin"],\n\t\t"tag:k8s": ["tag:k8s-operator"],\n',
    );
  });

  it('rejects a malformed file, naming where it breaks', () => {
    const broken = fixture.replace(
      '"tag:ci":         ["group:platform"],',
      '"tag:ci":         ["group:platform",',
    );
    expect(() => addMeshPolicy(broken, wanted)).toThrow(InputError);
    expect(() => addMeshPolicy(broken, wanted)).toThrow(
      /not valid HuJSON \(\w+ at line 13, column \d+\); nothing was written/,
    );
  });

  it('rejects a file whose sections have the wrong shape', () => {
    expect(() => addMeshPolicy('{"grants": {}}', wanted)).toThrow(
      /"grants" must be an array \(line 1, column 12\)/,
    );
    expect(() => addMeshPolicy('[]', wanted)).toThrow(/must be a JSON object/);
  });
});

describe('unifiedDiff', () => {
  it('shows hunks with context and line numbers, as diff -u does', () => {
    // Files end with a newline, as policy files do.
    const before = `${['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'].join('\n')}\n`;
    const after = `${[
      'a',
      'b',
      'c',
      'X',
      'd',
      'e',
      'f',
      'g',
      'h',
      'i',
      'j',
      'Y',
    ].join('\n')}\n`;
    expect(unifiedDiff(before, after, 'old', 'new')).toBe(
      [
        '--- old',
        '+++ new',
        '@@ -1,6 +1,7 @@',
        ' a',
        ' b',
        ' c',
        '+X',
        ' d',
        ' e',
        ' f',
        '@@ -8,3 +9,4 @@',
        ' h',
        ' i',
        ' j',
        '+Y',
        '',
      ].join('\n'),
    );
  });

  it('is empty when nothing changed', () => {
    expect(unifiedDiff('x\n', 'x\n', 'a', 'b')).toBe('');
  });
});
