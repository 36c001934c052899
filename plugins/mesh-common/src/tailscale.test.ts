import { validateDnsLabel, validateHelmReleaseName } from './kubernetesNames';
import {
  TAG_ISTIO_EAST_WEST_GATEWAY,
  TAG_K8S_OPERATOR,
  TAILSCALE_NAMESPACE,
  TAILSCALE_OPERATOR_RELEASE,
} from './tailscale';

describe('Tailscale names', () => {
  it('uses a valid namespace and release name', () => {
    expect(validateDnsLabel(TAILSCALE_NAMESPACE)).toBeUndefined();
    expect(validateHelmReleaseName(TAILSCALE_OPERATOR_RELEASE)).toBeUndefined();
  });

  it('uses tags in the form the policy file accepts', () => {
    for (const tag of [TAG_K8S_OPERATOR, TAG_ISTIO_EAST_WEST_GATEWAY]) {
      expect(tag).toMatch(/^tag:[a-z0-9][a-z0-9-]*$/);
    }
  });
});
