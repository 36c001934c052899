import { AppsV1Api, CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { chart, helm, kubeConfig, testbed } from '../support/testbed';
import { eventually } from '../support/eventually';

describe('the local test bed', () => {
  it('runs real clusters, each with Ready kwok nodes labelled with its region and zones', async () => {
    const state = testbed();
    expect(state.clusters.map(c => c.name)).toEqual(
      state.clusters.map((_, i) => `cluster${i + 1}`),
    );
    for (const c of state.clusters) {
      const core = kubeConfig(c.name).makeApiClient(CoreV1Api);
      const nodes = await core.listNode();
      const zones = nodes.items
        .map(n => n.metadata?.labels?.['topology.kubernetes.io/zone'])
        .sort();
      expect(zones).toEqual(c.zones);
      for (const n of nodes.items) {
        expect(n.metadata?.labels?.['topology.kubernetes.io/region']).toBe(
          c.region,
        );
        expect(
          n.status?.conditions?.find(x => x.type === 'Ready')?.status,
        ).toBe('True');
      }
    }
  });

  it("runs the controllers of this file's clusters only; every other cluster is parked and still answers reads", async () => {
    // test/support/useClusters.ts asked for cluster6 and cluster7 (clusterOwners.ts).
    const state = testbed();
    const running = (binary: string) =>
      Object.keys(state.pids)
        .filter(name => name.endsWith(`/${binary}`))
        .map(name => name.split('/')[0])
        .sort();
    for (const binary of ['kube-controller-manager', 'kube-scheduler', 'kwok'])
      expect([binary, running(binary)]).toEqual([
        binary,
        ['cluster6', 'cluster7'],
      ]);
    expect(running('kube-apiserver')).toHaveLength(state.clusters.length);
    const parked = state.clusters.find(
      c => !['cluster6', 'cluster7'].includes(c.name),
    )!;
    const nodes = await kubeConfig(parked.name)
      .makeApiClient(CoreV1Api)
      .listNode();
    expect(nodes.items).toHaveLength(parked.zones.length);
  });

  it('keeps clusters apart: an object made in one is not seen in another', async () => {
    const core7 = kubeConfig('cluster7').makeApiClient(CoreV1Api);
    const core6 = kubeConfig('cluster6').makeApiClient(CoreV1Api);
    await core7.createNamespace({
      body: { metadata: { name: 'only-in-cluster7' } },
    });
    await expect(
      core6.readNamespace({ name: 'only-in-cluster7' }),
    ).rejects.toMatchObject({ code: 404 });
    await core7.deleteNamespace({ name: 'only-in-cluster7' });
  });

  it('installs istio-base and istiod in cluster 7 with the real helm, and istiod becomes Available', async () => {
    await helm('cluster7', [
      'upgrade',
      '--install',
      'istio-base',
      chart('istio-base'),
      '-n',
      'istio-system',
      '--create-namespace',
      '--wait',
    ]);
    await helm('cluster7', [
      'upgrade',
      '--install',
      'istiod',
      chart('istiod'),
      '-n',
      'istio-system',
      '--wait',
      '--timeout',
      '2m',
      '--set',
      'global.meshID=mesh1',
      '--set',
      'global.multiCluster.clusterName=cluster7',
      '--set',
      'global.network=network7',
    ]);
    const apps = kubeConfig('cluster7').makeApiClient(AppsV1Api);
    const istiod = await apps.readNamespacedDeployment({
      name: 'istiod',
      namespace: 'istio-system',
    });
    expect(
      istiod.status?.conditions?.find(c => c.type === 'Available')?.status,
    ).toBe('True');
    expect(istiod.status?.readyReplicas).toBe(istiod.spec?.replicas);
    const releases = JSON.parse(
      await helm('cluster7', ['list', '-n', 'istio-system', '-o', 'json']),
    );
    expect(
      releases
        .map((r: { name: string; status: string }) => [r.name, r.status])
        .sort(),
    ).toEqual([
      ['istio-base', 'deployed'],
      ['istiod', 'deployed'],
    ]);
  });

  it('publishes an EndpointSlice with kwok pod IPs for a Service in cluster 7', async () => {
    const kc = kubeConfig('cluster7');
    const ns = 'echo-endpoints';
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
    const labels = { app: 'echo' };
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'echo' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              containers: [
                {
                  name: 'echo',
                  image: 'hashicorp/http-echo',
                  ports: [{ containerPort: 5678 }],
                },
              ],
            },
          },
        },
      },
    });
    await core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: 'echo' },
        spec: { selector: labels, ports: [{ port: 80, targetPort: 5678 }] },
      },
    });
    const addresses = await eventually(
      'two ready endpoints',
      async () => {
        const slices = await discovery.listNamespacedEndpointSlice({
          namespace: ns,
          labelSelector: 'kubernetes.io/service-name=echo',
        });
        // A slice the controller has just made has `endpoints: null` until pods are ready.
        const ready = slices.items
          .flatMap(s => s.endpoints ?? [])
          .filter(e => e.conditions?.ready)
          .flatMap(e => e.addresses);
        return ready.length === 2 ? ready : undefined;
      },
      { timeoutMs: 60_000 },
    );
    // kwok hands out pod IPs from cluster 7's own range (see layout.clusterShape).
    for (const ip of addresses) expect(ip).toMatch(/^10\.107\./);
    const slices = await discovery.listNamespacedEndpointSlice({
      namespace: ns,
    });
    const zones = slices.items
      .flatMap(s => s.endpoints.map(e => e.zone))
      .sort();
    expect(zones.every(z => z?.startsWith('region7-'))).toBe(true);
  });
});
