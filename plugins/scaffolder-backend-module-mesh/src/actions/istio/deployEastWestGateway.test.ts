import { JsonObject } from '@backstage/config';
import { fakeWiringDeps, wiringContext } from './testUtils/wiringDeps';
import {
  ISTIO_DEPLOY_EAST_WEST_GATEWAY_ACTION_ID,
  createIstioDeployEastWestGatewayAction,
} from './deployEastWestGateway';
import {
  crossNetworkGateway,
  eastWestGatewayValues,
  gatewayIngress,
  namespaceNetwork,
} from './eastWestGateway';

describe('eastWestGatewayValues', () => {
  const values = eastWestGatewayValues('east', 'east-net');

  it("sets the recipe's values under the gateway chart's keys", () => {
    expect(values).toEqual({
      name: 'istio-eastwestgateway',
      labels: { app: 'istio-eastwestgateway', istio: 'eastwestgateway' },
      env: { ISTIO_META_REQUESTED_NETWORK_VIEW: 'east-net' },
      service: {
        type: 'LoadBalancer',
        loadBalancerClass: 'tailscale',
        annotations: {
          'tailscale.com/hostname': 'east-istio-eastwestgateway',
          'tailscale.com/tags': 'tag:istio-eastwestgateway',
        },
        ports: [
          {
            name: 'status-port',
            port: 15021,
            protocol: 'TCP',
            targetPort: 15021,
          },
          { name: 'tls', port: 15443, protocol: 'TCP', targetPort: 15443 },
        ],
      },
    });
  });

  it('labels nothing with the network: istiod would take the gateway address from the load balancer status', () => {
    // With networkGateway set the chart labels the Service topology.istio.io/network, and istiod
    // then uses the Service's 100.x load-balancer address, which pods cannot route to.
    expect(values).not.toHaveProperty('networkGateway');
    expect(values).not.toHaveProperty('networkGatewayPorts');
    expect(values.labels).not.toHaveProperty(['topology.istio.io/network']);
    expect(JSON.stringify(values)).not.toContain('topology.istio.io/network');
  });

  it("exposes neither istiod's xDS nor its webhook port on the tailnet", () => {
    const ports = JSON.stringify(values);
    expect(ports).not.toContain('15012');
    expect(ports).not.toContain('15017');
  });

  it('selects the pods the cross-network Gateway selects', () => {
    expect(values.labels).toMatchObject(
      crossNetworkGateway().spec.selector as Record<string, string>,
    );
  });
});

describe('crossNetworkGateway', () => {
  it('passes *.local through on the mTLS port', () => {
    const gw = crossNetworkGateway();
    expect(gw.apiVersion).toBe('networking.istio.io/v1');
    expect(gw.metadata).toMatchObject({
      name: 'cross-network-gateway',
      namespace: 'istio-system',
    });
    expect(gw.spec).toEqual({
      selector: { istio: 'eastwestgateway' },
      servers: [
        {
          port: { number: 15443, name: 'tls', protocol: 'TLS' },
          tls: { mode: 'AUTO_PASSTHROUGH' },
          hosts: ['*.local'],
        },
      ],
    });
  });
});

describe('gatewayIngress', () => {
  it('reads the name and address the operator writes as separate entries', () => {
    expect(
      gatewayIngress([
        { hostname: 'east-istio-eastwestgateway.tail1234.ts.net' },
        { ip: '100.64.0.7' },
      ]),
    ).toEqual({
      hostname: 'east-istio-eastwestgateway.tail1234.ts.net',
      ip: '100.64.0.7',
    });
    expect(gatewayIngress([{ ip: '100.64.0.7' }])).toEqual({
      ip: '100.64.0.7',
    });
  });

  it('is undefined until there is an address', () => {
    expect(gatewayIngress(undefined)).toBeUndefined();
    expect(gatewayIngress([])).toBeUndefined();
    expect(gatewayIngress([{}])).toBeUndefined();
  });
});

describe('namespaceNetwork', () => {
  it('reads the topology label', () => {
    expect(
      namespaceNetwork({
        metadata: { labels: { 'topology.istio.io/network': 'n1' } },
      }),
    ).toBe('n1');
    expect(namespaceNetwork({ metadata: {} })).toBeUndefined();
  });
});

describe('mesh:istio:deploy-eastwest-gateway', () => {
  it('has the id of its constant and supports dry run', () => {
    const action = createIstioDeployEastWestGatewayAction(
      fakeWiringDeps().deps,
    );
    expect(action.id).toBe(ISTIO_DEPLOY_EAST_WEST_GATEWAY_ACTION_ID);
    expect(action.supportsDryRun).toBe(true);
  });

  const run = (input: JsonObject, tailscale?: Record<string, string>) => {
    const fake = fakeWiringDeps(tailscale);
    const result = createIstioDeployEastWestGatewayAction(fake.deps).handler(
      wiringContext(input),
    );
    return { result, upgradeInstall: fake.upgradeInstall };
  };

  it.each([
    [
      { cluster: 'east', network: 'bad network' },
      'Invalid input: network "bad network"',
    ],
    [{ cluster: 'East', network: 'east-net' }, 'Invalid input: cluster "East"'],
    [
      { cluster: 'east', network: 'east-net', tailnet: 'nodots' },
      'Invalid input: tailnet "nodots"',
    ],
    [{ cluster: 'nowhere', network: 'east-net' }, 'Unknown cluster "nowhere"'],
  ])('rejects %j before touching a cluster', async (input, message) => {
    const { result, upgradeInstall } = run({ timeoutSeconds: 5, ...input });
    await expect(result).rejects.toThrow(message);
    expect(upgradeInstall).not.toHaveBeenCalled();
  });

  it('needs the tailnet configured', async () => {
    await expect(
      run({ cluster: 'east', network: 'east-net', timeoutSeconds: 5 }, {})
        .result,
    ).rejects.toThrow('No tailnet configured');
  });
});
