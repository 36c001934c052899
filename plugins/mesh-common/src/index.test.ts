import * as common from './index';

describe('package entry point', () => {
  it('re-exports every module', () => {
    for (const name of [
      'ISTIO_NAMESPACE',
      'TAILSCALE_OPERATOR_DEPLOYMENT',
      'COREDNS_CONFIGMAP',
      'ISTIO_REMOTE_READERS_GROUP',
      'LABEL_ISTIO_NETWORK',
      'getMeshServiceRef',
      'parseMeshClusterSpec',
      'operatorApiUrl',
      'desiredMeshNetworks',
      'AUDIT_FINDING_KINDS',
      'sortFindings',
      'summarizeService',
      'parseServiceRef',
      'meshPermissions',
      'validateDnsLabel',
      'describeInputValue',
      'compareStrings',
      'mostCommon',
    ]) {
      expect(common).toHaveProperty(name);
    }
  });
});
