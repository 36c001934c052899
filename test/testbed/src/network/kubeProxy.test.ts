/**
 * Which Services the test bed's kube-proxy listens for: istiod's, by ClusterIP (kubeProxy.ts).
 */
import type { Service } from '../kube/clusterCache';
import { isProxiedService } from './kubeProxy';

function service(
  name: string,
  opts: {
    namespace?: string;
    clusterIP?: string;
    deletionTimestamp?: string;
    type?: string;
  } = {},
): Service {
  const { namespace = 'istio-system', clusterIP = '10.96.0.10' } = opts;
  return {
    metadata: {
      name,
      namespace,
      ...(opts.deletionTimestamp
        ? { deletionTimestamp: opts.deletionTimestamp }
        : {}),
    },
    spec: {
      type: opts.type ?? 'ClusterIP',
      clusterIP,
      ports: [{ name: 'tls-xds', port: 15012, protocol: 'TCP' }],
    },
  };
}

describe('isProxiedService', () => {
  it('proxies istiod in istio-system', () => {
    expect(isProxiedService(service('istiod'))).toBe(true);
  });

  it('proxies a revision of istiod (istiod-<rev>)', () => {
    expect(isProxiedService(service('istiod-canary'))).toBe(true);
    expect(isProxiedService(service('istiod-1-24-2'))).toBe(true);
  });

  it('proxies a Service of type LoadBalancer too, by its ClusterIP', () => {
    expect(isProxiedService(service('istiod', { type: 'LoadBalancer' }))).toBe(
      true,
    );
  });

  it('leaves a headless istiod alone (no ClusterIP to listen on)', () => {
    expect(isProxiedService(service('istiod', { clusterIP: 'None' }))).toBe(
      false,
    );
  });

  it('leaves a Service without a ClusterIP alone', () => {
    expect(isProxiedService(service('istiod', { clusterIP: '' }))).toBe(false);
    const noSpec: Service = {
      metadata: { name: 'istiod', namespace: 'istio-system' },
    };
    expect(isProxiedService(noSpec)).toBe(false);
    const noIp: Service = {
      metadata: { name: 'istiod', namespace: 'istio-system' },
      spec: { type: 'ExternalName', externalName: 'istiod.example.com' },
    };
    expect(isProxiedService(noIp)).toBe(false);
  });

  it('leaves istiod in another namespace alone', () => {
    expect(isProxiedService(service('istiod', { namespace: 'default' }))).toBe(
      false,
    );
    expect(
      isProxiedService(service('istiod', { namespace: 'istio-system-2' })),
    ).toBe(false);
    const noNamespace: Service = {
      metadata: { name: 'istiod' },
      spec: { clusterIP: '10.96.0.10' },
    };
    expect(isProxiedService(noNamespace)).toBe(false);
  });

  it('leaves the other Services of istio-system alone', () => {
    for (const name of [
      'istio-eastwestgateway',
      'istio-ingressgateway',
      'istiodx',
      'istiod-',
      'xistiod',
      'my-istiod',
      'istiod.canary',
      'istiod-Canary',
    ]) {
      expect({ name, proxied: isProxiedService(service(name)) }).toEqual({
        name,
        proxied: false,
      });
    }
  });

  it('leaves a Service that is being deleted alone', () => {
    expect(
      isProxiedService(
        service('istiod', { deletionTimestamp: '2025-01-01T00:00:00Z' }),
      ),
    ).toBe(false);
  });
});
