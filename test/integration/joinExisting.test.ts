import { CoreV1Api } from '@kubernetes/client-node';
import {
  ISTIO_MESH_CONFIGMAP,
  ISTIO_NAMESPACE,
  LABEL_MANAGED_BY,
  MANAGED_BY_TAILMESH,
  remoteSecretName,
} from '@tailmesh/plugin-mesh-common';
import { TailscaleClient } from '@tailmesh/plugin-mesh-node';
import { expectNoSecrets } from '../support/actions';
import { testbedConfig, testbedSecrets } from '../support/meshConfig';
import {
  ProductBackend,
  TaskResult,
  expectCompleted,
  joinValues as joinValuesFor,
  startProductBackend,
} from '../support/productBackend';
import {
  TEAM_ISTIOD_VALUES,
  addCorefileBlockByHand,
  createRemoteSecretByHand,
  installIstioByHand,
  readCorefile,
} from '../support/foreign';
import { helm, kubeConfig, releaseClusters } from '../support/testbed';

// The Join template, run by the real scaffolder engine, against a cluster that already runs what
// Tailmesh did not make: cluster23 has a hand-installed Istio with values of its own, a remote
// secret for the member cluster24 made as istioctl makes one, and a CoreDNS server block of its
// own. The join refuses before writing anything on either cluster; with "Take over what the
// cluster already runs" it adopts them as the README documents, and the real istiods judge the
// result (mesh:verify is the template's last step). Both clusters are this file's.
const joining = 'cluster23';
const member = 'cluster24';
const clusters = [member, joining];
const meshId = 'existing-mesh';
const ns = ISTIO_NAMESPACE;
const teamValues = TEAM_ISTIOD_VALUES;
const handToken = 'hand-made-remote-secret-token-abcdef0123456789';
const handSecret = remoteSecretName(member);
const customBlock =
  'corp.internal:53 {\n    errors\n    forward . 10.223.5.53\n}\n';
const core = (c: string) => kubeConfig(c).makeApiClient(CoreV1Api);
const joinValues = (c: string) => joinValuesFor(c, meshId);

let backend: ProductBackend;
const tasks: TaskResult[] = [];
const run = async (values: Record<string, unknown>) => {
  const task = await backend.runTemplate('join-cluster-to-mesh', values);
  tasks.push(task);
  return task;
};

const releases = async () =>
  (
    JSON.parse(
      await helm(joining, ['list', '-n', ns, '-a', '-o', 'json']),
    ) as Array<{
      name: string;
      revision: string;
      status: string;
    }>
  ).map(r => ({ name: r.name, revision: r.revision, status: r.status }));
const istiodValues = async () =>
  JSON.parse(
    await helm(joining, ['get', 'values', 'istiod', '-n', ns, '-o', 'json']),
  );
const corefile = () => readCorefile(joining);
const exists = (p: Promise<unknown>) =>
  p.then(
    () => true,
    (e: { code?: number }) => {
      if (e.code === 404) return false;
      throw e;
    },
  );

/** Everything a join could write first, on both clusters and in the tailnet policy. */
async function writableState() {
  const [nsJoining, meshCm, handmade] = await Promise.all([
    core(joining).readNamespace({ name: ns }),
    core(member).readNamespacedConfigMap({
      name: ISTIO_MESH_CONFIGMAP,
      namespace: ns,
    }),
    core(joining).readNamespacedSecret({ name: handSecret, namespace: ns }),
  ]);
  return {
    releases: await releases(),
    istiod: await istiodValues(),
    namespace: nsJoining.metadata?.resourceVersion,
    corefile: await corefile(),
    handmade: handmade.metadata?.resourceVersion,
    tailscaleNamespace: await exists(
      core(joining).readNamespace({ name: 'tailscale' }),
    ),
    memberHoldsSecretOfJoining: await exists(
      core(member).readNamespacedSecret({
        name: remoteSecretName(joining),
        namespace: ns,
      }),
    ),
    memberMeshConfig: meshCm.metadata?.resourceVersion,
    policy: (
      await TailscaleClient.fromConfig(testbedConfig(clusters)).getPolicy()
    ).etag,
  };
}

beforeAll(async () => {
  backend = await startProductBackend(clusters);
  // The mesh the cluster joins: cluster24, joined by the template like any first member.
  expectCompleted(await run(joinValues(member)));

  // What the platform team already runs in cluster23.
  await installIstioByHand(joining);
  await createRemoteSecretByHand(joining, member, handToken);
  await addCorefileBlockByHand(joining, customBlock);
}, 600_000);

afterAll(async () => {
  await backend?.stop();
  await releaseClusters(clusters);
  expectNoSecrets(
    tasks.flatMap(t => [...t.log, JSON.stringify(t.output)]),
    [handToken, ...testbedSecrets()],
  );
}, 180_000);

describe('the Join template on a cluster that already runs Istio, a remote secret and CoreDNS of its own', () => {
  it('refuses at its preconditions, naming each, and writes nothing on either cluster or in the tailnet', async () => {
    const before = await writableState();
    const task = await run(joinValues(joining));
    expect(task.status).toBe('failed');
    expect(task.steps.preconditions).toBe('failed');
    expect(task.steps.operator).toBe('skipped');
    const log = task.log.join('\n');
    expect(log).toContain('The join would change what Tailmesh did not make:');
    for (const found of [
      `helm release ${ns}/istio-base on ${joining}`,
      `helm release ${ns}/istiod on ${joining}`,
      `Secret ${ns}/${handSecret} on ${joining}`,
    ])
      expect(log).toContain(found);
    expect(await writableState()).toEqual(before);
  });

  it('with "Take over what the cluster already runs", adopts them as documented and the mesh works', async () => {
    const task = await run({ ...joinValues(joining), adoptExisting: true });
    expectCompleted(task); // its last step, mesh:verify, asks the real istiods
    const log = task.log.join('\n');
    expect(log).toContain(
      `helm release ${ns}/istiod on ${joining}: adopting a release Tailmesh did not install`,
    );

    // The release's own values are kept, Tailmesh's merged over them.
    const values = await istiodValues();
    expect(values.pilot.env.TEAM_TUNING).toBe(teamValues.TEAM_TUNING);
    expect(values.pilot.resources.requests.cpu).toBe(teamValues.cpu);
    expect(values.global).toMatchObject({
      meshID: meshId,
      multiCluster: { clusterName: joining },
    });

    // The remote secret is Tailmesh's now: its label, and the peer reached through the tailnet
    // egress instead of the hand-made token.
    const secret = await core(joining).readNamespacedSecret({
      name: handSecret,
      namespace: ns,
    });
    expect(secret.metadata?.labels?.[LABEL_MANAGED_BY]).toBe(
      MANAGED_BY_TAILMESH,
    );
    const kubeconfig = Buffer.from(secret.data![member], 'base64').toString(
      'utf8',
    );
    expect(kubeconfig).not.toContain(handToken);
    expect(
      secret.metadata?.annotations?.[
        'kubectl.kubernetes.io/last-applied-configuration'
      ],
    ).toBeUndefined();
    // ...and the member holds one for the joining cluster.
    expect(
      await exists(
        core(member).readNamespacedSecret({
          name: remoteSecretName(joining),
          namespace: ns,
        }),
      ),
    ).toBe(true);

    // The CoreDNS server block of the team's own stays as it was, beside the tailnet stanza.
    const after = await corefile();
    expect(after).toContain(customBlock);
    expect(after).toContain(
      `${testbedConfig(clusters).getString('mesh.tailscale.dnsName')}:53 {`,
    );
  });

  it('converges: the same join again changes nothing it adopted', async () => {
    const before = { releases: await releases(), corefile: await corefile() };
    const secret = await core(joining).readNamespacedSecret({
      name: handSecret,
      namespace: ns,
    });
    expectCompleted(await run(joinValues(joining)));
    expect((await releases()).map(r => r.name)).toEqual(
      before.releases.map(r => r.name),
    );
    expect(await corefile()).toBe(before.corefile);
    expect(
      (
        await core(joining).readNamespacedSecret({
          name: handSecret,
          namespace: ns,
        })
      ).metadata?.resourceVersion,
    ).toBe(secret.metadata?.resourceVersion);
  });
});
