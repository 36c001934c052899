import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import {
  AnnotationHostname,
  AnnotationProxyGroup,
  AnnotationTags,
  AnnotationTailnetTargetFQDN,
  AnnotationTailnetTargetIP,
  ConditionNameserverReady,
  ConditionProxyReady,
  FinalizerName,
  TailnetDeviceRegistry,
  classifyService,
  conditionTime,
  desiredDNSConfigStatus,
  dnsLabelError,
  fnv1a32,
  ingressLooksOurs,
  isAssignableTailnetIPv4,
  isCGNAT,
  isMagicDNSName,
  nameserverManifests,
  normalizeTailnet,
  parseIPv4,
  planDNSConfig,
  planService,
  setCondition,
  statefulSetNameBase,
  tailscale4To6,
  validateService,
  type DNSConfigObject,
  type ServiceObject,
  type ServicePlan,
  type ServicePlanInput,
} from './operatorReconcile';

const tailnet = 'tailmesh-test.ts.net';
const t0 = new Date('2025-01-02T03:04:05.678Z');
const t1 = new Date('2025-01-02T04:00:00.000Z');

function lbService(overrides: Partial<ServiceObject['metadata']> = {}, clusterIP = '10.96.0.20'): ServiceObject {
  return {
    metadata: { name: 'eastwest', namespace: 'istio-system', uid: 'uid-1', resourceVersion: '10', ...overrides },
    spec: { type: 'LoadBalancer', loadBalancerClass: 'tailscale', clusterIP, ports: [{ port: 15443 }] },
    status: { loadBalancer: {} },
  };
}

function egressService(fqdn: string, extra: Record<string, string> = {}): ServiceObject {
  return {
    metadata: {
      name: 'peer-api',
      namespace: 'mesh',
      uid: 'uid-egress',
      resourceVersion: '5',
      annotations: { [AnnotationTailnetTargetFQDN]: fqdn, ...extra },
    },
    spec: { type: 'ExternalName', externalName: 'placeholder' },
    status: { loadBalancer: {} },
  };
}

function input(svc: ServiceObject, registry: TailnetDeviceRegistry, more: Partial<ServicePlanInput> = {}): ServicePlanInput {
  return {
    svc,
    tailnet,
    operatorNamespace: 'tailscale',
    clusterDomain: 'cluster.local',
    manageFinalizer: true,
    proxyServices: [],
    device: (label, observed) => registry.ensure(`c1/${svc.metadata.namespace}/${svc.metadata.name}`, label, observed),
    now: t0,
    ...more,
  };
}

/** What the apiserver holds after the executor ran the plan (merge-patch semantics). */
function applyPlan(svc: ServiceObject, plan: ServicePlan): ServiceObject {
  const next: ServiceObject = JSON.parse(JSON.stringify(svc));
  if (plan.finalizers) next.metadata.finalizers = plan.finalizers;
  if (plan.specPatch) {
    next.spec = { ...next.spec, type: plan.specPatch.type, externalName: plan.specPatch.externalName };
    delete next.spec.selector;
  }
  if (plan.status?.conditions) next.status = { ...next.status, conditions: plan.status.conditions };
  if (plan.status?.loadBalancer) {
    // The apiserver defaults ipMode on IP entries; comparisons must not care.
    next.status = {
      ...next.status,
      loadBalancer: { ingress: plan.status.loadBalancer.ingress.map(e => (e.ip ? { ...e, ipMode: 'VIP' } : e)) },
    };
  }
  return next;
}

const writes = (p: ServicePlan) =>
  !!(p.finalizers || p.status || p.specPatch || p.createProxyService || p.deleteProxyServices.length);

describe('tailnet names and addresses', () => {
  it('normalises the tailnet and rejects junk', () => {
    expect(normalizeTailnet('.Tailmesh-Test.ts.net.')).toBe(tailnet);
    expect(() => normalizeTailnet('not a domain')).toThrow(/MagicDNS domain/);
  });

  it('matches the real isMagicDNSName regex', () => {
    expect(isMagicDNSName('peer.tailmesh-test.ts.net')).toBe(true);
    expect(isMagicDNSName('peer.tailmesh-test.ts.net.')).toBe(true);
    expect(isMagicDNSName('a.b.tailmesh-test.ts.net')).toBe(false);
    expect(isMagicDNSName('peer.example.com')).toBe(false);
  });

  it('validates DNS labels like util/dnsname.ValidLabel', () => {
    expect(dnsLabelError('istio-system-eastwest')).toBeUndefined();
    expect(dnsLabelError('-x')).toMatch(/must start with a letter or number/);
    expect(dnsLabelError('x-')).toMatch(/must end with a letter or number/);
    expect(dnsLabelError('a_b')).toMatch(/contains invalid character '_'/);
    expect(dnsLabelError('a'.repeat(64))).toMatch(/too long, max length is 63 bytes/);
  });

  it('maps IPv4 to the Tailscale 4-to-6 range like tsaddr.Tailscale4To6', () => {
    expect(tailscale4To6('100.101.102.103')).toBe('fd7a:115c:a1e0:ab12:4843:cd96:6265:6667');
    expect(tailscale4To6('100.64.0.1')).toBe('fd7a:115c:a1e0:ab12:4843:cd96:6240:1');
  });

  it('never hands out reserved addresses', () => {
    expect(isAssignableTailnetIPv4(parseIPv4('100.100.100.100')!)).toBe(false);
    expect(isAssignableTailnetIPv4(parseIPv4('100.115.92.7')!)).toBe(false); // ChromeOS VM range
    expect(isAssignableTailnetIPv4(parseIPv4('100.64.0.0')!)).toBe(false);
    expect(isAssignableTailnetIPv4(parseIPv4('100.128.0.1')!)).toBe(false);
    expect(isAssignableTailnetIPv4(parseIPv4('100.90.1.2')!)).toBe(true);
  });
});

describe('TailnetDeviceRegistry', () => {
  it('is deterministic per key across registries and stays in 100.64.0.0/10', () => {
    const a = new TailnetDeviceRegistry(tailnet).ensure('c1/istio-system/eastwest', 'c1-eastwest');
    const b = new TailnetDeviceRegistry(tailnet).ensure('c1/istio-system/eastwest', 'c1-eastwest');
    expect(a).toEqual(b);
    expect(isCGNAT(a.ipv4)).toBe(true);
    expect(a.fqdn).toBe('c1-eastwest.tailmesh-test.ts.net');
    expect(a.ipv6).toBe(tailscale4To6(a.ipv4));
  });

  it('gives distinct addresses to many Services in many clusters', () => {
    const r = new TailnetDeviceRegistry(tailnet);
    const ips = new Set<string>();
    for (let c = 0; c < 5; c++) {
      for (let i = 0; i < 1000; i++) ips.add(r.ensure(`c${c}/ns/svc-${i}`, `c${c}-svc-${i}`).ipv4);
    }
    expect(ips.size).toBe(5000);
    expect([...ips].every(ip => isAssignableTailnetIPv4(parseIPv4(ip)!))).toBe(true);
  });

  it('probes past a taken address and keeps each key stable', () => {
    const r = new TailnetDeviceRegistry(tailnet);
    const wanted = new TailnetDeviceRegistry(tailnet).ensure('c2/ns/b', 'b').ipv4;
    // Another device already holds b's hash address (e.g. adopted from a status).
    const a = r.ensure('c1/ns/a', 'a', { ipv4: wanted });
    expect(a.ipv4).toBe(wanted);
    const b = r.ensure('c2/ns/b', 'b');
    expect(b.ipv4).not.toBe(wanted);
    expect(r.ensure('c2/ns/b', 'b').ipv4).toBe(b.ipv4);
    expect(r.ensure('c1/ns/a', 'a').ipv4).toBe(wanted);
  });

  it('returns the same address after release and re-creation when nobody took it', () => {
    const r = new TailnetDeviceRegistry(tailnet);
    const first = r.ensure('c1/ns/x', 'x');
    expect(r.release('c1/ns/x')).toBe(true);
    expect(r.release('c1/ns/x')).toBe(false);
    expect(r.get('c1/ns/x')).toBeUndefined();
    expect(r.ensure('c1/ns/x', 'x')).toEqual(first);
  });

  it('suffixes a taken device name like the tailnet does, across clusters', () => {
    const r = new TailnetDeviceRegistry(tailnet);
    const one = r.ensure('c1/istio-system/gw', 'istio-system-gw');
    const two = r.ensure('c2/istio-system/gw', 'istio-system-gw');
    const three = r.ensure('c3/istio-system/gw', 'Istio-System-GW');
    expect([one.hostLabel, two.hostLabel, three.hostLabel]).toEqual([
      'istio-system-gw',
      'istio-system-gw-1',
      'istio-system-gw-2',
    ]);
    r.release('c1/istio-system/gw');
    // Renames do not happen behind a device's back.
    expect(r.ensure('c2/istio-system/gw', 'istio-system-gw').hostLabel).toBe('istio-system-gw-1');
    // A changed hostname annotation renames the device, keeping its address.
    const renamed = r.ensure('c2/istio-system/gw', 'c2-gateway');
    expect(renamed).toMatchObject({ hostLabel: 'c2-gateway', ipv4: two.ipv4 });
    expect(r.ensure('c9/x/y', 'istio-system-gw-1').hostLabel).toBe('istio-system-gw-1');
  });

  it('keeps a long name within 63 bytes when suffixing', () => {
    const r = new TailnetDeviceRegistry(tailnet);
    const base = 'a'.repeat(63);
    r.ensure('c1/n/a', base);
    const second = r.ensure('c2/n/a', base);
    expect(second.hostLabel).toHaveLength(63);
    expect(second.hostLabel.endsWith('-1')).toBe(true);
  });

  it('adopts the name and address found in a status (restart of the stand-in)', () => {
    const r = new TailnetDeviceRegistry(tailnet);
    const d = r.ensure('c1/ns/a', 'gw', { ipv4: '100.77.1.2', label: 'gw-3' });
    expect(d).toMatchObject({ ipv4: '100.77.1.2', hostLabel: 'gw-3' });
    // A status that is not a name for the wanted hostname is not adopted.
    expect(r.ensure('c1/ns/b', 'other', { label: 'gw-4' }).hostLabel).toBe('other');
    expect(r.list().map(x => x.key)).toEqual(['c1/ns/a', 'c1/ns/b']);
  });

  it('hashes with 32-bit FNV-1a', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
  });
});

describe('conditions', () => {
  it('truncates the time to seconds and keeps lastTransitionTime while the status holds', () => {
    expect(conditionTime(t0)).toBe('2025-01-02T03:04:05Z');
    const first = setCondition(undefined, ConditionProxyReady, 'False', 'ProxyInvalid', 'bad', 0, t0);
    const same = setCondition(first, ConditionProxyReady, 'False', 'ProxyInvalid', 'still bad', 0, t1);
    expect(same[0].lastTransitionTime).toBe('2025-01-02T03:04:05Z');
    expect(same[0].message).toBe('still bad');
    const flipped = setCondition(same, ConditionProxyReady, 'True', 'ProxyCreated', 'ProxyCreated', 0, t1);
    expect(flipped).toEqual([
      {
        type: ConditionProxyReady,
        status: 'True',
        reason: 'ProxyCreated',
        message: 'ProxyCreated',
        lastTransitionTime: '2025-01-02T04:00:00Z',
      },
    ]);
    expect(setCondition(flipped, 'Other', 'True', 'R', 'M', 3, t1)[1].observedGeneration).toBe(3);
  });
});

describe('classifyService and validateService', () => {
  it('classifies like the real ServiceReconciler', () => {
    expect(classifyService(lbService())).toEqual({ kind: 'ingress', loadBalancer: true });
    expect(classifyService({ ...lbService(), spec: { type: 'LoadBalancer', clusterIP: '10.0.0.1' } })).toEqual({
      kind: 'none',
    });
    expect(classifyService(egressService('peer.tailmesh-test.ts.net'))).toEqual({
      kind: 'egress',
      fqdn: 'peer.tailmesh-test.ts.net',
    });
    expect(classifyService(lbService({ annotations: { [AnnotationProxyGroup]: 'pg' } }))).toEqual({
      kind: 'proxyGroup',
    });
    const exposed: ServiceObject = {
      metadata: { name: 'a', namespace: 'b', annotations: { 'tailscale.com/expose': 'true' } },
      spec: { type: 'ClusterIP', clusterIP: '10.0.0.9' },
    };
    expect(classifyService(exposed)).toEqual({ kind: 'ingress', loadBalancer: false });
  });

  it('reports the real operator messages', () => {
    expect(validateService(lbService(), tailnet)).toEqual([]);
    expect(validateService(egressService('peer.example.com'), tailnet)).toEqual([
      'invalid value of annotation tailscale.com/tailnet-fqdn: "peer.example.com" does not appear to be a valid MagicDNS name',
    ]);
    expect(
      validateService(egressService('peer.tailmesh-test.ts.net', { [AnnotationTailnetTargetIP]: '100.64.0.1' }), tailnet),
    ).toEqual(['only one of annotations tailscale.com/tailnet-ip and tailscale.com/tailnet-fqdn can be set']);
    expect(validateService(lbService({ annotations: { [AnnotationHostname]: 'bad_name' } }), tailnet)).toEqual([
      `invalid Tailscale hostname specified "bad_name": "bad_name" is not a valid DNS label: contains invalid character '_'`,
    ]);
    const long = lbService({ name: 'x'.repeat(60) });
    expect(validateService(long, tailnet)[0]).toMatch(
      /^invalid Tailscale hostname "istio-system-x+", use "tailscale.com\/hostname" annotation to override: .* too long/,
    );
    expect(validateService(lbService({ annotations: { [AnnotationTags]: 'tag:k8s, k8s' } }), tailnet)).toEqual([
      `invalid tag "k8s": tags must start with 'tag:'`,
    ]);
    expect(validateService({ ...lbService(), spec: { ...lbService().spec, clusterIP: 'None' } }, tailnet)).toEqual([
      'headless Services are not supported.',
    ]);
  });

  it('adds the stand-in check that the FQDN is in the configured tailnet', () => {
    expect(validateService(egressService('peer.tailmesh-test.ts.net'), tailnet)).toEqual([]);
    expect(validateService(egressService('PEER.Tailmesh-Test.ts.net.'), tailnet)).toEqual([]);
    expect(validateService(egressService('peer.other-tailnet.ts.net'), tailnet)).toEqual([
      'invalid value of annotation tailscale.com/tailnet-fqdn: "peer.other-tailnet.ts.net" is not a MagicDNS name in tailnet "tailmesh-test.ts.net" (test bed stand-in check)',
    ]);
  });
});

describe('planService: LoadBalancer ingress', () => {
  it('writes hostname and IPv4 as separate ingress entries, the finalizer and the Ready condition', () => {
    const r = new TailnetDeviceRegistry(tailnet);
    const svc = lbService({ annotations: { [AnnotationHostname]: 'c1-eastwest' } });
    const plan = planService(input(svc, r));
    const dev = r.get('c1/istio-system/eastwest')!;
    expect(plan.action).toBe('provision');
    expect(plan.finalizers).toEqual([FinalizerName]);
    expect(plan.status?.loadBalancer).toEqual({
      ingress: [{ hostname: 'c1-eastwest.tailmesh-test.ts.net' }, { ip: dev.ipv4 }],
    });
    expect(plan.status?.conditions).toEqual([
      {
        type: ConditionProxyReady,
        status: 'True',
        reason: 'ProxyCreated',
        message: 'ProxyCreated',
        lastTransitionTime: '2025-01-02T03:04:05Z',
      },
    ]);
    expect(isCGNAT(dev.ipv4)).toBe(true);
  });

  it('uses the default name <namespace>-<name> and converges without further writes', () => {
    const r = new TailnetDeviceRegistry(tailnet);
    const svc = lbService();
    const plan = planService(input(svc, r));
    expect(plan.status?.loadBalancer?.ingress[0]).toEqual({ hostname: 'istio-system-eastwest.tailmesh-test.ts.net' });
    const after = applyPlan(svc, plan);
    const again = planService(input(after, r, { now: t1 }));
    expect(writes(again)).toBe(false);
    // Same result from a fresh registry (a restarted stand-in) reading the status back.
    const fresh = new TailnetDeviceRegistry(tailnet);
    expect(writes(planService(input(after, fresh, { now: t1 })))).toBe(false);
  });

  it('puts an IPv6 tailnet address for an IPv6 ClusterIP (same family only)', () => {
    const r = new TailnetDeviceRegistry(tailnet);
    const plan = planService(input(lbService({}, 'fd00:10:96::20'), r));
    const dev = r.get('c1/istio-system/eastwest')!;
    expect(plan.status?.loadBalancer?.ingress).toEqual([{ hostname: dev.fqdn }, { ip: dev.ipv6 }]);
  });

  it('does not add the finalizer when told not to', () => {
    const plan = planService(input(lbService(), new TailnetDeviceRegistry(tailnet), { manageFinalizer: false }));
    expect(plan.finalizers).toBeUndefined();
    expect(plan.status?.loadBalancer).toBeDefined();
  });

  it('leaves other load balancers alone', () => {
    const other: ServiceObject = {
      metadata: { name: 'lb', namespace: 'x' },
      spec: { type: 'LoadBalancer', loadBalancerClass: 'metallb', clusterIP: '10.0.0.5' },
      status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } },
    };
    const plan = planService(input(other, new TailnetDeviceRegistry(tailnet)));
    expect(writes(plan)).toBe(false);
  });

  it('clears its ingress, condition and finalizer when the Service stops being a Tailscale LB', () => {
    const r = new TailnetDeviceRegistry(tailnet);
    const svc = lbService();
    const provisioned = applyPlan(svc, planService(input(svc, r)));
    const changed: ServiceObject = { ...provisioned, spec: { type: 'ClusterIP', clusterIP: '10.96.0.20' } };
    const plan = planService(input(changed, r));
    expect(plan.action).toBe('cleanup');
    expect(plan.finalizers).toEqual([]);
    expect(plan.status).toEqual({ conditions: [], loadBalancer: { ingress: [] } });
    expect(plan.releaseDevice).toBe(true);
    // Without the finalizer too (stand-in run with finalizers off), recognised by its values.
    const noFinalizer = { ...changed, metadata: { ...changed.metadata, finalizers: [] } };
    expect(planService(input(noFinalizer, r)).status?.loadBalancer).toEqual({ ingress: [] });
  });

  it('on deletion only removes the finalizer', () => {
    const r = new TailnetDeviceRegistry(tailnet);
    const svc = lbService();
    const provisioned = applyPlan(svc, planService(input(svc, r)));
    provisioned.metadata.deletionTimestamp = '2025-01-02T05:00:00Z';
    const plan = planService(input(provisioned, r));
    expect(plan).toMatchObject({ action: 'cleanup', finalizers: [], releaseDevice: true });
    expect(plan.status).toBeUndefined();
  });

  it('skips ProxyGroup Services', () => {
    const plan = planService(input(lbService({ annotations: { [AnnotationProxyGroup]: 'pg' } }), new TailnetDeviceRegistry(tailnet)));
    expect(plan.action).toBe('skip');
    expect(writes(plan)).toBe(false);
  });

  it('marks an invalid hostname without touching spec or ingress', () => {
    const plan = planService(
      input(lbService({ annotations: { [AnnotationHostname]: '-bad' } }), new TailnetDeviceRegistry(tailnet)),
    );
    expect(plan.action).toBe('invalid');
    expect(plan.finalizers).toBeUndefined();
    expect(plan.status?.loadBalancer).toBeUndefined();
    expect(plan.status?.conditions?.[0]).toMatchObject({ status: 'False', reason: 'ProxyInvalid' });
    expect(plan.event).toMatchObject({ type: 'Warning', reason: 'INVALIDSERVICE' });
  });
});

describe('planService: egress', () => {
  const proxy = (name: string): ServiceObject => ({
    metadata: {
      name,
      namespace: 'tailscale',
      labels: {
        'tailscale.com/managed': 'true',
        'tailscale.com/parent-resource': 'peer-api',
        'tailscale.com/parent-resource-ns': 'mesh',
        'tailscale.com/parent-resource-type': 'svc',
      },
    },
    spec: { clusterIP: 'None' },
  });

  it('first creates the headless proxy Service the real operator creates', () => {
    const svc = egressService('peer.tailmesh-test.ts.net');
    const plan = planService(input(svc, new TailnetDeviceRegistry(tailnet)));
    expect(plan.finalizers).toEqual([FinalizerName]);
    expect(plan.createProxyService).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        generateName: 'ts-peer-api-',
        namespace: 'tailscale',
        labels: proxy('x').metadata.labels,
      },
      spec: { clusterIP: 'None', selector: { app: 'uid-egress' }, ipFamilyPolicy: 'PreferDualStack' },
    });
    expect(plan.specPatch).toBeUndefined();
  });

  it('then points externalName at it, drops the selector, sets Ready, and converges', () => {
    const svc = egressService('peer.tailmesh-test.ts.net');
    svc.metadata.finalizers = [FinalizerName];
    const plan = planService(input(svc, new TailnetDeviceRegistry(tailnet), { proxyServices: [proxy('ts-peer-api-x7k2p')] }));
    expect(plan.specPatch).toEqual({
      type: 'ExternalName',
      externalName: 'ts-peer-api-x7k2p.tailscale.svc.cluster.local',
      selector: null,
    });
    expect(plan.status?.conditions?.[0]).toMatchObject({ type: ConditionProxyReady, status: 'True', reason: 'ProxyCreated' });
    expect(plan.status?.loadBalancer).toBeUndefined();
    const after = applyPlan(svc, plan);
    expect(writes(planService(input(after, new TailnetDeviceRegistry(tailnet), { proxyServices: [proxy('ts-peer-api-x7k2p')], now: t1 })))).toBe(false);
  });

  it('turns a ClusterIP Service with the annotation into ExternalName (like svc.go)', () => {
    const svc = egressService('peer.tailmesh-test.ts.net');
    svc.spec = { type: 'ClusterIP', clusterIP: '10.96.3.3', selector: { app: 'x' } };
    const plan = planService(input(svc, new TailnetDeviceRegistry(tailnet), { proxyServices: [proxy('ts-peer-api-abcde')], clusterDomain: 'c1.local' }));
    expect(plan.specPatch).toEqual({
      type: 'ExternalName',
      externalName: 'ts-peer-api-abcde.tailscale.svc.c1.local',
      selector: null,
    });
  });

  it('removes duplicate proxy Services, keeping one', () => {
    const svc = egressService('peer.tailmesh-test.ts.net');
    const plan = planService(
      input(svc, new TailnetDeviceRegistry(tailnet), { proxyServices: [proxy('ts-peer-api-bbbbb'), proxy('ts-peer-api-aaaaa')] }),
    );
    expect(plan.deleteProxyServices).toEqual(['ts-peer-api-bbbbb']);
    expect(plan.specPatch?.externalName).toBe('ts-peer-api-aaaaa.tailscale.svc.cluster.local');
  });

  it('leaves a Service with a non-tailnet FQDN unchanged apart from the condition, with a Warning event', () => {
    const svc = egressService('peer.other.ts.net');
    const plan = planService(input(svc, new TailnetDeviceRegistry(tailnet)));
    expect(plan).toMatchObject({ action: 'invalid', deleteProxyServices: [] });
    expect(plan.finalizers).toBeUndefined();
    expect(plan.specPatch).toBeUndefined();
    expect(plan.createProxyService).toBeUndefined();
    expect(plan.event).toEqual({
      type: 'Warning',
      reason: 'INVALIDSERVICE',
      message:
        'unable to provision proxy resources: invalid Service: invalid value of annotation tailscale.com/tailnet-fqdn: "peer.other.ts.net" is not a MagicDNS name in tailnet "tailmesh-test.ts.net" (test bed stand-in check)',
    });
    expect(plan.status?.conditions?.[0]).toMatchObject({ status: 'False', reason: 'ProxyInvalid', message: plan.event?.message });
    expect(plan.log[0]).toMatch(/^left unchanged: /);
  });

  it('cleans up the proxy when the annotation goes away', () => {
    const svc = egressService('peer.tailmesh-test.ts.net');
    svc.metadata.finalizers = [FinalizerName];
    svc.metadata.annotations = {};
    svc.status = { conditions: setCondition(undefined, ConditionProxyReady, 'True', 'ProxyCreated', 'ProxyCreated', 0, t0) };
    const plan = planService(input(svc, new TailnetDeviceRegistry(tailnet), { proxyServices: [proxy('ts-peer-api-abcde')] }));
    expect(plan).toMatchObject({ action: 'cleanup', finalizers: [], deleteProxyServices: ['ts-peer-api-abcde'] });
    expect(plan.status).toEqual({ conditions: [] });
  });

  it('cuts long proxy name bases like statefulSetNameBase', () => {
    expect(statefulSetNameBase('peer-api')).toBe('ts-peer-api-');
    const base = statefulSetNameBase('x'.repeat(80));
    expect(base.length + 5).toBe(52);
    expect(base.endsWith('-')).toBe(true);
  });
});

describe('ingressLooksOurs', () => {
  it('recognises only what the stand-in writes', () => {
    expect(ingressLooksOurs([{ hostname: 'a.tailmesh-test.ts.net' }, { ip: '100.70.0.1' }], tailnet)).toBe(true);
    expect(ingressLooksOurs([{ ip: '192.0.2.1' }], tailnet)).toBe(false);
    expect(ingressLooksOurs([], tailnet)).toBe(false);
  });
});

describe('DNSConfig', () => {
  const dc = (extra: Partial<DNSConfigObject> = {}): DNSConfigObject => ({
    metadata: { name: 'ts-dns', uid: 'dc-uid', generation: 2, resourceVersion: '7' },
    spec: { nameserver: {} },
    ...extra,
  });

  it('adds the finalizer, warns about more than one DNSConfig, and only unfinalizes on deletion', () => {
    expect(planDNSConfig(dc(), 1, true)).toEqual({ action: 'provision', finalizers: [FinalizerName], log: [] });
    expect(planDNSConfig(dc(), 2, false).event).toEqual({
      type: 'Warning',
      reason: 'MultipleDNSConfigsPresent',
      message: 'Multiple DNSConfig resources found in cluster. Please ensure no more than one is present.',
    });
    const deleting = dc();
    deleting.metadata.deletionTimestamp = '2025-01-01T00:00:00Z';
    deleting.metadata.finalizers = ['other', FinalizerName];
    expect(planDNSConfig(deleting, 1, true)).toMatchObject({ action: 'cleanup', finalizers: ['other'] });
  });

  it('builds the nameserver resources the real operator deploys', () => {
    const m = nameserverManifests(dc(), 'tailscale');
    const labels = {
      'tailscale.com/managed': 'true',
      'tailscale.com/parent-resource': 'ts-dns',
      'tailscale.com/parent-resource-ns': 'tailscale',
      'tailscale.com/parent-resource-type': 'nameserver',
      'app.kubernetes.io/name': 'tailscale',
      'app.kubernetes.io/component': 'nameserver',
    };
    const owner = [
      { apiVersion: 'tailscale.com/v1alpha1', kind: 'DNSConfig', name: 'ts-dns', uid: 'dc-uid', controller: true, blockOwnerDeletion: true },
    ];
    for (const obj of [m.serviceAccount, m.configMap, m.deployment, m.service]) {
      expect(obj.metadata).toMatchObject({ namespace: 'tailscale', labels, ownerReferences: owner });
    }
    expect([m.serviceAccount.metadata.name, m.configMap.metadata.name, m.deployment.metadata.name, m.service.metadata.name]).toEqual([
      'nameserver',
      'dnsrecords',
      'nameserver',
      'nameserver',
    ]);
    expect(m.service.spec).toEqual({
      selector: { app: 'nameserver' },
      ports: [
        { name: 'udp', targetPort: 1053, port: 53, protocol: 'UDP' },
        { name: 'tcp', targetPort: 1053, port: 53, protocol: 'TCP' },
      ],
    });
    const spec = m.deployment.spec as { replicas: number; template: { spec: { containers: Array<{ image: string }> } } };
    expect(spec.replicas).toBe(1);
    expect(spec.template.spec.containers[0].image).toBe('tailscale/k8s-nameserver:stable');

    const custom = nameserverManifests(
      dc({ spec: { nameserver: { image: { tag: 'v1.80.0' }, replicas: 2, service: { clusterIP: '10.96.0.53' } } } }),
      'ts',
    );
    const cspec = custom.deployment.spec as typeof spec;
    expect(cspec.template.spec.containers[0].image).toBe('tailscale/k8s-nameserver:v1.80.0');
    expect(cspec.replicas).toBe(2);
    expect(custom.service.spec?.clusterIP).toBe('10.96.0.53');
  });

  it('reports the Service ClusterIP in status.nameserver.ip with NameserverReady', () => {
    expect(desiredDNSConfigStatus(dc(), undefined, t0)).toBeUndefined();
    expect(desiredDNSConfigStatus(dc(), 'None', t0)).toBeUndefined();
    const status = desiredDNSConfigStatus(dc(), '10.96.0.53', t0);
    expect(status).toEqual({
      nameserver: { ip: '10.96.0.53' },
      conditions: [
        {
          type: ConditionNameserverReady,
          status: 'True',
          reason: 'NameserverCreated',
          message: 'NameserverCreated',
          observedGeneration: 2,
          lastTransitionTime: '2025-01-02T03:04:05Z',
        },
      ],
    });
    expect(desiredDNSConfigStatus(dc({ status }), '10.96.0.53', t1)).toBeUndefined();
    // A new generation is reflected in observedGeneration.
    const newer = dc({ status });
    newer.metadata.generation = 3;
    expect(desiredDNSConfigStatus(newer, '10.96.0.53', t1)?.conditions[0]).toMatchObject({
      observedGeneration: 3,
      lastTransitionTime: '2025-01-02T03:04:05Z',
    });
  });

  const crdPath = path.resolve(__dirname, '../../../../.testbed/charts/tailscale-crds/tailscale.com_dnsconfigs.yaml');
  (fs.existsSync(crdPath) ? it : it.skip)('matches the installed CRD: status.nameserver.ip via a status subresource', () => {
    type Crd = {
      spec: {
        scope: string;
        versions: Array<{
          name: string;
          subresources?: { status?: object };
          schema: { openAPIV3Schema: { properties: { status: { properties: Record<string, { properties?: Record<string, unknown> }> } } } };
        }>;
      };
    };
    const crd = parse(fs.readFileSync(crdPath, 'utf8')) as Crd;
    const v = crd.spec.versions.find(x => x.name === 'v1alpha1')!;
    expect(crd.spec.scope).toBe('Cluster');
    expect(v.subresources?.status).toBeDefined();
    const status = v.schema.openAPIV3Schema.properties.status.properties;
    expect(Object.keys(status).sort()).toEqual(['conditions', 'nameserver']);
    expect(Object.keys(status.nameserver.properties ?? {})).toEqual(['ip']);
  });
});
