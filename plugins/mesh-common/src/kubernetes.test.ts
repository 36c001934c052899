import {
  COREDNS_CONFIGMAP,
  FIELD_MANAGER,
  KUBE_SYSTEM_NAMESPACE,
} from './kubernetes';
import { validateDnsLabel, validateDnsSubdomain } from './kubernetesNames';

describe('Kubernetes names', () => {
  it('uses valid names', () => {
    expect(validateDnsLabel(KUBE_SYSTEM_NAMESPACE)).toBeUndefined();
    expect(validateDnsSubdomain(COREDNS_CONFIGMAP)).toBeUndefined();
  });

  it('uses a field manager name within the API server limit', () => {
    expect(FIELD_MANAGER.length).toBeLessThanOrEqual(128);
    expect(FIELD_MANAGER).toMatch(/^[\x21-\x7e]+$/);
  });
});
