import {
  ISTIO_REMOTE_READERS_BINDING,
  ISTIO_REMOTE_READERS_GROUP,
  istioReaderClusterRoleName,
} from './remoteAccess';
import { validateDnsSubdomain } from './kubernetesNames';

describe('istioReaderClusterRoleName', () => {
  it('matches the istiod chart template for the default install', () => {
    expect(istioReaderClusterRoleName()).toBe(
      'istio-reader-clusterrole-istio-system',
    );
  });

  it('includes the revision and namespace when given', () => {
    expect(
      istioReaderClusterRoleName({ namespace: 'istio', revision: 'canary' }),
    ).toBe('istio-reader-clusterrole-canary-istio');
    expect(istioReaderClusterRoleName({ revision: '' })).toBe(
      'istio-reader-clusterrole-istio-system',
    );
  });
});

describe('remote access names', () => {
  it('does not reuse a privileged group', () => {
    expect(ISTIO_REMOTE_READERS_GROUP).not.toMatch(/^system:/);
  });

  it('uses a valid binding name', () => {
    expect(validateDnsSubdomain(ISTIO_REMOTE_READERS_BINDING)).toBeUndefined();
  });
});
