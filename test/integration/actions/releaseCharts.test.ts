import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
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
import { eventually } from '../../support/eventually';
import type { ControlRequest } from '../../testbed/src/control';
import type { IstiodProcessState } from '../../testbed/src/kubelet/istiodRunner';
import type { PodProcessState } from '../../testbed/src/kubelet/podProcesses';
import { testbedRequest } from '../../testbed/src/testbed';
import { RELEASE_CHARTS, releaseCharts, testbedAppConfig } from '../../support/meshConfig';
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
function depsFor(release: (typeof RELEASE_CHARTS)[number]) {
  const base = testbedAppConfig([cluster]);
  return createMeshActionDeps(
    new ConfigReader({
      ...base,
      mesh: { ...base.mesh, charts: { ...base.mesh.charts, ...releaseCharts(release) } },
    }),
  );
}

const core = () => kubeConfig(cluster).makeApiClient(CoreV1Api);
const apps = () => kubeConfig(cluster).makeApiClient(AppsV1Api);
const ctl = <T>(req: ControlRequest) => testbedRequest<T>(testbed().stateDir, req);
const run = promisify(execFile);

afterAll(() => releaseClusters([cluster]), 180_000);

describe.each(RELEASE_CHARTS)('the chart-driven actions with the %s release charts', release => {
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
      'upgrade', 'istiod', releaseCharts(release).istiod.chart, '-n', ISTIO_NAMESPACE, '--reuse-values',
      '--set', 'pilot.env.PILOT_TRACE_SAMPLING=2',
    ]);
    const after = await core().readNamespacedConfigMap({ name: ISTIO_MESH_CONFIGMAP, namespace: ISTIO_NAMESPACE });
    expect(after.data![ISTIO_MESH_NETWORKS_KEY]).toBe(cm.data![ISTIO_MESH_NETWORKS_KEY]);
  });

  it("runs real istiod with the release's chart: ready, it injects a pod, whose proxy gets a workload certificate from istiod's CA", async () => {
    // The test bed runs pilot-discovery for the release chart's istiod pod, with that chart's
    // ServiceAccount, args, env and mesh config; its readiness is istiod's own /ready. The test
    // before rolled istiod out again (helm upgrade): wait until that rollout is done (one pod
    // left, its process ready), so the new pod's proxy never reaches the istiod going away.
    await eventually(
      `istiod of ${cluster} rolled out and ready`,
      async () => {
        const pods = await core().listNamespacedPod({ namespace: ISTIO_NAMESPACE, labelSelector: 'app=istiod' });
        const running = (await ctl<IstiodProcessState[]>({ command: 'istiods' })).filter(i => i.cluster === cluster);
        return pods.items.length === 1 &&
          !pods.items[0].metadata?.deletionTimestamp &&
          running.length === 1 &&
          running[0].readyAt &&
          running[0].pod === pods.items[0].metadata?.name
          ? true
          : undefined;
      },
      { timeoutMs: 120_000 },
    );

    // The release chart's injection webhook, answered by that istiod, injects a new pod.
    const namespace = `injected-${release.replace(/\./g, '-')}`;
    await core().createNamespace({ body: { metadata: { name: namespace, labels: { 'istio-injection': 'enabled' } } } });
    try {
      await apps().createNamespacedDeployment({
        namespace,
        body: {
          metadata: { name: 'sleep' },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: 'sleep' } },
            template: {
              metadata: { labels: { app: 'sleep' } },
              spec: { containers: [{ name: 'sleep', image: 'curlimages/curl', command: ['sleep', 'infinity'] }] },
            },
          },
        },
      });
      const pod = await eventually('the sleep pod', async () =>
        (await core().listNamespacedPod({ namespace })).items.find(p => p.metadata?.name),
      );
      expect(pod.metadata?.labels?.['security.istio.io/tlsMode']).toBe('istio');
      expect([...pod.spec!.containers, ...(pod.spec!.initContainers ?? [])].map(c => c.name)).toContain('istio-proxy');
      // The data-plane stand-in in its istio-proxy's place says ready once it holds a workload
      // certificate, from a CSR to istiod's CA authenticated with the pod's istio-token.
      await eventually(
        'the injected proxy ready with its workload certificate',
        async () =>
          (await ctl<PodProcessState[]>({ command: 'proxies' })).some(
            p => p.cluster === cluster && p.namespace === namespace && p.readyAt,
          )
            ? true
            : undefined,
        { timeoutMs: 120_000 },
      );
    } finally {
      await core().deleteNamespace({ name: namespace });
    }
  }, 300_000);

  it("refuses values the release's schema does not have (networkGatewayPorts is Istio 1.30+)", async () => {
    await expect(
      run(path.join(binDir, 'helm'), [
        'template', 'gw', releaseCharts(release).gateway.chart,
        '--set', 'networkGateway=network20',
        '--set', 'networkGatewayPorts.tls.port=15443',
      ]),
    ).rejects.toMatchObject({ stderr: expect.stringMatching(/networkGatewayPorts/) });
  });
});
