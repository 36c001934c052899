import { InputError } from '@backstage/errors';
import { CLUSTER_NAME_MAX_LENGTH } from './cluster';
import {
  DNS1035_LABEL_PATTERN,
  validateDnsLabel,
  validateDnsSubdomain,
} from './kubernetesNames';
import {
  EGRESS_SERVICE_NAMESPACE,
  clusterOfRemoteSecret,
  coreDnsStanzaMarkers,
  eastWestGatewayFqdn,
  eastWestGatewayHostname,
  egressServiceName,
  egressTargetOf,
  gatewayEgressServiceName,
  operatorApiUrl,
  operatorFqdn,
  operatorHostname,
  remoteSecretName,
  tailnetFqdn,
} from './names';

const tailnet = 'tail1234.ts.net';

describe('name builders', () => {
  it('follow the recipe', () => {
    expect(operatorHostname('cluster1')).toBe('cluster1-k8s-operator');
    expect(eastWestGatewayHostname('cluster1')).toBe(
      'cluster1-istio-eastwestgateway',
    );
    expect(tailnetFqdn('host', tailnet)).toBe('host.tail1234.ts.net');
    expect(operatorFqdn('cluster2', tailnet)).toBe(
      'cluster2-k8s-operator.tail1234.ts.net',
    );
    expect(eastWestGatewayFqdn('cluster2', tailnet)).toBe(
      'cluster2-istio-eastwestgateway.tail1234.ts.net',
    );
    expect(operatorApiUrl('cluster2', tailnet)).toBe(
      'https://cluster2-k8s-operator.tail1234.ts.net',
    );
    expect(remoteSecretName('cluster2')).toBe('istio-remote-secret-cluster2');
    expect(egressServiceName('cluster2')).toBe('cluster2-k8s-operator');
    expect(gatewayEgressServiceName('cluster2')).toBe(
      'cluster2-istio-eastwestgateway',
    );
    expect(EGRESS_SERVICE_NAMESPACE).toBe('tailscale');
  });

  it('keep every derived name valid for the longest cluster name', () => {
    const cluster = 'a'.repeat(CLUSTER_NAME_MAX_LENGTH);
    expect(validateDnsLabel(operatorHostname(cluster))).toBeUndefined();
    expect(validateDnsLabel(eastWestGatewayHostname(cluster))).toBeUndefined();
    expect(eastWestGatewayHostname(cluster)).toHaveLength(63);
    expect(DNS1035_LABEL_PATTERN.test(egressServiceName(cluster))).toBe(true);
    expect(DNS1035_LABEL_PATTERN.test(gatewayEgressServiceName(cluster))).toBe(
      true,
    );
    expect(validateDnsSubdomain(remoteSecretName(cluster))).toBeUndefined();
    const longTailnet = `${'b'.repeat(63)}.ts.net`;
    expect(
      validateDnsSubdomain(eastWestGatewayFqdn(cluster, longTailnet)),
    ).toBeUndefined();
  });

  it.each([
    ['Cluster1'],
    [''],
    ['-c'],
    ['1c'],
    ['a'.repeat(CLUSTER_NAME_MAX_LENGTH + 1)],
  ])('reject the invalid cluster name %j', cluster => {
    for (const build of [
      operatorHostname,
      eastWestGatewayHostname,
      remoteSecretName,
      egressServiceName,
      gatewayEgressServiceName,
      (c: string) => operatorFqdn(c, tailnet),
      (c: string) => eastWestGatewayFqdn(c, tailnet),
      (c: string) => operatorApiUrl(c, tailnet),
    ]) {
      expect(() => build(cluster)).toThrow(InputError);
    }
  });

  it('name the problem in the error', () => {
    expect(() => operatorHostname('Cluster1')).toThrow(
      'Invalid cluster name "Cluster1": must be lowercase',
    );
  });

  it('reject an invalid tailnet or host', () => {
    expect(() => operatorFqdn('cluster1', 'ts')).toThrow(
      'Invalid tailnet "ts": must be the MagicDNS domain',
    );
    expect(() => tailnetFqdn('Host', tailnet)).toThrow(
      'Invalid tailnet hostname "Host": must be lowercase',
    );
    expect(() => tailnetFqdn('host', 'TAIL.ts.net')).toThrow(InputError);
  });
});

describe('egressTargetOf', () => {
  it('inverts both egress Service names', () => {
    for (const peer of ['cluster2', 'a', 'eu-west-1']) {
      expect(egressTargetOf(egressServiceName(peer), peer)).toBe(
        'api-server-proxy',
      );
      expect(egressTargetOf(gatewayEgressServiceName(peer), peer)).toBe(
        'east-west-gateway',
      );
    }
  });

  it.each([
    ['cluster3-k8s-operator', 'cluster2'],
    ['cluster3-istio-eastwestgateway', 'cluster2'],
    ['cluster2', 'cluster2'],
    ['cluster2-k8s-operator-extra', 'cluster2'],
    ['my-egress', 'cluster2'],
    ['Cluster2-k8s-operator', 'Cluster2'],
    ['-k8s-operator', ''],
  ])('returns undefined for %j with peer %j', (name, peer) => {
    expect(egressTargetOf(name, peer)).toBeUndefined();
  });
});

describe('clusterOfRemoteSecret', () => {
  it('inverts remoteSecretName', () => {
    for (const cluster of ['cluster1', 'a', 'eu-west-1', 'a'.repeat(41)]) {
      expect(clusterOfRemoteSecret(remoteSecretName(cluster))).toBe(cluster);
    }
  });

  it('also attributes secrets for clusters Tailmesh would not name', () => {
    expect(clusterOfRemoteSecret('istio-remote-secret-1cluster')).toBe(
      '1cluster',
    );
  });

  it.each([
    'istio-remote-secret-',
    'istio-remote-secret',
    'cacerts',
    'remote-secret-cluster1',
    'istio-remote-secret-a.b',
    'istio-remote-secret-a-',
  ])('returns undefined for %j', name => {
    expect(clusterOfRemoteSecret(name)).toBeUndefined();
  });
});

describe('coreDnsStanzaMarkers', () => {
  it('names the tailnet in both Corefile comment lines', () => {
    expect(coreDnsStanzaMarkers(tailnet)).toEqual({
      begin: '# tailmesh:begin tail1234.ts.net',
      end: '# tailmesh:end tail1234.ts.net',
    });
  });

  it('gives different tailnets different markers', () => {
    expect(coreDnsStanzaMarkers('a.ts.net').begin).not.toBe(
      coreDnsStanzaMarkers('b.ts.net').begin,
    );
  });

  it('rejects an invalid tailnet', () => {
    expect(() => coreDnsStanzaMarkers('tail\n1234.ts.net')).toThrow(InputError);
  });
});
