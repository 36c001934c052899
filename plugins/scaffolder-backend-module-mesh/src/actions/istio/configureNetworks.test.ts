import { JsonObject } from '@backstage/config';
import { desiredMeshNetworks } from '@tailmesh/plugin-mesh-common';
import { parse } from 'yaml';
import { fakeWiringDeps, wiringContext } from './testUtils/wiringDeps';
import {
  ISTIO_CONFIGURE_NETWORKS_ACTION_ID,
  createIstioConfigureNetworksAction,
} from './configureNetworks';
import {
  compareMeshNetworks,
  lineDiff,
  memberDiff,
  meshNetworksCheckpointKey,
  renderMeshNetworks,
  rolloutRestartPatch,
  withMeshNetworks,
} from './meshNetworksConfig';

const desired = desiredMeshNetworks([
  {
    cluster: 'west',
    network: 'west-net',
    gatewayAddress: 'west-istio-eastwestgateway.tail1234.ts.net',
  },
  {
    cluster: 'east',
    network: 'east-net',
    gatewayAddress: 'east-istio-eastwestgateway.tail1234.ts.net',
  },
]);
const rendered = renderMeshNetworks(desired);

describe('renderMeshNetworks', () => {
  it('writes networks at the top, as istiod reads the meshNetworks key', () => {
    expect(parse(rendered)).toEqual(desired);
    expect(rendered.startsWith('networks:\n  east-net:\n')).toBe(true);
  });
});

describe('compareMeshNetworks', () => {
  it('agrees with the same networks written in another order and style', () => {
    const reordered = [
      'networks:',
      '  west-net: {gateways: [{port: 15443, address: west-istio-eastwestgateway.tail1234.ts.net}], endpoints: [{fromRegistry: west}]}',
      '  east-net:',
      '    gateways: [{address: east-istio-eastwestgateway.tail1234.ts.net, port: 15443}]',
      '    endpoints: [{fromRegistry: east}]',
    ].join('\n');
    expect(compareMeshNetworks({ meshNetworks: reordered }, desired)).toEqual({
      current: reordered,
      agrees: true,
    });
  });

  it("disagrees with the chart's empty default and with a missing key", () => {
    expect(
      compareMeshNetworks({ meshNetworks: 'networks: {}' }, desired).agrees,
    ).toBe(false);
    expect(compareMeshNetworks({ mesh: 'x: 1' }, desired)).toEqual({
      current: '',
      agrees: false,
    });
    expect(compareMeshNetworks(undefined, desired).agrees).toBe(false);
  });

  it('reports text it cannot read, so it is replaced with a warning', () => {
    const state = compareMeshNetworks(
      { meshNetworks: 'networks: [1]' },
      desired,
    );
    expect(state.agrees).toBe(false);
    expect(state.unreadable).toMatch(/Invalid meshNetworks/);
  });
});

describe('withMeshNetworks', () => {
  it('replaces only the meshNetworks key', () => {
    const data = {
      mesh: 'defaultConfig: {}',
      meshNetworks: 'networks: {}',
      other: 'x',
    };
    expect(withMeshNetworks(data, rendered)).toEqual({
      mesh: 'defaultConfig: {}',
      meshNetworks: rendered,
      other: 'x',
    });
    expect(data.meshNetworks).toBe('networks: {}');
  });
});

describe('lineDiff', () => {
  it('marks kept, removed and added lines', () => {
    expect(lineDiff('a\nb\nc\n', 'a\nc\nd\n')).toBe(
      ['  a', '- b', '  c', '+ d'].join('\n'),
    );
  });

  it('handles an empty side', () => {
    expect(lineDiff('', 'x\ny')).toBe('+ x\n+ y');
    expect(lineDiff('x', '')).toBe('- x');
    expect(lineDiff('', '')).toBe('');
  });
});

describe('memberDiff', () => {
  it('heads the diff with the member and the key', () => {
    expect(
      memberDiff('east', 'istio-system/istio', 'networks: {}', 'networks: {}'),
    ).toBe(
      [
        '--- east: ConfigMap istio-system/istio meshNetworks (current)',
        '+++ east: ConfigMap istio-system/istio meshNetworks (desired)',
        '  networks: {}',
      ].join('\n'),
    );
  });
});

describe('meshNetworksCheckpointKey', () => {
  it('is stable for one member, step and content, and differs otherwise', () => {
    const key = meshNetworksCheckpointKey('restart', 'east', rendered);
    expect(key).toMatch(/^mesh-networks:restart:east:[0-9a-f]{16}$/);
    expect(meshNetworksCheckpointKey('restart', 'east', rendered)).toBe(key);
    expect(meshNetworksCheckpointKey('restart', 'west', rendered)).not.toBe(
      key,
    );
    expect(meshNetworksCheckpointKey('update', 'east', rendered)).not.toBe(key);
    expect(
      meshNetworksCheckpointKey('restart', 'east', `${rendered}#`),
    ).not.toBe(key);
  });
});

describe('rolloutRestartPatch', () => {
  it("sets kubectl's restartedAt annotation on the pod template, to the second", () => {
    expect(rolloutRestartPatch(new Date('2025-03-04T05:06:07.890Z'))).toEqual({
      spec: {
        template: {
          metadata: {
            annotations: {
              'kubectl.kubernetes.io/restartedAt': '2025-03-04T05:06:07Z',
            },
          },
        },
      },
    });
  });
});

describe('mesh:istio:configure-networks', () => {
  it('has the id of its constant and supports dry run', () => {
    const action = createIstioConfigureNetworksAction(fakeWiringDeps().deps);
    expect(action.id).toBe(ISTIO_CONFIGURE_NETWORKS_ACTION_ID);
    expect(action.supportsDryRun).toBe(true);
  });

  const run = (input: JsonObject, tailscale?: Record<string, string>) =>
    createIstioConfigureNetworksAction(fakeWiringDeps(tailscale).deps).handler(
      wiringContext({ timeoutSeconds: 5, ...input }),
    );

  it.each([
    [{ members: [] }, 'Invalid input: members must list at least one cluster'],
    [
      { members: ['east', 'west', 'east'] },
      'Invalid input: members lists "east" more than once',
    ],
    [{ members: ['east', 'West'] }, 'Invalid input: members "West"'],
    [
      { members: ['east'], tailnet: 'Tail.ts.net' },
      'Invalid input: tailnet "Tail.ts.net"',
    ],
    [{ members: ['east', 'nowhere'] }, 'Unknown cluster "nowhere"'],
  ])('rejects %j before touching a cluster', async (input, message) => {
    await expect(run(input)).rejects.toThrow(message);
  });

  it('needs the tailnet configured', async () => {
    await expect(run({ members: ['east'] }, {})).rejects.toThrow(
      'No tailnet configured',
    );
  });
});
