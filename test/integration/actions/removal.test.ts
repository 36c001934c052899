import path from 'node:path';
import { ConfigReader } from '@backstage/config';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import {
  createCaIssueIntermediateAction,
  createIstioCreateRemoteSecretsAction,
  createIstioDeployEastWestGatewayAction,
  createIstioInstallAction,
  createMeshActionDeps,
  createTailscaleCreateEgressAction,
  createIstioRemoveRemoteSecretsAction,
  createIstioUninstallAction,
  createMeshMembersAction,
  createTailscaleRemoveEgressAction,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import { ActionRun, expectNoSecrets, runAction } from '../../support/actions';
import {
  testbedAppConfig,
  testbedConfig,
  testbedSecrets,
} from '../../support/meshConfig';
import { helm, kubeConfig, testbed } from '../../support/testbed';
import { eventually } from '../../support/eventually';

// cluster9 is this file's; in cluster7 (the smoke test's) only objects named after cluster9 are
// created or deleted (see support/clusterOwners.ts).
const cluster = 'cluster9';
const peer = 'cluster7';
const network = 'network9';
const timeoutSeconds = 120;
const ns = 'istio-system';
const remoteSecretIn9 = `istio-remote-secret-${peer}`;
const remoteSecretIn7 = `istio-remote-secret-${cluster}`;
const egressName = `${peer}-k8s-operator`;
const egressPolicyName = `${egressName}-istiod-only`;
const gatewayEgressName = `${peer}-istio-eastwestgateway`;

const core = (name: string) => kubeConfig(name).makeApiClient(CoreV1Api);
const apps = (name: string) => kubeConfig(name).makeApiClient(AppsV1Api);
const readSecret = (holder: string, name: string) =>
  core(holder).readNamespacedSecret({ name, namespace: ns });
const readEgress = () =>
  core(cluster).readNamespacedService({
    name: egressName,
    namespace: 'tailscale',
  });
const gatewayParams = {
  group: 'networking.istio.io',
  version: 'v1',
  namespace: ns,
  plural: 'gateways',
  name: 'cross-network-gateway',
};
const releases = async () =>
  (
    JSON.parse(await helm(cluster, ['list', '-n', ns, '-o', 'json'])) as Array<{
      name: string;
    }>
  )
    .map(r => r.name)
    .sort();

describe('removal actions and mesh:members', () => {
  const deps = createMeshActionDeps(testbedConfig());
  const texts: string[] = [];
  const keep = (run: ActionRun) => {
    texts.push(...run.logs, JSON.stringify(run.output));
    return run;
  };
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error('expected the action to fail');
      },
      (e: Error) => {
        texts.push(e.message);
        return e.message;
      },
    );

  beforeAll(async () => {
    keep(
      await runAction(createIstioInstallAction(deps), {
        cluster,
        meshId: 'mesh-removal-test',
        network,
        timeoutSeconds,
      }),
    );
    // A real plugged-in CA, so the test can check that uninstalling leaves it alone; from a root
    // store of this file's own (the configured one may hold another file's root).
    const appConfig = testbedAppConfig();
    keep(
      await runAction(
        createCaIssueIntermediateAction(
          createMeshActionDeps(
            new ConfigReader({
              ...appConfig,
              mesh: {
                ...appConfig.mesh,
                ca: {
                  store: {
                    type: 'file',
                    directory: path.join(testbed().stateDir, 'removal-root-ca'),
                  },
                },
              },
            }),
          ),
        ),
        { cluster, createRootIfMissing: true },
      ),
    );
    keep(
      await runAction(createIstioDeployEastWestGatewayAction(deps), {
        cluster,
        network,
        timeoutSeconds,
      }),
    );
    // Remote secrets in cluster7 need its istio-system namespace, which the smoke test's Istio
    // install creates only if that file ran first; helm's --create-namespace accepts one made here.
    try {
      await core(peer).readNamespace({ name: ns });
    } catch {
      await core(peer).createNamespace({ body: { metadata: { name: ns } } });
    }
    // The Tailscale operator's namespace; the operator itself is the test bed's stand-in.
    await core(cluster).createNamespace({
      body: { metadata: { name: 'tailscale' } },
    });
    keep(
      await runAction(createIstioCreateRemoteSecretsAction(deps), {
        cluster,
        peers: [peer],
      }),
    );
    keep(
      await runAction(createTailscaleCreateEgressAction(deps), {
        cluster,
        peers: [peer],
      }),
    );
  }, 300_000);

  afterAll(() => expectNoSecrets(texts, testbedSecrets()));

  describe('mesh:members', () => {
    const action = createMeshMembersAction(deps);
    const configured = testbed().clusters.map(c => c.name);

    it('lists cluster9 among the members and every other cluster exactly once', async () => {
      const run = keep(await runAction(action, {}));
      const members = run.output.members as string[];
      const nonMembers = run.output.nonMembers as string[];
      expect(members).toContain(cluster);
      expect(run.output.unreachable).toEqual([]);
      expect(members).toEqual([...members].sort());
      expect(nonMembers).toEqual([...nonMembers].sort());
      expect([...members, ...nonMembers].sort()).toEqual(
        [...configured].sort(),
      );
    });

    it('leaves out the excluded cluster, and behaves the same in a dry run', async () => {
      const run = keep(
        await runAction(action, { exclude: cluster }, { dryRun: true }),
      );
      const members = run.output.members as string[];
      const nonMembers = run.output.nonMembers as string[];
      expect(members).not.toContain(cluster);
      expect(nonMembers).not.toContain(cluster);
      expect([...members, ...nonMembers].sort()).toEqual(
        configured.filter(c => c !== cluster).sort(),
      );
    });

    it('fails naming a cluster it cannot read, or lists it when told to go on', async () => {
      const appConfig = testbedAppConfig();
      const gone = {
        ...appConfig.mesh.clusters[0],
        name: 'gone',
        url: 'https://127.0.0.1:1',
      };
      const withGone = createMeshMembersAction(
        createMeshActionDeps(
          new ConfigReader({
            ...appConfig,
            mesh: {
              ...appConfig.mesh,
              clusters: [...appConfig.mesh.clusters, gone],
            },
          }),
        ),
      );
      const message = await failure(runAction(withGone, { exclude: peer }));
      expect(message).toMatch(
        /^Cannot tell who the mesh members are: gone could not be read \(gone: cannot connect to https:\/\/127\.0\.0\.1:1/,
      );
      const run = keep(await runAction(withGone, { failOnUnreachable: false }));
      expect(run.output.unreachable).toEqual([
        {
          cluster: 'gone',
          error: expect.stringMatching(/^gone: cannot connect/),
        },
      ]);
      expect(run.output.members).toContain(cluster);
      expect(run.output.nonMembers).not.toContain('gone');
    });
  });

  describe('mesh:istio:remove-remote-secrets', () => {
    const action = createIstioRemoveRemoteSecretsAction(deps);
    const input = { cluster, peers: [peer] };

    it('in a dry run, lists both Secrets it would delete and deletes nothing', async () => {
      const run = keep(await runAction(action, input, { dryRun: true }));
      expect(run.output.changed).toBe(true);
      expect(run.output.changes).toEqual([
        `${cluster}: Secret ${ns}/${remoteSecretIn9} deleted`,
        `${peer}: Secret ${ns}/${remoteSecretIn7} deleted`,
      ]);
      await readSecret(cluster, remoteSecretIn9);
      await readSecret(peer, remoteSecretIn7);
    });

    it('deletes both directions; a re-run changes nothing', async () => {
      const first = keep(await runAction(action, input));
      expect(first.output.changed).toBe(true);
      await expect(readSecret(cluster, remoteSecretIn9)).rejects.toMatchObject({
        code: 404,
      });
      await expect(readSecret(peer, remoteSecretIn7)).rejects.toMatchObject({
        code: 404,
      });

      const second = keep(await runAction(action, input));
      expect(second.output.changed).toBe(false);
      expect(second.output.changes).toEqual([
        `${cluster}: Secret ${ns}/${remoteSecretIn9} absent, unchanged`,
        `${peer}: Secret ${ns}/${remoteSecretIn7} absent, unchanged`,
      ]);
    });

    it('refuses a Secret with a remote secret name but without the multi-cluster label, before deleting anything', async () => {
      keep(await runAction(createIstioCreateRemoteSecretsAction(deps), input));
      await core(cluster).deleteNamespacedSecret({
        name: remoteSecretIn9,
        namespace: ns,
      });
      await core(cluster).createNamespacedSecret({
        namespace: ns,
        body: {
          metadata: { name: remoteSecretIn9 },
          stringData: { note: 'not a remote secret' },
        },
      });

      const message = await failure(runAction(action, input));
      expect(message).toBe(
        `Refusing to delete Secret ${ns}/${remoteSecretIn9} on ${cluster}: not a remote secret Tailmesh made (labels istio/multiCluster=true and app.kubernetes.io/managed-by=tailmesh), so it is not ours to remove; nothing was deleted`,
      );
      await readSecret(cluster, remoteSecretIn9);
      // The peer's remote secret was read before the refusal and is still there.
      await readSecret(peer, remoteSecretIn7);

      await core(cluster).deleteNamespacedSecret({
        name: remoteSecretIn9,
        namespace: ns,
      });
      const cleanup = keep(await runAction(action, input));
      expect(cleanup.output.changes).toEqual([
        `${cluster}: Secret ${ns}/${remoteSecretIn9} absent, unchanged`,
        `${peer}: Secret ${ns}/${remoteSecretIn7} deleted`,
      ]);
    });
  });

  describe('mesh:tailscale:remove-egress', () => {
    const action = createTailscaleRemoveEgressAction(deps);
    const input = { cluster, peers: [peer], timeoutSeconds: 60 };

    it('in a dry run, lists the Service it would delete and deletes nothing', async () => {
      // The operator stand-in has wired the Service and holds it with its finalizer.
      await eventually(
        'the operator finalizer on the egress Service',
        async () =>
          (await readEgress()).metadata?.finalizers?.includes(
            'tailscale.com/finalizer',
          )
            ? true
            : undefined,
      );
      const run = keep(await runAction(action, input, { dryRun: true }));
      // Both of create-egress's Services: to the peer's API proxy and to its east-west gateway.
      expect(run.output.changes).toEqual([
        `${cluster}: Service tailscale/${egressName} deleted`,
        `${cluster}: Service tailscale/${gatewayEgressName} deleted`,
        `${cluster}: NetworkPolicy tailscale/${egressPolicyName} deleted`,
      ]);
      const svc = await readEgress();
      expect(svc.metadata?.deletionTimestamp).toBeUndefined();
    });

    it('deletes the Service and waits until the operator has released it; a re-run changes nothing', async () => {
      const first = keep(await runAction(action, input));
      expect(first.output.changed).toBe(true);
      expect(first.output.changes).toEqual([
        `${cluster}: Service tailscale/${egressName} deleted`,
        `${cluster}: Service tailscale/${gatewayEgressName} deleted`,
        `${cluster}: NetworkPolicy tailscale/${egressPolicyName} deleted`,
      ]);
      expect(first.logs).toContain(
        `info ${cluster}: Service tailscale/${egressName}, Service tailscale/${gatewayEgressName} gone`,
      );
      await expect(readEgress()).rejects.toMatchObject({ code: 404 });
      // The operator (stand-in) cleaned up its proxy before it let the Service go.
      const proxies = await core(cluster).listNamespacedService({
        namespace: 'tailscale',
        labelSelector: `tailscale.com/parent-resource=${egressName}`,
      });
      expect(proxies.items).toEqual([]);

      const second = keep(await runAction(action, input));
      expect(second.output.changed).toBe(false);
      expect(second.output.changes).toEqual([
        `${cluster}: Service tailscale/${egressName} absent, unchanged`,
        `${cluster}: Service tailscale/${gatewayEgressName} absent, unchanged`,
        `${cluster}: NetworkPolicy tailscale/${egressPolicyName} absent, unchanged`,
      ]);
    });

    it('refuses a Service of that name without the peer label', async () => {
      await core(cluster).createNamespacedService({
        namespace: 'tailscale',
        body: {
          metadata: { name: egressName },
          spec: { type: 'ExternalName', externalName: 'example.com' },
        },
      });
      const message = await failure(runAction(action, input));
      expect(message).toBe(
        `Refusing to delete Service tailscale/${egressName} on ${cluster}: not labelled tailmesh.dev/peer=<peer> as mesh:tailscale:create-egress labels its objects, so it is not ours to remove; nothing was deleted`,
      );
      await readEgress();
      await core(cluster).deleteNamespacedService({
        name: egressName,
        namespace: 'tailscale',
      });
    });
  });

  describe('mesh:istio:uninstall', () => {
    const action = createIstioUninstallAction(deps);
    const input = { cluster, timeoutSeconds };
    const readGateway = () =>
      kubeConfig(cluster)
        .makeApiClient(CustomObjectsApi)
        .getNamespacedCustomObject(gatewayParams);

    it('in a dry run, lists what it would remove and removes nothing', async () => {
      const run = keep(await runAction(action, input, { dryRun: true }));
      expect(run.output.changes).toEqual([
        `${cluster}: helm release istio-eastwestgateway uninstalled`,
        `${cluster}: Gateway ${ns}/cross-network-gateway deleted`,
        `${cluster}: helm release istiod uninstalled`,
      ]);
      expect(await releases()).toEqual([
        'istio-base',
        'istio-eastwestgateway',
        'istiod',
      ]);
      await readGateway();
    });

    // While istiod runs: once it is gone, the base chart's `istiod-default-validator` webhook,
    // which istiod switched to fail-closed, refuses every Istio object (as on a real cluster).
    it('refuses a cross-network Gateway Tailmesh did not make, before uninstalling anything', async () => {
      const custom = kubeConfig(cluster).makeApiClient(CustomObjectsApi);
      const label = 'app.kubernetes.io/managed-by';
      const setLabel = (value: string | null) =>
        custom.patchNamespacedCustomObject(
          {
            ...gatewayParams,
            body: { metadata: { labels: { [label]: value } } },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      await setLabel(null);
      try {
        const message = await failure(
          runAction(action, { ...input, includeBase: true }),
        );
        expect(message).toBe(
          `Refusing to delete Gateway ${ns}/cross-network-gateway on ${cluster}: it is not labelled app.kubernetes.io/managed-by=tailmesh, so Tailmesh did not make it; nothing was uninstalled`,
        );
        expect(await releases()).toEqual([
          'istio-base',
          'istio-eastwestgateway',
          'istiod',
        ]);
      } finally {
        await setLabel('tailmesh');
      }
    });

    it('removes the gateway, the Gateway and istiod, keeps base and cacerts; a re-run changes nothing', async () => {
      const cacerts = await readSecret(cluster, 'cacerts');
      const first = keep(await runAction(action, input));
      expect(first.output.changed).toBe(true);
      expect(await releases()).toEqual(['istio-base']);
      await expect(
        apps(cluster).readNamespacedDeployment({
          name: 'istiod',
          namespace: ns,
        }),
      ).rejects.toMatchObject({ code: 404 });
      await expect(readGateway()).rejects.toMatchObject({ code: 404 });
      expect(
        (await readSecret(cluster, 'cacerts')).metadata?.resourceVersion,
      ).toBe(cacerts.metadata?.resourceVersion);

      const second = keep(await runAction(action, input));
      expect(second.output.changed).toBe(false);
      expect(second.output.changes).toEqual([
        `${cluster}: helm release istio-eastwestgateway absent, unchanged`,
        `${cluster}: Gateway ${ns}/cross-network-gateway absent, unchanged`,
        `${cluster}: helm release istiod absent, unchanged`,
      ]);
    });

    it('with includeBase, removes the base chart too and leaves cacerts', async () => {
      const run = keep(
        await runAction(action, { ...input, includeBase: true }),
      );
      expect(run.output.changes).toEqual([
        `${cluster}: helm release istio-eastwestgateway absent, unchanged`,
        `${cluster}: Gateway ${ns}/cross-network-gateway absent, unchanged`,
        `${cluster}: helm release istiod absent, unchanged`,
        `${cluster}: helm release istio-base uninstalled`,
      ]);
      expect(await releases()).toEqual([]);
      await readSecret(cluster, 'cacerts');
      const again = keep(
        await runAction(action, { ...input, includeBase: true }),
      );
      expect(again.output.changed).toBe(false);
    });
  });
});
