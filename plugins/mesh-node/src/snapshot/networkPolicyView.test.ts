import { V1NetworkPolicy } from '@kubernetes/client-node';
import { networkPolicyView } from '@tailmesh/plugin-mesh-node';

const peer = {
  namespaceSelector: {
    matchLabels: { 'kubernetes.io/metadata.name': 'istio-system' },
  },
  podSelector: {
    matchExpressions: [{ key: 'app', operator: 'In', values: ['istiod'] }],
  },
};

describe('networkPolicyView', () => {
  const expected = {
    name: 'p',
    podSelector: { matchLabels: { app: 'uid-1' } },
    policyTypes: ['Ingress'],
    ingress: [
      {
        ports: [
          { protocol: 'TCP', port: 443 },
          { port: 8000, endPort: 8100 },
        ],
        from: [
          peer,
          { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } },
        ],
      },
      {},
    ],
  };

  it("reads client-node's model, whose peers are in `_from`", () => {
    const typed: V1NetworkPolicy = {
      metadata: { name: 'p', uid: 'x', managedFields: [] },
      spec: {
        podSelector: { matchLabels: { app: 'uid-1' } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            ports: [
              { protocol: 'TCP', port: 443 },
              { port: 8000, endPort: 8100 },
            ],
            _from: [
              peer,
              { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } },
            ],
          },
          {},
        ],
      },
    };
    expect(networkPolicyView(typed)).toEqual(expected);
  });

  it("reads the API's JSON as a watch delivers it, whose peers are in `from`", () => {
    const json = JSON.parse(
      JSON.stringify({
        metadata: { name: 'p' },
        spec: {
          podSelector: { matchLabels: { app: 'uid-1' } },
          policyTypes: ['Ingress'],
          ingress: [
            {
              ports: [
                { protocol: 'TCP', port: 443 },
                { port: 8000, endPort: 8100 },
              ],
              from: [
                peer,
                { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } },
              ],
            },
            {},
          ],
        },
      }),
    );
    expect(networkPolicyView(json)).toEqual(expected);
  });
});
