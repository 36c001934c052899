import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { ConfigReader } from '@backstage/config';
import {
  ISTIO_MESH_CONFIGMAP,
  ISTIO_MESH_NETWORKS_KEY,
  ISTIO_NAMESPACE,
  parseMeshNetworks,
} from '@tailmesh/plugin-mesh-common';
import {
  createIstioConfigureNetworksAction,
  createIstioDeployEastWestGatewayAction,
  createIstioInstallAction,
  createIstioUninstallAction,
  createMeshActionDeps,
  createTailscaleInstallOperatorAction,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import { parse } from 'yaml';
import { binDir } from '../../testbed/src/layout';
import { runAction } from '../../support/actions';
import { testbedAppConfig } from '../../support/meshConfig';
import {
  helm,
  kubeConfig,
  releaseClusters,
  testbed,
} from '../../support/testbed';

// Every chart-driven action with Istio's released charts (test/fixtures/istio-release-charts,
// unmodified from the release tags), as users install them, besides the development charts the
// other tests use. cluster20 belongs to this file.
const cluster = 'cluster20';
const network = 'network20';
const RELEASES = ['istio-1.28.10', 'istio-1.29.6'];
const chartsOf = (release: string) => {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'istio-release-charts', release);
  return {
    istioBase: { chart: path.join(dir, 'base') },
    istiod: { chart: path.join(dir, 'istio-control', 'istio-discovery') },
    gateway: { chart: path.join(dir, 'gateway') },
  };
};

function depsFor(release: string) {
  const base = testbedAppConfig([cluster]);
  return createMeshActionDeps(
    new ConfigReader({
      ...base,
      mesh: { ...base.mesh, charts: { ...base.mesh.charts, ...chartsOf(release) } },
    }),
  );
}

const core = () => kubeConfig(cluster).makeApiClient(CoreV1Api);
const run = promisify(execFile);

afterAll(() => releaseClusters([cluster]), 180_000);

describe.each(RELEASES)('the chart-driven actions with the %s release charts', release => {
  const deps = depsFor(release);
  const tailnet = () => testbed().tailnet;

  beforeAll(async () => {
    await runAction(createTailscaleInstallOperatorAction(deps), { cluster, timeoutSeconds: 120 });
  }, 300_000);

  afterAll(async () => {
    await runAction(createIstioUninstallAction(deps), { cluster, includeBase: true, timeoutSeconds: 120 }).catch(
      () => undefined,
    );
  }, 300_000);

  it('installs base and istiod, deploys the east-west gateway, and keeps meshNetworks in the release values', async () => {
    await runAction(createIstioInstallAction(deps), { cluster, meshId: 'release-charts', network, timeoutSeconds: 120 });
    const gateway = await runAction(createIstioDeployEastWestGatewayAction(deps), {
      cluster,
      network,
      tailnet: tailnet(),
      timeoutSeconds: 120,
    });
    expect(gateway.output.gatewayAddress).toBe(`${cluster}-istio-eastwestgateway.${tailnet()}`);

    // helm accepted the values under the release's schema, and the Service is what istiod needs:
    // the cross-network port, and no network label that would make istiod use its 100.x address.
    const svc = await core().readNamespacedService({ name: 'istio-eastwestgateway', namespace: ISTIO_NAMESPACE });
    expect(svc.metadata?.labels?.['topology.istio.io/network']).toBeUndefined();
    expect(svc.spec?.loadBalancerClass).toBe('tailscale');
    expect(svc.spec?.ports?.map(p => [p.name, p.port])).toEqual([
      ['status-port', 15021],
      ['tls', 15443],
    ]);

    const networks = await runAction(createIstioConfigureNetworksAction(deps), {
      members: [cluster],
      tailnet: tailnet(),
      timeoutSeconds: 120,
    });
    expect(networks.output.restarted).toEqual([]);
    const values = JSON.parse(
      await helm(cluster, ['get', 'values', 'istiod', '-n', ISTIO_NAMESPACE, '-o', 'json']),
    ) as { global: { meshNetworks?: Record<string, unknown>; network?: string; meshID?: string } };
    expect(values.global).toMatchObject({ network, meshID: 'release-charts' });
    expect(Object.keys(values.global.meshNetworks ?? {})).toEqual([network]);
    const cm = await core().readNamespacedConfigMap({ name: ISTIO_MESH_CONFIGMAP, namespace: ISTIO_NAMESPACE });
    expect(parseMeshNetworks(parse(cm.data![ISTIO_MESH_NETWORKS_KEY])).networks[network]).toEqual({
      endpoints: [{ fromRegistry: cluster }],
      gateways: [{ address: `${cluster}-istio-eastwestgateway.${tailnet()}`, port: 15443 }],
    });

    // What users do next: `helm upgrade --reuse-values` keeps it.
    await helm(cluster, [
      'upgrade', 'istiod', chartsOf(release).istiod.chart, '-n', ISTIO_NAMESPACE, '--reuse-values',
      '--set', 'pilot.env.PILOT_TRACE_SAMPLING=2',
    ]);
    const after = await core().readNamespacedConfigMap({ name: ISTIO_MESH_CONFIGMAP, namespace: ISTIO_NAMESPACE });
    expect(after.data![ISTIO_MESH_NETWORKS_KEY]).toBe(cm.data![ISTIO_MESH_NETWORKS_KEY]);
  });

  it("refuses values the release's schema does not have (networkGatewayPorts is Istio 1.30+)", async () => {
    await expect(
      run(path.join(binDir, 'helm'), [
        'template', 'gw', chartsOf(release).gateway.chart,
        '--set', 'networkGateway=network20',
        '--set', 'networkGatewayPorts.tls.port=15443',
      ]),
    ).rejects.toMatchObject({ stderr: expect.stringMatching(/networkGatewayPorts/) });
  });
});
