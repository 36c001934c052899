import {
  CACERTS_KEYS,
  CROSS_NETWORK_GATEWAY,
  EAST_WEST_GATEWAY_HOSTNAME_SUFFIX,
  EAST_WEST_GATEWAY_PORTS,
  EAST_WEST_GATEWAY_RELEASE,
  EAST_WEST_GATEWAY_SERVICE,
  ISTIO_BASE_RELEASE,
  ISTIO_NAMESPACE,
  ISTIOD_RELEASE,
  istiodDeploymentName,
} from './istio';
import {
  validateDnsLabel,
  validateDnsSubdomain,
  validateHelmReleaseName,
} from './kubernetesNames';

describe('Istio names', () => {
  it('names the istiod Deployment like the istiod chart does', () => {
    expect(istiodDeploymentName()).toBe('istiod');
    expect(istiodDeploymentName('1-24')).toBe('istiod-1-24');
  });

  it('uses valid Helm release names', () => {
    for (const release of [
      ISTIO_BASE_RELEASE,
      ISTIOD_RELEASE,
      EAST_WEST_GATEWAY_RELEASE,
    ]) {
      expect(validateHelmReleaseName(release)).toBeUndefined();
    }
  });

  it('uses valid object names', () => {
    expect(validateDnsLabel(ISTIO_NAMESPACE)).toBeUndefined();
    expect(validateDnsLabel(EAST_WEST_GATEWAY_SERVICE)).toBeUndefined();
    expect(validateDnsSubdomain(CROSS_NETWORK_GATEWAY)).toBeUndefined();
  });

  it('derives the gateway hostname suffix from the gateway Service', () => {
    expect(EAST_WEST_GATEWAY_HOSTNAME_SUFFIX).toBe('-istio-eastwestgateway');
  });

  it('lists only the readiness and cross-network mTLS ports under the gateway chart names', () => {
    // Multi-primary needs neither tls-istiod (15012) nor tls-webhook (15017): they would only
    // expose istiod on the tailnet.
    expect(EAST_WEST_GATEWAY_PORTS).toEqual([
      { name: 'status-port', port: 15021 },
      { name: 'tls', port: 15443 },
    ]);
  });

  it('keeps the cacerts keys istiod reads', () => {
    expect(Object.values(CACERTS_KEYS).sort()).toEqual([
      'ca-cert.pem',
      'ca-key.pem',
      'cert-chain.pem',
      'root-cert.pem',
    ]);
  });
});
