/**
 * The test bed's NetworkPolicy ingress evaluator (networkPolicy.ts), rule by rule, against the
 * semantics of k8s.io/api networking/v1 and the concept page
 * (https://kubernetes.io/docs/concepts/services-networking/network-policies/). Every case asserts
 * an admitted and a refused outcome, so a rule that stopped being applied would fail.
 */
import {
  ingressVerdict,
  ipBlockMatches,
  isolatesIngress,
  selectorMatches,
  type DestinationPod,
  type NetworkPolicyObject,
  type NetworkPolicySpec,
  type PolicyContext,
  type Source,
  type SourcePod,
} from './networkPolicy';

const NAMESPACES: Record<string, Record<string, string>> = {
  tailscale: { 'kubernetes.io/metadata.name': 'tailscale' },
  'istio-system': { 'kubernetes.io/metadata.name': 'istio-system', 'topology.istio.io/network': 'net1' },
  apps: { 'kubernetes.io/metadata.name': 'apps', team: 'a' },
  other: { 'kubernetes.io/metadata.name': 'other', team: 'b' },
};

function ctx(...policies: NetworkPolicyObject[]): PolicyContext {
  return { policies, namespaceLabels: ns => NAMESPACES[ns] };
}

function policy(name: string, spec: NetworkPolicySpec, namespace = 'tailscale'): NetworkPolicyObject {
  return { metadata: { name, namespace }, spec };
}

/** The egress proxy pod of `<peer>-k8s-operator` (operatorProxies.ts labels it by the parent). */
const EGRESS_PROXY: DestinationPod = {
  namespace: 'tailscale',
  labels: {
    'tailscale.com/managed': 'true',
    'tailscale.com/parent-resource-type': 'svc',
    'tailscale.com/parent-resource': 'cluster2-k8s-operator',
    'tailscale.com/parent-resource-ns': 'istio-system',
  },
  containerPorts: [{ name: 'https', containerPort: 443 }],
};

const ISTIOD: SourcePod = { namespace: 'istio-system', labels: { app: 'istiod', istio: 'pilot' } };
const ISTIOD_IP = '10.244.0.10';
const from = (ip: string, ...pods: SourcePod[]): Source => ({ ip, pods });

/** What the product is to create: only istiod pods, on TCP 443, to the peer's egress proxy. */
const istiodOnly = policy('cluster2-k8s-operator-istiod', {
  podSelector: { matchLabels: { 'tailscale.com/parent-resource': 'cluster2-k8s-operator' } },
  policyTypes: ['Ingress'],
  ingress: [
    {
      from: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'istio-system' } },
          podSelector: { matchLabels: { app: 'istiod' } },
        },
      ],
      ports: [{ protocol: 'TCP', port: 443 }],
    },
  ],
});

describe('ingressVerdict: which pods are isolated', () => {
  it('admits everything when no policy exists', () => {
    const v = ingressVerdict(ctx(), EGRESS_PROXY, from('192.0.2.1'), 443);
    expect(v).toEqual({ allowed: true, policies: [] });
  });

  it('admits everything when the only policy selects other pods', () => {
    const other = policy('other-peer', { ...istiodOnly.spec, podSelector: { matchLabels: { 'tailscale.com/parent-resource': 'cluster3-k8s-operator' } } });
    expect(ingressVerdict(ctx(other), EGRESS_PROXY, from('10.244.0.99', { namespace: 'apps' }), 443)).toEqual({
      allowed: true,
      policies: [],
    });
    // The same policy selecting this pod refuses the same connection.
    const mine = policy('this-peer', { ...istiodOnly.spec });
    expect(ingressVerdict(ctx(mine), EGRESS_PROXY, from('10.244.0.99', { namespace: 'apps' }), 443)).toEqual({
      allowed: false,
      policies: ['tailscale/this-peer'],
    });
  });

  it('applies a policy only to pods of its own namespace', () => {
    const elsewhere = policy('deny-all', { podSelector: {}, policyTypes: ['Ingress'] }, 'apps');
    expect(ingressVerdict(ctx(elsewhere), EGRESS_PROXY, from('10.244.0.99', { namespace: 'apps' }), 443).allowed).toBe(true);
    const here = policy('deny-all', { podSelector: {}, policyTypes: ['Ingress'] });
    expect(ingressVerdict(ctx(here), EGRESS_PROXY, from('10.244.0.99', { namespace: 'apps' }), 443)).toEqual({
      allowed: false,
      policies: ['tailscale/deny-all'],
    });
  });

  it('an empty podSelector selects every pod of the namespace; no ingress rule refuses all', () => {
    const denyAll = policy('deny-all', { podSelector: {}, policyTypes: ['Ingress'] });
    expect(ingressVerdict(ctx(denyAll), EGRESS_PROXY, from(ISTIOD_IP, ISTIOD), 443).allowed).toBe(false);
    expect(ingressVerdict(ctx(denyAll), { namespace: 'tailscale' }, from(ISTIOD_IP, ISTIOD), 443).allowed).toBe(false);
    expect(ingressVerdict(ctx(denyAll), { namespace: 'apps' }, from(ISTIOD_IP, ISTIOD), 443).allowed).toBe(true);
  });

  it('policyTypes: [Egress] alone does not isolate for ingress; [Ingress, Egress] does', () => {
    const egressOnly = policy('egress-only', { podSelector: {}, policyTypes: ['Egress'], egress: [] });
    expect(isolatesIngress(egressOnly)).toBe(false);
    expect(ingressVerdict(ctx(egressOnly), EGRESS_PROXY, from('10.244.0.99', { namespace: 'apps' }), 443)).toEqual({
      allowed: true,
      policies: [],
    });
    const both = policy('both', { podSelector: {}, policyTypes: ['Ingress', 'Egress'], egress: [] });
    expect(isolatesIngress(both)).toBe(true);
    expect(ingressVerdict(ctx(both), EGRESS_PROXY, from('10.244.0.99', { namespace: 'apps' }), 443).allowed).toBe(false);
  });

  it('without policyTypes (or with an empty list) Ingress is implied, even with only egress rules', () => {
    const onlyEgressRules = policy('implied', { podSelector: {}, egress: [{}] });
    expect(isolatesIngress(onlyEgressRules)).toBe(true);
    expect(ingressVerdict(ctx(onlyEgressRules), EGRESS_PROXY, from(ISTIOD_IP, ISTIOD), 443).allowed).toBe(false);
    const emptyTypes = policy('empty-types', { podSelector: {}, policyTypes: [], ingress: [{ from: [{ podSelector: {} }] }] });
    expect(isolatesIngress(emptyTypes)).toBe(true);
    // Isolated, and its rule admits only pods of its own namespace.
    expect(ingressVerdict(ctx(emptyTypes), EGRESS_PROXY, from(ISTIOD_IP, ISTIOD), 443).allowed).toBe(false);
    expect(ingressVerdict(ctx(emptyTypes), EGRESS_PROXY, from('10.244.0.7', { namespace: 'tailscale' }), 443).allowed).toBe(true);
  });
});

describe('ingressVerdict: the istiod-only policy of an egress proxy', () => {
  it('admits an istiod pod on TCP 443', () => {
    expect(ingressVerdict(ctx(istiodOnly), EGRESS_PROXY, from(ISTIOD_IP, ISTIOD), 443)).toEqual({
      allowed: true,
      policies: ['tailscale/cluster2-k8s-operator-istiod'],
    });
  });

  it('refuses another pod of istio-system', () => {
    const gateway: SourcePod = { namespace: 'istio-system', labels: { app: 'istio-eastwestgateway' } };
    expect(ingressVerdict(ctx(istiodOnly), EGRESS_PROXY, from('10.244.0.11', gateway), 443)).toEqual({
      allowed: false,
      policies: ['tailscale/cluster2-k8s-operator-istiod'],
    });
  });

  it('refuses a pod labelled app=istiod in another namespace', () => {
    const impostor: SourcePod = { namespace: 'apps', labels: { app: 'istiod' } };
    expect(ingressVerdict(ctx(istiodOnly), EGRESS_PROXY, from('10.244.0.12', impostor), 443).allowed).toBe(false);
  });

  it('refuses istiod on another port or protocol', () => {
    expect(ingressVerdict(ctx(istiodOnly), EGRESS_PROXY, from(ISTIOD_IP, ISTIOD), 80).allowed).toBe(false);
    expect(ingressVerdict(ctx(istiodOnly), EGRESS_PROXY, from(ISTIOD_IP, ISTIOD), 443, 'UDP').allowed).toBe(false);
    expect(ingressVerdict(ctx(istiodOnly), EGRESS_PROXY, from(ISTIOD_IP, ISTIOD), 443, 'TCP').allowed).toBe(true);
  });

  it('refuses a source that is not a pod', () => {
    expect(ingressVerdict(ctx(istiodOnly), EGRESS_PROXY, from(ISTIOD_IP), 443).allowed).toBe(false);
  });

  it('admits when any of several candidate source pods is admitted', () => {
    const gateway: SourcePod = { namespace: 'istio-system', labels: { app: 'istio-eastwestgateway' } };
    expect(ingressVerdict(ctx(istiodOnly), EGRESS_PROXY, from(ISTIOD_IP, gateway, ISTIOD), 443).allowed).toBe(true);
    expect(ingressVerdict(ctx(istiodOnly), EGRESS_PROXY, from(ISTIOD_IP, gateway), 443).allowed).toBe(false);
  });
});

describe('ingressVerdict: rules', () => {
  const client: SourcePod = { namespace: 'tailscale', labels: { role: 'client' } };
  const stranger: SourcePod = { namespace: 'tailscale', labels: { role: 'stranger' } };

  it('a peer with only a podSelector means pods of the policy\'s namespace', () => {
    const p = policy('clients', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }] }] });
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.1', client), 443).allowed).toBe(true);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.2', stranger), 443).allowed).toBe(false);
    // Same labels in another namespace: not selected.
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.3', { namespace: 'apps', labels: { role: 'client' } }), 443).allowed).toBe(false);
  });

  it('a peer with only a namespaceSelector means every pod of the selected namespaces', () => {
    const p = policy('team-a', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'a' } } }] }] });
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.1', { namespace: 'apps' }), 443).allowed).toBe(true);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.1', { namespace: 'apps', labels: { any: 'thing' } }), 443).allowed).toBe(true);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.2', { namespace: 'other' }), 443).allowed).toBe(false);
    // The policy's own namespace is not implied.
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.3', client), 443).allowed).toBe(false);
  });

  it('namespaceSelector: {} admits every pod of every namespace, but not a source that is no pod', () => {
    const p = policy('all-pods', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] });
    for (const ns of ['apps', 'other', 'tailscale', 'not-in-the-cache']) {
      expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.1', { namespace: ns }), 443).allowed).toBe(true);
    }
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('192.0.2.1'), 443).allowed).toBe(false);
  });

  it('selects a namespace by kubernetes.io/metadata.name even when its labels are not known', () => {
    const p = policy('by-name', {
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'unlisted' } } }] }],
    });
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.1', { namespace: 'unlisted' }), 443).allowed).toBe(true);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.1', { namespace: 'apps' }), 443).allowed).toBe(false);
  });

  it('an empty from admits every source; an absent from too', () => {
    const empty = policy('empty-from', { podSelector: {}, ingress: [{ from: [], ports: [{ port: 443 }] }] });
    const absent = policy('absent-from', { podSelector: {}, ingress: [{ ports: [{ port: 443 }] }] });
    for (const p of [empty, absent]) {
      expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('192.0.2.1'), 443).allowed).toBe(true);
      expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.2', stranger), 443).allowed).toBe(true);
      expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.2', stranger), 444).allowed).toBe(false);
    }
  });

  it('an empty rule admits everything; a peer with no selector at all admits nothing', () => {
    const open = policy('open', { podSelector: {}, ingress: [{}] });
    expect(ingressVerdict(ctx(open), EGRESS_PROXY, from('192.0.2.1'), 8443).allowed).toBe(true);
    const broken = policy('broken', { podSelector: {}, ingress: [{ from: [{}] }] });
    expect(ingressVerdict(ctx(broken), EGRESS_PROXY, from('10.0.0.2', stranger), 443).allowed).toBe(false);
  });

  it('ports: absent or empty means all ports; protocol defaults to TCP; a port without number means all of its protocol', () => {
    const noPorts = policy('no-ports', { podSelector: {}, ingress: [{ ports: [], from: [{ podSelector: {} }] }] });
    expect(ingressVerdict(ctx(noPorts), EGRESS_PROXY, from('10.0.0.1', client), 1).allowed).toBe(true);
    expect(ingressVerdict(ctx(noPorts), EGRESS_PROXY, from('10.0.0.1', client), 65535, 'UDP').allowed).toBe(true);
    const anyTcp = policy('any-tcp', { podSelector: {}, ingress: [{ ports: [{}] }] });
    expect(ingressVerdict(ctx(anyTcp), EGRESS_PROXY, from('10.0.0.1', client), 12345).allowed).toBe(true);
    expect(ingressVerdict(ctx(anyTcp), EGRESS_PROXY, from('10.0.0.1', client), 53, 'UDP').allowed).toBe(false);
    const anyUdp = policy('any-udp', { podSelector: {}, ingress: [{ ports: [{ protocol: 'UDP' }] }] });
    expect(ingressVerdict(ctx(anyUdp), EGRESS_PROXY, from('10.0.0.1', client), 53, 'UDP').allowed).toBe(true);
    expect(ingressVerdict(ctx(anyUdp), EGRESS_PROXY, from('10.0.0.1', client), 53).allowed).toBe(false);
  });

  it('ports: a numeric port matches only itself; endPort makes an inclusive range', () => {
    const range = policy('range', { podSelector: {}, ingress: [{ ports: [{ port: 32000, endPort: 32768 }, { port: 443 }] }] });
    for (const port of [443, 32000, 32500, 32768]) {
      expect(ingressVerdict(ctx(range), EGRESS_PROXY, from('10.0.0.1'), port).allowed).toBe(true);
    }
    for (const port of [442, 444, 31999, 32769]) {
      expect(ingressVerdict(ctx(range), EGRESS_PROXY, from('10.0.0.1'), port).allowed).toBe(false);
    }
  });

  it('ports: a named port is the destination container port of that name and protocol', () => {
    const named = policy('named', { podSelector: {}, ingress: [{ ports: [{ port: 'https' }] }] });
    expect(ingressVerdict(ctx(named), EGRESS_PROXY, from('10.0.0.1'), 443).allowed).toBe(true);
    expect(ingressVerdict(ctx(named), EGRESS_PROXY, from('10.0.0.1'), 8443).allowed).toBe(false);
    expect(ingressVerdict(ctx(named), EGRESS_PROXY, from('10.0.0.1'), 443, 'UDP').allowed).toBe(false);
    // A pod without a port of that name admits nothing through it.
    const unnamed: DestinationPod = { ...EGRESS_PROXY, containerPorts: [{ name: 'web', containerPort: 443 }] };
    expect(ingressVerdict(ctx(named), unnamed, from('10.0.0.1'), 443).allowed).toBe(false);
    const none: DestinationPod = { ...EGRESS_PROXY, containerPorts: undefined };
    expect(ingressVerdict(ctx(named), none, from('10.0.0.1'), 443).allowed).toBe(false);
    const udpNamed = policy('dns', { podSelector: {}, ingress: [{ ports: [{ port: 'dns', protocol: 'UDP' }] }] });
    const dns: DestinationPod = { namespace: 'tailscale', containerPorts: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }] };
    expect(ingressVerdict(ctx(udpNamed), dns, from('10.0.0.1'), 53, 'UDP').allowed).toBe(true);
    expect(ingressVerdict(ctx(udpNamed), dns, from('10.0.0.1'), 53, 'TCP').allowed).toBe(false);
  });

  it('ports and from must both match within one rule', () => {
    const p = policy('both', {
      podSelector: {},
      ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }], ports: [{ port: 443 }] }],
    });
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.1', client), 443).allowed).toBe(true);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.1', client), 80).allowed).toBe(false);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.0.0.2', stranger), 443).allowed).toBe(false);
  });

  it('ipBlock admits a source within cidr and outside every except, pod or not', () => {
    const p = policy('block', {
      podSelector: {},
      ingress: [{ from: [{ ipBlock: { cidr: '10.244.0.0/16', except: ['10.244.1.0/24', '10.244.2.7/32'] } }] }],
    });
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.244.0.5'), 443).allowed).toBe(true);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.244.0.5', stranger), 443).allowed).toBe(true);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('::ffff:10.244.3.1'), 443).allowed).toBe(true);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.244.1.9'), 443).allowed).toBe(false);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.244.2.7'), 443).allowed).toBe(false);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.244.2.8'), 443).allowed).toBe(true);
    expect(ingressVerdict(ctx(p), EGRESS_PROXY, from('10.245.0.1', client), 443).allowed).toBe(false);
  });

  it('two policies selecting the same pod are additive', () => {
    const clients = policy('clients', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }] }] });
    const p = ctx(istiodOnly, clients);
    expect(ingressVerdict(p, EGRESS_PROXY, from(ISTIOD_IP, ISTIOD), 443)).toEqual({
      allowed: true,
      policies: ['tailscale/clients', 'tailscale/cluster2-k8s-operator-istiod'],
    });
    expect(ingressVerdict(p, EGRESS_PROXY, from('10.0.0.1', client), 8080).allowed).toBe(true);
    expect(ingressVerdict(p, EGRESS_PROXY, from('10.0.0.2', stranger), 443)).toEqual({
      allowed: false,
      policies: ['tailscale/clients', 'tailscale/cluster2-k8s-operator-istiod'],
    });
    // Neither alone admits what the other does.
    expect(ingressVerdict(ctx(istiodOnly), EGRESS_PROXY, from('10.0.0.1', client), 8080).allowed).toBe(false);
    expect(ingressVerdict(ctx(clients), EGRESS_PROXY, from(ISTIOD_IP, ISTIOD), 443).allowed).toBe(false);
  });

  it('a policy that does not isolate for ingress adds nothing to one that does', () => {
    const egressOpen = policy('egress-open', { podSelector: {}, policyTypes: ['Egress'], ingress: [{}] });
    expect(ingressVerdict(ctx(istiodOnly, egressOpen), EGRESS_PROXY, from('10.0.0.2', stranger), 443)).toEqual({
      allowed: false,
      policies: ['tailscale/cluster2-k8s-operator-istiod'],
    });
  });
});

describe('selectorMatches', () => {
  const labels = { app: 'istiod', istio: 'pilot' };

  it('an empty selector matches everything, including no labels', () => {
    expect(selectorMatches({}, labels)).toBe(true);
    expect(selectorMatches({}, {})).toBe(true);
    expect(selectorMatches({ matchLabels: {}, matchExpressions: [] }, {})).toBe(true);
  });

  it('matchLabels requires every pair', () => {
    expect(selectorMatches({ matchLabels: { app: 'istiod' } }, labels)).toBe(true);
    expect(selectorMatches({ matchLabels: { app: 'istiod', istio: 'pilot' } }, labels)).toBe(true);
    expect(selectorMatches({ matchLabels: { app: 'istiod', istio: 'gateway' } }, labels)).toBe(false);
    expect(selectorMatches({ matchLabels: { version: 'v1' } }, labels)).toBe(false);
  });

  it('In, NotIn, Exists, DoesNotExist', () => {
    expect(selectorMatches({ matchExpressions: [{ key: 'app', operator: 'In', values: ['istiod', 'x'] }] }, labels)).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'app', operator: 'In', values: ['x'] }] }, labels)).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'absent', operator: 'In', values: [''] }] }, labels)).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['x'] }] }, labels)).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['istiod'] }] }, labels)).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'absent', operator: 'NotIn', values: ['x'] }] }, labels)).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'istio', operator: 'Exists' }] }, labels)).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'absent', operator: 'Exists' }] }, labels)).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'absent', operator: 'DoesNotExist' }] }, labels)).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'istio', operator: 'DoesNotExist' }] }, labels)).toBe(false);
  });

  it('ANDs matchLabels and every expression; an unknown operator matches nothing', () => {
    const sel = {
      matchLabels: { app: 'istiod' },
      matchExpressions: [
        { key: 'istio', operator: 'Exists' },
        { key: 'canary', operator: 'DoesNotExist' },
      ],
    };
    expect(selectorMatches(sel, labels)).toBe(true);
    expect(selectorMatches(sel, { ...labels, canary: 'true' })).toBe(false);
    expect(selectorMatches(sel, { app: 'istiod' })).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'app', operator: 'Gt', values: ['1'] }] }, labels)).toBe(false);
  });
});

describe('ipBlockMatches', () => {
  it('IPv4 cidr and except', () => {
    expect(ipBlockMatches({ cidr: '0.0.0.0/0' }, '203.0.113.9')).toBe(true);
    expect(ipBlockMatches({ cidr: '0.0.0.0/0', except: ['203.0.113.0/24'] }, '203.0.113.9')).toBe(false);
    expect(ipBlockMatches({ cidr: '10.0.0.0/8' }, '11.0.0.1')).toBe(false);
    expect(ipBlockMatches({ cidr: '10.1.2.3/32' }, '10.1.2.3')).toBe(true);
    expect(ipBlockMatches({ cidr: '10.1.2.3/32' }, '10.1.2.4')).toBe(false);
  });

  it('IPv6, and no match across families or for malformed input', () => {
    expect(ipBlockMatches({ cidr: '2001:db8::/32' }, '2001:db8::1')).toBe(true);
    expect(ipBlockMatches({ cidr: '2001:db8::/32', except: ['2001:db8:1::/48'] }, '2001:db8:1::1')).toBe(false);
    expect(ipBlockMatches({ cidr: '2001:db8::/32' }, '10.0.0.1')).toBe(false);
    expect(ipBlockMatches({ cidr: '0.0.0.0/0' }, '2001:db8::1')).toBe(false);
    expect(ipBlockMatches({ cidr: 'not-a-cidr' }, '10.0.0.1')).toBe(false);
    expect(ipBlockMatches({ cidr: '10.0.0.0/33' }, '10.0.0.1')).toBe(false);
    expect(ipBlockMatches({ cidr: '10.0.0.0/8' }, 'not-an-ip')).toBe(false);
  });
});
