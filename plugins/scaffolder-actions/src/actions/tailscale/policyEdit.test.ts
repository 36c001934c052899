import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '@backstage/errors';
import {
  EAST_WEST_GATEWAY_PORTS,
  ISTIO_REMOTE_READERS_GROUP,
  TAG_ISTIO_EAST_WEST_GATEWAY,
  TAG_K8S_OPERATOR,
  TAG_K8S_PROXY,
} from '@tailmesh/plugin-mesh-common';
import { parse } from 'jsonc-parser';
import { addMeshPolicy, meshPolicy, unifiedDiff } from './policyEdit';

const fixture = fs.readFileSync(
  path.resolve(
    __dirname,
    '../../../../../test/testbed/fixtures/tailnet-policy.hujson',
  ),
  'utf8',
);

const values = (text: string) => parse(text, [], { allowTrailingComma: true });

describe('meshPolicy', () => {
  it('grants Istio reader impersonation from the proxies to the operators, and east-west ports only', () => {
    const policy = meshPolicy(['autogroup:admin']);
    expect(policy.tagOwners).toEqual({
      [TAG_K8S_OPERATOR]: ['autogroup:admin'],
      [TAG_K8S_PROXY]: [TAG_K8S_OPERATOR],
      [TAG_ISTIO_EAST_WEST_GATEWAY]: ['autogroup:admin', TAG_K8S_OPERATOR],
    });
    const [api, eastWest] = policy.grants.map(g => g.grant);
    expect(api).toEqual({
      src: [TAG_K8S_PROXY],
      dst: [TAG_K8S_OPERATOR],
      app: {
        'tailscale.com/cap/kubernetes': [
          { impersonate: { groups: [ISTIO_REMOTE_READERS_GROUP] } },
        ],
      },
    });
    expect(JSON.stringify(api)).not.toContain('system:masters');
    expect(eastWest.ip).toEqual(
      EAST_WEST_GATEWAY_PORTS.map(p => `tcp:${p.port}`),
    );
    expect(eastWest.ip).not.toContain('*');
  });
});

describe('addMeshPolicy', () => {
  const wanted = meshPolicy(['autogroup:admin']);

  it("adds the mesh's entries and keeps every line of the admin's file", () => {
    const { text, changes } = addMeshPolicy(fixture, wanted);
    expect(changes).toHaveLength(5);
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
    expect(policy.grants).toHaveLength(4);
    expect(policy.grants.slice(2)).toEqual(wanted.grants.map(g => g.grant));
    expect(policy.groups).toEqual(values(fixture).groups);
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
    const policy = `{"grants": [{"dst": ["${TAG_ISTIO_EAST_WEST_GATEWAY}"], "ip": ${JSON.stringify(
      [...EAST_WEST_GATEWAY_PORTS].reverse().map(p => `tcp:${p.port}`),
    )}, "src": ["${TAG_ISTIO_EAST_WEST_GATEWAY}"]}]}`;
    const { changes } = addMeshPolicy(policy, wanted);
    expect(changes.filter(c => c.startsWith('grants'))).toHaveLength(1);
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
  it('shows hunks with context and line numbers', () => {
    const before = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'].join(
      '\n',
    );
    const after = [
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
    ].join('\n');
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
