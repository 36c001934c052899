import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import {
  createIstioInstallAction,
  createMeshActionDeps,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import { expectNoSecrets, runAction } from '../../support/actions';
import { testbedConfig, testbedSecrets } from '../../support/meshConfig';
import { helm, kubeConfig, testbed } from '../../support/testbed';

// cluster4 is shared with the Tailscale action tests only (see support/clusterOwners.ts).
const cluster = 'cluster4';
const input = {
  cluster,
  meshId: 'mesh-install-test',
  network: 'network4',
  timeoutSeconds: 120,
};

describe('mesh:istio:install', () => {
  const action = createIstioInstallAction(
    createMeshActionDeps(testbedConfig()),
  );

  it('in a dry run, lists the releases and manifests it would apply and writes nothing', async () => {
    const run = await runAction(action, input, { dryRun: true });
    expect(run.output.changes).toEqual([
      `${cluster}: Namespace istio-system created`,
      `${cluster}: helm release istio-base installed`,
      `${cluster}: helm release istiod installed`,
    ]);
    expect(run.output.manifests).toContain('kind: Namespace');
    expect(run.output.manifests).toContain(
      'topology.istio.io/network: network4',
    );
    const core = kubeConfig(cluster).makeApiClient(CoreV1Api);
    await expect(
      core.readNamespace({ name: 'istio-system' }),
    ).rejects.toMatchObject({ code: 404 });
    expect(
      JSON.parse(await helm(cluster, ['list', '-A', '-o', 'json'])),
    ).toEqual([]);
  });

  it('installs base and istiod, labels the network, waits for istiod; a re-run changes nothing', async () => {
    const first = await runAction(action, input);
    expect(first.output.changed).toBe(true);
    const ns = await kubeConfig(cluster)
      .makeApiClient(CoreV1Api)
      .readNamespace({ name: 'istio-system' });
    expect(ns.metadata?.labels?.['topology.istio.io/network']).toBe('network4');
    const istiod = await kubeConfig(cluster)
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name: 'istiod', namespace: 'istio-system' });
    expect(
      istiod.status?.conditions?.find(c => c.type === 'Available')?.status,
    ).toBe('True');
    const env = istiod.spec?.template.spec?.containers[0].env ?? [];
    expect(env.find(e => e.name === 'CLUSTER_ID')?.value).toBe(cluster);

    const second = await runAction(action, input);
    expect(second.output.changed).toBe(false);
    expect(second.output.changes).toEqual([
      `${cluster}: Namespace istio-system unchanged`,
      `${cluster}: helm release istio-base unchanged`,
      `${cluster}: helm release istiod unchanged`,
    ]);
    const revisions = JSON.parse(
      await helm(cluster, [
        'history',
        'istiod',
        '-n',
        'istio-system',
        '-o',
        'json',
      ]),
    );
    expect(revisions).toHaveLength(1);
    expectNoSecrets(
      [...first.logs, ...second.logs, JSON.stringify(first.output)],
      testbedSecrets(),
    );
  });

  it('rejects an invalid or unknown cluster before touching anything', async () => {
    await expect(
      runAction(action, { ...input, cluster: 'Not_A_Cluster' }),
    ).rejects.toThrow(/Invalid input: cluster "Not_A_Cluster"/);
    await expect(
      runAction(action, { ...input, cluster: 'nowhere' }),
    ).rejects.toThrow(
      `Unknown cluster "nowhere": it is not in mesh.clusters (configured: ${testbed()
        .clusters.map(c => c.name)
        .join(', ')})`,
    );
  });
});
