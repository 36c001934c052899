import {
  NetworkPolicyView,
  apiEgressOpenTo,
  apiEgressPolicyName,
  selectorMatches,
} from '@tailmesh/plugin-mesh-common';

const UID = '6a1b2c3d-0000-4000-8000-000000000001';

/** The policy mesh:tailscale:create-egress writes. */
const istiodOnly: NetworkPolicyView = {
  name: apiEgressPolicyName('c2'),
  podSelector: { matchLabels: { app: UID } },
  policyTypes: ['Ingress'],
  ingress: [
    {
      from: [
        {
          namespaceSelector: {
            matchLabels: { 'kubernetes.io/metadata.name': 'istio-system' },
          },
          podSelector: { matchLabels: { app: 'istiod' } },
        },
      ],
      ports: [{ protocol: 'TCP', port: 443 }],
    },
  ],
};

describe('apiEgressOpenTo', () => {
  it('is open while no policy isolates the proxy pods', () => {
    expect(apiEgressOpenTo([], UID)).toBe(
      'no NetworkPolicy selects its proxy pods',
    );
    const other = { ...istiodOnly, podSelector: { matchLabels: { app: 'x' } } };
    expect(apiEgressOpenTo([other], UID)).toBe(
      'no NetworkPolicy selects its proxy pods',
    );
    const egressOnly = { ...istiodOnly, policyTypes: ['Egress'] };
    expect(apiEgressOpenTo([egressOnly], UID)).toBe(
      'no NetworkPolicy selects its proxy pods',
    );
  });

  it("is closed by the join's policy, also as matchExpressions and without policyTypes", () => {
    expect(apiEgressOpenTo([istiodOnly], UID)).toBeUndefined();
    const expressions: NetworkPolicyView = {
      name: 'expr',
      podSelector: {
        matchExpressions: [{ key: 'app', operator: 'In', values: [UID] }],
      },
      ingress: [
        {
          from: [
            {
              namespaceSelector: {
                matchExpressions: [
                  {
                    key: 'kubernetes.io/metadata.name',
                    operator: 'In',
                    values: ['istio-system'],
                  },
                ],
              },
              podSelector: {
                matchExpressions: [
                  { key: 'app', operator: 'In', values: ['istiod'] },
                ],
              },
            },
          ],
        },
      ],
    };
    expect(apiEgressOpenTo([expressions], UID)).toBeUndefined();
    // Isolating with no rule at all admits nobody, istiod included: not open to pods.
    expect(
      apiEgressOpenTo([{ name: 'deny', podSelector: {} }], UID),
    ).toBeUndefined();
  });

  it('is open when any selecting policy admits more than istiod on 443 (policies add up)', () => {
    const allPods: NetworkPolicyView = {
      name: 'allow-all',
      podSelector: {},
      ingress: [{}],
    };
    expect(apiEgressOpenTo([istiodOnly, allPods], UID)).toBe(
      'NetworkPolicy allow-all admits every source',
    );
    const anyNamespace: NetworkPolicyView = {
      ...istiodOnly,
      name: 'any-ns',
      ingress: [
        {
          from: [
            {
              namespaceSelector: {},
              podSelector: { matchLabels: { app: 'istiod' } },
            },
          ],
        },
      ],
    };
    expect(apiEgressOpenTo([anyNamespace], UID)).toBe(
      "NetworkPolicy any-ns admits pods other than istiod's",
    );
    // A peer without namespaceSelector means the policy's own namespace, not istio-system.
    const sameNamespace: NetworkPolicyView = {
      ...istiodOnly,
      name: 'same-ns',
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: 'istiod' } } }] },
      ],
    };
    expect(apiEgressOpenTo([sameNamespace], UID)).toBe(
      "NetworkPolicy same-ns admits pods other than istiod's",
    );
    const cidr: NetworkPolicyView = {
      ...istiodOnly,
      name: 'cidr',
      ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }],
    };
    expect(apiEgressOpenTo([cidr], UID)).toBe(
      'NetworkPolicy cidr admits the addresses 10.0.0.0/8',
    );
  });

  it('ignores rules for other ports', () => {
    const metrics: NetworkPolicyView = {
      ...istiodOnly,
      name: 'metrics',
      ingress: [
        ...istiodOnly.ingress!,
        { ports: [{ port: 9002 }] },
        { ports: [{ protocol: 'UDP', port: 443 }] },
        { ports: [{ port: 8000, endPort: 8999 }] },
      ],
    };
    expect(apiEgressOpenTo([metrics], UID)).toBeUndefined();
    const range: NetworkPolicyView = {
      ...metrics,
      ingress: [{ ports: [{ port: 400, endPort: 500 }] }],
    };
    expect(apiEgressOpenTo([range], UID)).toBe(
      'NetworkPolicy metrics admits every source',
    );
  });
});

describe('selectorMatches', () => {
  it('follows matchLabels and every matchExpressions operator', () => {
    const labels = { app: 'a', tier: 'web' };
    expect(selectorMatches(undefined, labels)).toBe(true);
    expect(selectorMatches({}, labels)).toBe(true);
    expect(selectorMatches({ matchLabels: { app: 'a' } }, labels)).toBe(true);
    expect(selectorMatches({ matchLabels: { app: 'b' } }, labels)).toBe(false);
    const expr = (operator: string, values?: string[]) =>
      selectorMatches(
        { matchExpressions: [{ key: 'tier', operator, values }] },
        labels,
      );
    expect(expr('In', ['web'])).toBe(true);
    expect(expr('In', ['db'])).toBe(false);
    expect(expr('NotIn', ['web'])).toBe(false);
    expect(expr('NotIn', ['db'])).toBe(true);
    expect(expr('Exists')).toBe(true);
    expect(expr('DoesNotExist')).toBe(false);
    expect(expr('Bogus')).toBe(false);
  });
});
