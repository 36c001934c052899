import { ApiException } from '@kubernetes/client-node';
import { missingPrerequisite } from './apply';

const notFound = (message = 'Unsuccessful HTTP Request') => {
  const e = new ApiException(404, message, '{"kind":"Status"}', {});
  e.message = message;
  return e;
};

const gateway = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'cross-network-gateway', namespace: 'istio-system' },
};
const dnsConfig = {
  apiVersion: 'tailscale.com/v1alpha1',
  kind: 'DNSConfig',
  metadata: { name: 'ts-dns' },
};

describe('missingPrerequisite', () => {
  it('names a kind whose group/version is not served (discovery 404)', () => {
    expect(
      missingPrerequisite(
        notFound(
          'Failed to fetch resource metadata for tailscale.com/v1alpha1/DNSConfig: HTTP-Code: 404',
        ),
        dnsConfig,
      ),
    ).toBe('kind DNSConfig (tailscale.com/v1alpha1) is not served yet');
  });

  it('names a kind its served group/version does not have', () => {
    expect(
      missingPrerequisite(
        new Error(
          'Unrecognized API version and kind: networking.istio.io/v1 Gateway',
        ),
        gateway,
      ),
    ).toBe('kind Gateway (networking.istio.io/v1) is not served yet');
  });

  it('names the namespace when an apply of a namespaced object answers 404', () => {
    expect(missingPrerequisite(notFound(), gateway)).toBe(
      'namespace istio-system does not exist yet',
    );
  });

  it('names the kind when an apply of a cluster-scoped object answers 404', () => {
    expect(missingPrerequisite(notFound(), dnsConfig)).toBe(
      'kind DNSConfig (tailscale.com/v1alpha1) is not served yet',
    );
  });

  it('leaves every other failure alone', () => {
    expect(
      missingPrerequisite(new ApiException(403, 'Forbidden', '', {}), gateway),
    ).toBeUndefined();
    expect(
      missingPrerequisite(new ApiException(422, 'Invalid', '', {}), gateway),
    ).toBeUndefined();
    expect(
      missingPrerequisite(new Error('connect ECONNREFUSED'), gateway),
    ).toBeUndefined();
  });
});
