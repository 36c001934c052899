import { X509Certificate } from 'node:crypto';
import {
  coreDnsProjector,
  fingerprintOf,
  projectDeployment,
  projectEndpointSlice,
  projectIstioNamespace,
  projectMeshConfig,
  projectNode,
  projectRemoteSecret,
  projectRootCert,
  projectService,
} from './projections';

// A throwaway self-signed certificate (no key kept) and its SHA-256 fingerprint.
const rootPem = `-----BEGIN CERTIFICATE-----
MIIBlTCCATugAwIBAgIUbFbvdzH2VQTeZuIDBKhIOavpuNwwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUcHJvamVjdGlvbiB0ZXN0IHJvb3QwIBcNMjYxMTI2MTEwMzIx
WhgPMjEyNjExMDIxMTAzMjFaMB8xHTAbBgNVBAMMFHByb2plY3Rpb24gdGVzdCBy
b290MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECRkqqesQGdTaDbpvRzJpErzY
0PYekkVccVknec6shkJ8xABqf3xG9nv8wN7UP2DpZEzsXwdYLyKAvUszMR8bHqNT
MFEwHQYDVR0OBBYEFEfXZtUA+ZjgXPwihw4UQP8TjYD0MB8GA1UdIwQYMBaAFEfX
ZtUA+ZjgXPwihw4UQP8TjYD0MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SAAwRQIgavXIlqbVOrCmjpYv4H1+B+bODWuOuGCE/E8fdlG5irwCIQCgujq+CX8b
u0tWIPzEMHq5PvG2iNONBtnn4pk0eaEtdA==
-----END CERTIFICATE-----
`;
const rootFingerprint =
  '51:83:BE:B5:4F:A0:38:8B:84:13:D8:CF:83:54:B5:5B:1A:E1:A9:C3:B4:F7:64:D9:E4:79:39:65:02:65:D6:AF';

describe('projections', () => {
  it('keeps readiness, replica counts and version of a Deployment', () => {
    const available = [{ type: 'Available', status: 'True' }];
    expect(
      projectDeployment({
        spec: {
          replicas: 2,
          selector: {},
          template: {
            spec: {
              containers: [
                { name: 'discovery', image: 'docker.io/istio/pilot:1.27.3' },
              ],
            },
          },
        },
        status: { readyReplicas: 2, conditions: available },
      }),
    ).toEqual({
      ready: true,
      version: '1.27.3',
      replicas: { ready: 2, desired: 2 },
    });
    expect(
      projectDeployment({
        spec: { replicas: 2, selector: {}, template: {} },
        status: { readyReplicas: 1, conditions: available },
      }),
    ).toEqual({ ready: false, replicas: { ready: 1, desired: 2 } });
    expect(projectDeployment({ status: { readyReplicas: 1 } })).toEqual({
      ready: false,
      replicas: { ready: 1, desired: 1 },
    });
  });

  it('keeps the ingress only of the east-west gateway and the peer only of egress Services', () => {
    const ingress = [
      { hostname: 'c1-istio-eastwestgateway.tail.ts.net' },
      { ip: '100.64.0.7' },
    ];
    expect(
      projectService({
        metadata: { namespace: 'istio-system', name: 'istio-eastwestgateway' },
        status: { loadBalancer: { ingress } },
      }),
    ).toEqual({
      namespace: 'istio-system',
      name: 'istio-eastwestgateway',
      ingress: {
        hostname: 'c1-istio-eastwestgateway.tail.ts.net',
        ip: '100.64.0.7',
      },
    });
    expect(
      projectService({
        metadata: {
          namespace: 'tailscale',
          name: 'c2-k8s-operator',
          labels: { 'tailmesh.dev/peer': 'c2' },
        },
        status: {
          conditions: [
            {
              type: 'TailscaleProxyReady',
              status: 'True',
              lastTransitionTime: new Date(0),
              message: '',
              reason: '',
            },
          ],
        },
      }),
    ).toEqual({
      namespace: 'tailscale',
      name: 'c2-k8s-operator',
      egress: { peer: 'c2', to: 'api-server-proxy', ready: true },
    });
    expect(
      projectService({
        metadata: {
          namespace: 'shop',
          name: 'web',
          labels: { 'tailmesh.dev/peer': 'c2' },
        },
        spec: { ports: [{ port: 80 }] },
        status: { loadBalancer: { ingress } },
      }),
    ).toEqual({ namespace: 'shop', name: 'web' });
  });

  it('keeps which of the peer an egress Service leads to, by its name', () => {
    const egress = (name: string, ready: boolean) =>
      projectService({
        metadata: {
          namespace: 'tailscale',
          name,
          labels: { 'tailmesh.dev/peer': 'c2' },
        },
        status: {
          conditions: [
            {
              type: 'TailscaleProxyReady',
              status: ready ? 'True' : 'False',
              lastTransitionTime: new Date(0),
              message: '',
              reason: '',
            },
          ],
        },
      });
    expect(egress('c2-istio-eastwestgateway', false)).toEqual({
      namespace: 'tailscale',
      name: 'c2-istio-eastwestgateway',
      egress: { peer: 'c2', to: 'east-west-gateway', ready: false },
    });
    // Labelled for c2 but named like neither of its egress Services: no target.
    expect(egress('c3-k8s-operator', true)).toEqual({
      namespace: 'tailscale',
      name: 'c3-k8s-operator',
      egress: { peer: 'c2', ready: true },
    });
  });

  it('reduces an EndpointSlice to ready and not-ready counts per zone', () => {
    expect(
      projectEndpointSlice({
        metadata: {
          namespace: 'shop',
          name: 'web-abcde',
          labels: { 'kubernetes.io/service-name': 'web' },
        },
        addressType: 'IPv4',
        endpoints: [
          { addresses: ['10.0.0.1'], zone: 'b', conditions: { ready: true } },
          { addresses: ['10.0.0.2'], zone: 'a', conditions: { ready: true } },
          { addresses: ['10.0.0.3'], zone: 'a', conditions: { ready: false } },
          { addresses: ['10.0.0.4'], zone: 'a', conditions: {} },
          {
            addresses: ['10.0.0.5'],
            zone: 'a',
            conditions: { ready: false, terminating: true },
          },
          { addresses: ['10.0.0.6'] },
        ],
      }),
    ).toEqual({
      namespace: 'shop',
      service: 'web',
      addressType: 'IPv4',
      zones: [
        { zone: '', ready: 1, notReady: 0 },
        { zone: 'a', ready: 2, notReady: 1 },
        { zone: 'b', ready: 1, notReady: 0 },
      ],
    });
    expect(
      projectEndpointSlice({
        metadata: { name: 'manual' },
        addressType: 'IPv4',
        endpoints: [],
      }),
    ).toBeUndefined();
  });

  it('reads locality, network and mesh id from labels', () => {
    expect(
      projectNode({
        metadata: {
          labels: {
            'topology.kubernetes.io/region': 'r1',
            'topology.kubernetes.io/zone': 'r1-a',
          },
        },
      }),
    ).toEqual({ region: 'r1', zone: 'r1-a' });
    expect(
      projectIstioNamespace({
        metadata: {
          labels: {
            'topology.istio.io/network': 'network1',
            'tailmesh.dev/mesh-id': 'mesh1',
          },
        },
      }),
    ).toEqual({ network: 'network1', meshId: 'mesh1' });
  });

  it('parses meshNetworks, and treats one that does not parse as absent', () => {
    expect(
      projectMeshConfig({
        data: {
          meshNetworks:
            'networks:\n  network2:\n    endpoints: [{fromRegistry: c2}]\n    gateways: [{address: 100.64.0.2, port: 15443}]\n',
        },
      }),
    ).toEqual({
      meshNetworks: {
        networks: {
          network2: {
            endpoints: [{ fromRegistry: 'c2' }],
            gateways: [{ address: '100.64.0.2', port: 15443 }],
          },
        },
      },
    });
    expect(
      projectMeshConfig({ data: { meshNetworks: 'networks: 3' } }),
    ).toEqual({});
    expect(projectMeshConfig({ data: {} })).toEqual({});
  });

  it('keeps only the fingerprint and the end of the root certificate', () => {
    expect(projectRootCert({ data: { 'root-cert.pem': rootPem } })).toEqual({
      fingerprint: rootFingerprint,
      notAfter: new Date(new X509Certificate(rootPem).validTo).toISOString(),
    });
    expect(
      projectRootCert({ data: { 'root-cert.pem': 'not a cert' } }),
    ).toEqual({
      fingerprint: undefined,
    });
    expect(fingerprintOf(undefined)).toBeUndefined();
  });

  it('keeps only whether the Corefile has the tailnet stanza', () => {
    const project = coreDnsProjector('tail1234.ts.net');
    expect(
      project({
        data: {
          Corefile:
            '.:53 {}\n# tailmesh:begin tail1234.ts.net\ntail1234.ts.net:53 {}\n# tailmesh:end tail1234.ts.net\n',
        },
      }),
    ).toEqual({ tailnetStanza: true });
    expect(project({ data: { Corefile: '.:53 {}\n' } })).toEqual({
      tailnetStanza: false,
    });
  });

  it('names the cluster of a remote secret from its annotation, else its name', () => {
    expect(
      projectRemoteSecret({
        metadata: {
          name: 'istio-remote-secret-c2',
          annotations: { 'networking.istio.io/cluster': 'east' },
        },
      }),
    ).toEqual({ cluster: 'east' });
    expect(
      projectRemoteSecret({ metadata: { name: 'istio-remote-secret-c2' } }),
    ).toEqual({
      cluster: 'c2',
    });
    expect(projectRemoteSecret({ metadata: { name: 'other' } })).toEqual({
      cluster: undefined,
    });
  });
});
