import { fakeWiringDeps, wiringContext } from './testUtils/wiringDeps';
import { crossNetworkGateway } from './eastWestGateway';
import {
  ISTIO_UNINSTALL_ACTION_ID,
  createIstioUninstallAction,
  isOurs,
  releasesToUninstall,
} from './uninstall';

describe('releasesToUninstall', () => {
  it('removes the gateway before istiod and keeps the base chart unless asked', () => {
    expect(releasesToUninstall(false)).toEqual([
      'istio-eastwestgateway',
      'istiod',
    ]);
    expect(releasesToUninstall(true)).toEqual([
      'istio-eastwestgateway',
      'istiod',
      'istio-base',
    ]);
  });
});

describe('isOurs', () => {
  it('recognises the Gateway mesh:istio:deploy-eastwest-gateway applies', () => {
    expect(isOurs(crossNetworkGateway())).toBe(true);
  });

  it('refuses a Gateway of that name made by hand', () => {
    const { labels, ...metadata } = crossNetworkGateway().metadata!;
    expect(isOurs({ ...crossNetworkGateway(), metadata })).toBe(false);
  });
});

describe('mesh:istio:uninstall', () => {
  const uninstall = jest.fn(async () => {
    throw new Error('helm must not be called');
  });
  const deps = () => {
    const { deps: d } = fakeWiringDeps();
    return { ...d, helm: { uninstall } as unknown as typeof d.helm };
  };
  const run = (input: Record<string, unknown>) =>
    createIstioUninstallAction(deps()).handler(wiringContext(input as never));

  it('has the id of its constant and supports dry run', () => {
    const action = createIstioUninstallAction(deps());
    expect(action.id).toBe(ISTIO_UNINSTALL_ACTION_ID);
    expect(action.id).toBe('mesh:istio:uninstall');
    expect(action.supportsDryRun).toBe(true);
  });

  it('rejects an invalid cluster name', async () => {
    await expect(run({ cluster: 'East_1' })).rejects.toThrow(
      'Invalid input: cluster "East_1"',
    );
  });

  it('rejects an unknown cluster', async () => {
    await expect(run({ cluster: 'nowhere' })).rejects.toThrow(
      'Unknown cluster "nowhere"',
    );
  });

  it('fails on an unreachable cluster before helm runs', async () => {
    await expect(run({ cluster: 'east' })).rejects.toThrow(
      /Reading Gateway istio-system\/cross-network-gateway failed on east: cannot connect/,
    );
    expect(uninstall).not.toHaveBeenCalled();
  });
});
