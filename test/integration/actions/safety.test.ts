import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ConfigReader } from '@backstage/config';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  V1CustomResourceDefinition,
  V1PodSpec,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { MeshStateCache } from '@tailmesh/plugin-mesh-backend';
import { TailscaleClient } from '@tailmesh/plugin-mesh-node';
import {
  createCaIssueIntermediateAction,
  createIstioCreateRemoteSecretsAction,
  createIstioInstallAction,
  createIstioRemoveRemoteSecretsAction,
  createIstioUninstallAction,
  createMeshActionDeps,
  createMeshCheckJoinAction,
  createTailscaleConfigureDnsAction,
  createTailscaleGrantAccessAction,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import { parse } from 'yaml';
import {
  capturingLogger,
  expectNoSecrets,
  runAction,
} from '../../support/actions';
import {
  testbedAppConfig,
  testbedConfig,
  testbedSecrets,
} from '../../support/meshConfig';
import {
  addCorefileBlockByHand,
  createRemoteSecretByHand,
  installIstioByHand,
} from '../../support/foreign';
import { eventually } from '../../support/eventually';
import {
  helm,
  kubeConfig,
  releaseClusters,
  testbed,
} from '../../support/testbed';
import type { ControlRequest } from '../../testbed/src/control';
import { testbedRequest } from '../../testbed/src/testbed';

// cluster21 is this file's: a cluster that already runs things Tailmesh did not make (a
// hand-installed Istio with values of its own, a remote secret made the way istioctl makes one, a
// CoreDNS with a server block of its own). cluster22 is only read here, as a would-be peer (see
// support/clusterOwners.ts). Each test shows the refusal, its message, and that nothing was written.
const cluster = 'cluster21';
const peer = 'cluster22';
const ns = 'istio-system';
const config = testbedConfig();
const deps = createMeshActionDeps(config);
const core = (name = cluster) => kubeConfig(name).makeApiClient(CoreV1Api);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const texts: string[] = [];
const failure = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (e) {
    texts.push((e as Error).message);
    return (e as Error).message;
  }
  throw new Error('expected the action to fail');
};
const releases = async () =>
  JSON.parse(
    await helm(cluster, ['list', '-n', ns, '-a', '-o', 'json']),
  ) as Array<{
    name: string;
    revision: string;
    status: string;
  }>;
const values = async (release: string) =>
  JSON.parse(
    await helm(cluster, ['get', 'values', release, '-n', ns, '-o', 'json']),
  );

afterAll(() => {
  expectNoSecrets(texts, testbedSecrets());
});
// cluster22 is also caIntermediate.test.ts's root CA store: it stays.
afterAll(() => releaseClusters([cluster]), 180_000);

describe('a hand-installed Istio', () => {
  const install = createIstioInstallAction(deps);
  const input = {
    cluster,
    meshId: 'mesh1',
    network: 'network21',
    timeoutSeconds: 120,
  };

  beforeAll(() => installIstioByHand(cluster));

  it('is refused by mesh:istio:install before anything is written, the namespace label included', async () => {
    const before = {
      releases: await releases(),
      istiod: await values('istiod'),
      namespace: await core().readNamespace({ name: ns }),
    };
    const message = await failure(runAction(install, input));
    expect(message).toBe(
      `helm release ${ns}/istio-base on ${cluster} was not installed by Tailmesh (its release has no tailmesh.dev/installed-by=tailmesh label), so Tailmesh leaves it alone; nothing was changed. To let Tailmesh manage it, run again with adopt: its deployed values are kept and Tailmesh's merged over them (a dry run shows the result first)`,
    );
    expect(await releases()).toEqual(before.releases);
    expect(await values('istiod')).toEqual(before.istiod);
    const namespace = await core().readNamespace({ name: ns });
    expect(namespace.metadata?.resourceVersion).toBe(
      before.namespace.metadata?.resourceVersion,
    );
  });

  it('stops the Join template at its preconditions (mesh:check-join), before any step writes', async () => {
    const before = {
      releases: await releases(),
      namespace: await core().readNamespace({ name: ns }),
    };
    const message = await failure(
      runAction(createMeshCheckJoinAction(deps), {
        cluster,
        network: 'network21',
      }),
    );
    expect(message).toMatch(
      new RegExp(
        `^The join would change what Tailmesh did not make: helm release ${ns}/istio-base on ${cluster}; helm release ${ns}/istiod on ${cluster}(; .*)?\\. Nothing was written\\.`,
      ),
    );
    expect(await releases()).toEqual(before.releases);
    expect(
      (await core().readNamespace({ name: ns })).metadata?.resourceVersion,
    ).toBe(before.namespace.metadata?.resourceVersion);
  });

  it('is never uninstalled by mesh:istio:uninstall', async () => {
    const before = await releases();
    const message = await failure(
      runAction(createIstioUninstallAction(deps), {
        cluster,
        includeBase: true,
        timeoutSeconds: 60,
      }),
    );
    expect(message).toBe(
      `Refusing to uninstall helm releases ${ns}/istiod, ${ns}/istio-base on ${cluster}: not installed by Tailmesh (no tailmesh.dev/installed-by=tailmesh label); nothing was uninstalled. Remove them with helm yourself if that is what you want`,
    );
    expect(await releases()).toEqual(before);
  });

  it('is adopted on request, keeping every value of its own', async () => {
    const run = await runAction(install, { ...input, adopt: true });
    texts.push(...run.logs, JSON.stringify(run.output));
    expect(run.logs.join('\n')).toContain(
      `helm release ${ns}/istiod on ${cluster}: adopting a release Tailmesh did not install`,
    );
    const after = await values('istiod');
    expect(after.pilot.env.TEAM_TUNING).toBe('kept');
    expect(after.pilot.resources.requests.cpu).toBe('750m');
    expect(after.global).toMatchObject({
      meshID: 'mesh1',
      network: 'network21',
      multiCluster: { clusterName: cluster },
    });
    const labelled = JSON.parse(
      await helm(cluster, [
        'list',
        '-n',
        ns,
        '--selector',
        'tailmesh.dev/installed-by=tailmesh',
        '-o',
        'json',
      ]),
    ) as Array<{ name: string }>;
    expect(labelled.map(r => r.name).sort()).toEqual(['istio-base', 'istiod']);
    // Now Tailmesh's: a re-run without adopt converges and changes nothing.
    const again = await runAction(install, input);
    expect(again.output.changed).toBe(false);
  });

  it('left pending by a killed helm is refused while it may still run, then repaired', async () => {
    // What a helm killed mid-upgrade leaves (a cancelled task, a crashed backend): the newest
    // release record says pending-upgrade (helm pkg/storage/driver/secrets.go encodes it as
    // base64 of gzipped JSON, labelled with the status).
    const history = JSON.parse(
      await helm(cluster, ['history', 'istiod', '-n', ns, '-o', 'json']),
    ) as Array<{ revision: number }>;
    const last = Math.max(...history.map(h => h.revision));
    const name = `sh.helm.release.v1.istiod.v${last}`;
    const secret = await core().readNamespacedSecret({ name, namespace: ns });
    const release = JSON.parse(
      gunzipSync(
        Buffer.from(
          Buffer.from(secret.data!.release, 'base64').toString('utf8'),
          'base64',
        ),
      ).toString('utf8'),
    );
    release.info.status = 'pending-upgrade';
    const encoded = Buffer.from(
      gzipSync(Buffer.from(JSON.stringify(release))).toString('base64'),
    ).toString('base64');
    await core().patchNamespacedSecret(
      {
        name,
        namespace: ns,
        body: {
          metadata: { labels: { status: 'pending-upgrade' } },
          data: { release: encoded },
        },
      },
      mergePatch,
    );
    const stuck = await releases();
    expect(stuck.find(r => r.name === 'istiod')?.status).toBe(
      'pending-upgrade',
    );

    const message = await failure(runAction(install, input));
    expect(message).toMatch(
      new RegExp(
        `^helm release ${ns}/istiod on ${cluster} is pending-upgrade since .*: a helm operation may still be running\\. Nothing was changed; Tailmesh repairs a release left pending-upgrade once it is 600s old \\(mesh\\.helm\\.pendingRepairAfterSeconds\\), run again then$`,
      ),
    );
    expect(await releases()).toEqual(stuck);

    const appConfig = testbedAppConfig();
    const impatient = createMeshActionDeps(
      new ConfigReader({
        ...appConfig,
        mesh: {
          ...appConfig.mesh,
          helm: { ...appConfig.mesh.helm, pendingRepairAfterSeconds: 0 },
        },
      }),
    );
    const repaired = await runAction(
      createIstioInstallAction(impatient),
      input,
    );
    texts.push(...repaired.logs);
    expect(repaired.logs.join('\n')).toMatch(
      new RegExp(
        `helm release ${ns}/istiod on ${cluster} was left pending-upgrade .*: rolling it back to revision ${last - 1}`,
      ),
    );
    expect((await releases()).find(r => r.name === 'istiod')?.status).toBe(
      'deployed',
    );
    expect((await values('istiod')).pilot.env.TEAM_TUNING).toBe('kept');
  });
});

describe('a remote secret made by hand (as istioctl makes one)', () => {
  const name = `istio-remote-secret-${peer}`;
  // istioctl's remote secrets are applied with kubectl, which copies the whole object, kubeconfig
  // and token included, into this annotation.
  const token = 'hand-made-remote-secret-token-0123456789';

  beforeAll(() => createRemoteSecretByHand(cluster, peer, token));

  it('is never overwritten: mesh:istio:create-remote-secrets stops before its first write, on either cluster', async () => {
    const before = await core().readNamespacedSecret({ name, namespace: ns });
    const message = await failure(
      runAction(createIstioCreateRemoteSecretsAction(deps), {
        cluster,
        peers: [peer],
      }),
    );
    expect(message).toBe(
      `Secret ${ns}/${name} on ${cluster} was not made by Tailmesh (it lacks the label app.kubernetes.io/managed-by=tailmesh), so Tailmesh does not overwrite it; nothing was changed. Remove it, or run with adopt to let Tailmesh take it over (a dry run with adopt shows the change first)`,
    );
    const after = await core().readNamespacedSecret({ name, namespace: ns });
    expect(after.metadata?.resourceVersion).toBe(
      before.metadata?.resourceVersion,
    );
    // The peer's side, planned first, was not written either.
    await expect(
      core(peer).readNamespacedSecret({
        name: `istio-remote-secret-${cluster}`,
        namespace: ns,
      }),
    ).rejects.toMatchObject({ code: 404 });
  });

  it('shows no credential in a dry run, annotations included', async () => {
    const dry = await runAction(
      createIstioCreateRemoteSecretsAction(deps),
      { cluster, peers: [peer], adopt: true },
      { dryRun: true },
    );
    const shown = [...dry.logs, JSON.stringify(dry.output)];
    texts.push(...shown);
    // Adopting replaces the Secret whole: what the API server would store has none of the hand
    // made secret's annotations, the one that holds its kubeconfig included.
    expect(dry.logs.join('\n')).toContain(
      `${cluster}: adopting Secret ${ns}/${name}, which Tailmesh did not make: it is replaced whole`,
    );
    expect(String(dry.output.manifests)).toContain(`name: ${name}`);
    expect(String(dry.output.manifests)).not.toContain(
      'kubectl.kubernetes.io/last-applied-configuration',
    );
    expectNoSecrets(shown, [token, ...testbedSecrets()]);
    expect(
      (await core().readNamespacedSecret({ name, namespace: ns })).metadata
        ?.labels,
    ).toEqual({
      'istio/multiCluster': 'true',
    });
  });

  it('is never deleted by mesh:istio:remove-remote-secrets', async () => {
    const message = await failure(
      runAction(createIstioRemoveRemoteSecretsAction(deps), {
        cluster,
        peers: [peer],
      }),
    );
    expect(message).toBe(
      `Refusing to delete Secret ${ns}/${name} on ${cluster}: not a remote secret Tailmesh made (labels istio/multiCluster=true and app.kubernetes.io/managed-by=tailmesh), so it is not ours to remove; nothing was deleted`,
    );
    await expect(
      core().readNamespacedSecret({ name, namespace: ns }),
    ).resolves.toBeDefined();
  });

  it('points nowhere else: a tailnet input other than the configured one is refused', async () => {
    const message = await failure(
      runAction(createIstioCreateRemoteSecretsAction(deps), {
        cluster,
        peers: [peer],
        tailnet: 'evil.example.com',
        adopt: true,
      }),
    );
    expect(message).toMatch(
      /^Invalid input: tailnet "evil.example.com" is not the configured tailnet ".*" \(mesh.tailscale.dnsName\); the tailnet comes from configuration, an input may only repeat it$/,
    );
    expect(
      (await core().readNamespacedSecret({ name, namespace: ns })).metadata
        ?.labels,
    ).toEqual({
      'istio/multiCluster': 'true',
    });
  });
});

describe('a CoreDNS with a server block of its own', () => {
  const dnsAction = createTailscaleConfigureDnsAction(deps);
  const customBlock =
    'corp.internal:53 {\n    errors\n    forward . 10.221.5.53\n}\n';
  const dnsConfigs = () => kubeConfig(cluster).makeApiClient(CustomObjectsApi);
  const corefile = async () =>
    (
      await core().readNamespacedConfigMap({
        name: 'coredns',
        namespace: 'kube-system',
      })
    ).data!.Corefile;
  const setNameserverIp = (ip: string) =>
    dnsConfigs().patchClusterCustomObjectStatus(
      {
        group: 'tailscale.com',
        version: 'v1alpha1',
        plural: 'dnsconfigs',
        name: 'ts-dns',
        body: { status: { nameserver: { ip } } },
      },
      mergePatch,
    );

  beforeAll(async () => {
    await addCorefileBlockByHand(cluster, customBlock);
    // The DNSConfig CRD as the operator chart installs it, and Tailmesh's DNSConfig. No operator
    // runs here (no `tailscale` namespace), so its status says what the test writes into it.
    const crd = parse(
      fs.readFileSync(
        path.join(
          config.getString('mesh.charts.tailscaleOperatorCrds'),
          'tailscale.com_dnsconfigs.yaml',
        ),
        'utf8',
      ),
    ) as V1CustomResourceDefinition;
    await kubeConfig(cluster)
      .makeApiClient(ApiextensionsV1Api)
      .createCustomResourceDefinition({ body: crd });
    for (let i = 0; ; i++) {
      try {
        await dnsConfigs().createClusterCustomObject({
          group: 'tailscale.com',
          version: 'v1alpha1',
          plural: 'dnsconfigs',
          body: {
            apiVersion: 'tailscale.com/v1alpha1',
            kind: 'DNSConfig',
            metadata: {
              name: 'ts-dns',
              labels: { 'app.kubernetes.io/managed-by': 'tailmesh' },
            },
            spec: {
              nameserver: {
                image: { repo: 'tailscale/k8s-nameserver', tag: 'stable' },
              },
            },
          },
        });
        break;
      } catch (e) {
        // The CRD is served a moment after it is created.
        if (i > 50) throw e;
        await new Promise(r => setTimeout(r, 200));
      }
    }
  });

  it('never gets a nameserver address that is not an IP: a server block smuggled in through the status is refused', async () => {
    const before = await corefile();
    await setNameserverIp(
      '10.221.0.53\n}\nevil.example.com:53 {\n    forward . 6.6.6.6',
    );
    const message = await failure(
      runAction(dnsAction, { cluster, timeoutSeconds: 30 }),
    );
    expect(message).toBe(
      `DNSConfig ts-dns on ${cluster} reports status.nameserver.ip "10.221.0.53\\n}\\nevil.example.com:53 {\\n    forward . 6.6.6.6", which is not an IP address; the Corefile was not changed. Check what writes that status (the Tailscale operator), then run again`,
    );
    expect(await corefile()).toBe(before);
  });

  it('never forwards cluster.local to the tailnet: the tailnet comes from configuration', async () => {
    await setNameserverIp('10.221.0.53');
    const before = await corefile();
    const message = await failure(
      runAction(dnsAction, {
        cluster,
        tailnet: 'cluster.local',
        timeoutSeconds: 30,
      }),
    );
    expect(message).toMatch(
      /^Invalid input: tailnet "cluster.local" is not the configured tailnet/,
    );
    expect(await corefile()).toBe(before);
  });

  it('adds the tailnet stanza beside the server block of its own, which stays as it was', async () => {
    const run = await runAction(dnsAction, { cluster, timeoutSeconds: 30 });
    texts.push(...run.logs, JSON.stringify(run.output));
    const after = await corefile();
    expect(after).toContain(customBlock);
    expect(after).toContain(
      `${config.getString('mesh.tailscale.dnsName')}:53 {`,
    );
    expect(after).toContain('forward . 10.221.0.53');
    expect(after).not.toContain('6.6.6.6');
  });

  const setCorefile = (text: string) =>
    core().patchNamespacedConfigMap(
      {
        name: 'coredns',
        namespace: 'kube-system',
        body: { data: { Corefile: text } },
      },
      mergePatch,
    );
  const withoutTailmesh = (text: string) => {
    const tailnet = config.getString('mesh.tailscale.dnsName');
    const begin = text.indexOf(`# tailmesh:begin ${tailnet}`);
    const endMarker = `# tailmesh:end ${tailnet}`;
    return begin < 0
      ? text
      : text.slice(0, begin) +
          text.slice(text.indexOf(endMarker) + endMarker.length);
  };

  /** A cluster DNS Deployment in kube-system (pods labelled k8s-app: kube-dns, as both ship). */
  const createDnsDeployment = (
    name: string,
    pod: Pick<V1PodSpec, 'containers' | 'volumes'>,
  ) =>
    kubeConfig(cluster)
      .makeApiClient(AppsV1Api)
      .createNamespacedDeployment({
        namespace: 'kube-system',
        body: {
          metadata: { name, labels: { 'k8s-app': 'kube-dns' } },
          spec: {
            replicas: 1,
            selector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            template: {
              metadata: { labels: { 'k8s-app': 'kube-dns' } },
              spec: pod,
            },
          },
        },
      });
  const deleteDnsDeployment = (name: string) =>
    kubeConfig(cluster)
      .makeApiClient(AppsV1Api)
      .deleteNamespacedDeployment({ name, namespace: 'kube-system' });
  /** A pod's lookup through the cluster's DNS (the kube-dns Service), made by the test bed. */
  const resolveInCluster = (name: string) =>
    testbedRequest<{ addresses?: string[]; error?: string }>(
      testbed().stateDir,
      { command: 'resolve', cluster, name } satisfies ControlRequest,
    );
  /** Sent to a nameserver that does not answer: SERVFAIL, or the client's 3 s run out first. */
  const forwardedNowhere = (answer: { error?: string }) =>
    ['ESERVFAIL', 'ETIMEOUT'].includes(answer.error ?? '');
  /**
   * Waits until the cluster's DNS sends `name` to the nameserver's address from the DNSConfig's
   * status. No operator runs in this cluster, so nothing answers there: the DNS server keeps
   * trying for 5 s and then says SERVFAIL, and the client (3 s) may give up first.
   */
  const expectSentToNameserver = async (what: string, name: string) => {
    let last: { addresses?: string[]; error?: string } = {};
    expect(
      await eventually(
        what,
        async () => {
          last = await resolveInCluster(name);
          return forwardedNowhere(last) ? last : undefined;
        },
        { describeLast: () => `; last answer: ${JSON.stringify(last)}` },
      ),
    ).toEqual({ error: expect.stringMatching(/^(ESERVFAIL|ETIMEOUT)$/) });
  };

  it("never edits the Corefile of EKS's managed add-on, which would lose the edit: it says what to add, and a run after the admin did finds it", async () => {
    const tailnet = config.getString('mesh.tailscale.dnsName');
    const base = withoutTailmesh(await corefile());
    await setCorefile(base);
    // What the EKS add-on leaves: its label, applied by field manager `eks`.
    await core().patchNamespacedConfigMap(
      {
        name: 'coredns',
        namespace: 'kube-system',
        fieldManager: 'eks',
        body: {
          metadata: { labels: { 'eks.amazonaws.com/component': 'coredns' } },
        },
      },
      mergePatch,
    );
    const message = await failure(
      runAction(dnsAction, { cluster, timeoutSeconds: 30 }),
    );
    expect(message).toContain(
      `${cluster} runs CoreDNS as the EKS managed add-on: an edit of its Corefile is lost`,
    );
    expect(message).toContain(`${tailnet}:53 {`);
    expect(message).toContain('forward . 10.221.0.53');
    expect(await corefile()).toBe(base);

    // The admin adds the block through the add-on (here: into the Corefile, as the add-on would).
    const block = message.slice(message.indexOf(`# tailmesh:begin ${tailnet}`));
    await setCorefile(`${base.trimEnd()}\n${block}\n`);
    const run = await runAction(dnsAction, { cluster, timeoutSeconds: 30 });
    texts.push(...run.logs);
    expect(run.output.changes).toContain(
      `${cluster}: ConfigMap kube-system/coredns unchanged`,
    );
    expect(run.output.changed).toBe(false);
    expect(run.logs.join('\n')).toContain(
      `${cluster}: the Corefile forwards ${tailnet} to 10.221.0.53, as the cluster's admin configured it`,
    );
    await core().patchNamespacedConfigMap(
      {
        name: 'coredns',
        namespace: 'kube-system',
        fieldManager: 'eks',
        body: { metadata: { labels: { 'eks.amazonaws.com/component': null } } },
      },
      mergePatch,
    );
  });

  it("puts the block into AKS's coredns-custom, never into the Corefile the addon manager keeps; AKS's CoreDNS then resolves the tailnet", async () => {
    const tailnet = config.getString('mesh.tailscale.dnsName');
    const base = `${withoutTailmesh(await corefile()).trimEnd()}\nimport custom/*.server\n`;
    await setCorefile(base);
    await core().patchNamespacedConfigMap(
      {
        name: 'coredns',
        namespace: 'kube-system',
        body: {
          metadata: {
            labels: { 'addonmanager.kubernetes.io/mode': 'Reconcile' },
          },
        },
      },
      mergePatch,
    );
    // AKS's CoreDNS Deployment mounts the Corefile at /etc/coredns and coredns-custom (optional)
    // at /etc/coredns/custom (https://learn.microsoft.com/azure/aks/coredns-custom); the test
    // bed's CoreDNS reads what the Deployment mounts.
    await createDnsDeployment('coredns', {
      containers: [
        {
          name: 'coredns',
          image: 'mcr.microsoft.com/oss/v2/kubernetes/coredns:v1.12.1',
          args: ['-conf', '/etc/coredns/Corefile'],
          volumeMounts: [
            { name: 'config-volume', mountPath: '/etc/coredns' },
            {
              name: 'custom-config-volume',
              mountPath: '/etc/coredns/custom',
            },
          ],
        },
      ],
      volumes: [
        {
          name: 'config-volume',
          configMap: {
            name: 'coredns',
            items: [{ key: 'Corefile', path: 'Corefile' }],
          },
        },
        {
          name: 'custom-config-volume',
          configMap: { name: 'coredns-custom', optional: true },
        },
      ],
    });
    try {
      // Before the join: CoreDNS sends tailnet names to the outside world, which has none.
      await eventually('CoreDNS answering with the AKS Corefile', async () =>
        (await resolveInCluster(`probe.${tailnet}`)).error === 'ENOTFOUND'
          ? true
          : undefined,
      );
      const run = await runAction(dnsAction, { cluster, timeoutSeconds: 30 });
      texts.push(...run.logs);
      const key = `tailmesh-${tailnet.replace(/\./g, '-')}.server`;
      expect(run.output.changes).toContain(
        `${cluster}: ConfigMap kube-system/coredns-custom configured (${key} server block added)`,
      );
      expect(run.output.changes).toContain(
        `${cluster}: Deployment kube-system/coredns restarted`,
      );
      expect(await corefile()).toBe(base);
      const custom = await core().readNamespacedConfigMap({
        name: 'coredns-custom',
        namespace: 'kube-system',
      });
      expect(custom.data?.[key]).toContain('forward . 10.221.0.53');
      // The judge: a pod's lookup of a tailnet name through the cluster's DNS now goes where the
      // block CoreDNS imported from coredns-custom sends it (before: NXDOMAIN from the outside
      // world, at once). test/testbed/src/dns/coreDns.test.ts shows the same Corefile and file
      // answering through a nameserver.
      await expectSentToNameserver(
        'the tailnet name sent to the nameserver through coredns-custom',
        `probe.${tailnet}`,
      );
      const again = await runAction(dnsAction, { cluster, timeoutSeconds: 30 });
      expect(again.output.changed).toBe(false);
    } finally {
      await deleteDnsDeployment('coredns');
    }
  });

  it("puts the tailnet into GKE's kube-dns stub domains beside the admin's; kube-dns then forwards the tailnet", async () => {
    const tailnet = config.getString('mesh.tailscale.dnsName');
    // GKE runs kube-dns, not CoreDNS: no coredns ConfigMap, a kube-dns Deployment reading
    // ConfigMap kube-dns (https://cloud.google.com/kubernetes-engine/docs/how-to/kube-dns).
    const saved = await core().readNamespacedConfigMap({
      name: 'coredns',
      namespace: 'kube-system',
    });
    await core().deleteNamespacedConfigMap({
      name: 'coredns',
      namespace: 'kube-system',
    });
    const admins = { 'gke.internal': ['10.221.6.53'] };
    await core().createNamespacedConfigMap({
      namespace: 'kube-system',
      body: {
        metadata: {
          name: 'kube-dns',
          labels: { 'addonmanager.kubernetes.io/mode': 'EnsureExists' },
        },
        data: { stubDomains: JSON.stringify(admins) },
      },
    });
    await createDnsDeployment('kube-dns', {
      containers: [
        {
          name: 'kubedns',
          image: 'registry.k8s.io/dns/k8s-dns-kube-dns:1.26.7',
          args: [
            '--domain=cluster.local.',
            '--dns-port=10053',
            '--config-dir=/kube-dns-config',
          ],
          volumeMounts: [
            { name: 'kube-dns-config', mountPath: '/kube-dns-config' },
          ],
        },
        {
          name: 'dnsmasq',
          image: 'registry.k8s.io/dns/k8s-dns-dnsmasq-nanny:1.26.7',
          args: [
            '-configDir=/etc/k8s/dns/dnsmasq-nanny',
            '-restartDnsmasq=true',
          ],
          volumeMounts: [
            {
              name: 'kube-dns-config',
              mountPath: '/etc/k8s/dns/dnsmasq-nanny',
            },
          ],
        },
      ],
      volumes: [
        {
          name: 'kube-dns-config',
          configMap: { name: 'kube-dns', optional: true },
        },
      ],
    });
    try {
      // kube-dns answers: the admin's stub domain goes to its nameserver (none answers there);
      // the tailnet to the outside world, which has no such name.
      await eventually(
        'kube-dns forwarding the stub domain of its own',
        async () =>
          forwardedNowhere(await resolveInCluster('probe.gke.internal'))
            ? true
            : undefined,
      );
      expect(await resolveInCluster(`probe.${tailnet}`)).toEqual({
        error: 'ENOTFOUND',
      });

      const run = await runAction(dnsAction, { cluster, timeoutSeconds: 30 });
      texts.push(...run.logs);
      expect(run.output.changes).toContain(
        `${cluster}: ConfigMap kube-system/kube-dns configured (${tailnet} stub domain added)`,
      );
      const kubeDns = await core().readNamespacedConfigMap({
        name: 'kube-dns',
        namespace: 'kube-system',
      });
      expect(JSON.parse(kubeDns.data!.stubDomains)).toEqual({
        ...admins,
        [tailnet]: ['10.221.0.53'],
      });
      expect(kubeDns.metadata?.labels).toEqual({
        'addonmanager.kubernetes.io/mode': 'EnsureExists',
      });
      expect(
        await failure(
          core().readNamespacedConfigMap({
            name: 'coredns',
            namespace: 'kube-system',
          }),
        ),
      ).toMatch(/not found/i);
      // The judge: kube-dns, with the ConfigMap as the action left it, sends tailnet names to the
      // nameserver's address from the DNSConfig's status.
      await expectSentToNameserver(
        'the tailnet name sent to the nameserver through the stub domain',
        `probe.${tailnet}`,
      );
      const again = await runAction(dnsAction, { cluster, timeoutSeconds: 30 });
      expect(again.output.changed).toBe(false);
    } finally {
      await deleteDnsDeployment('kube-dns');
      await core().deleteNamespacedConfigMap({
        name: 'kube-dns',
        namespace: 'kube-system',
      });
      await core().createNamespacedConfigMap({
        namespace: 'kube-system',
        body: {
          metadata: {
            name: 'coredns',
            labels: saved.metadata?.labels,
            annotations: saved.metadata?.annotations,
          },
          data: saved.data,
        },
      });
    }
  });
});

describe('tag owners', () => {
  const grant = createTailscaleGrantAccessAction(deps);
  const client = TailscaleClient.fromConfig(config);

  it('never makes the mesh tags ownable by every user, or by a group not allowed in configuration', async () => {
    const before = await client.getPolicy();
    for (const [owner, problem] of [
      [
        'autogroup:member',
        'stands for every user of the tailnet, who could then mark any device as a mesh proxy',
      ],
      [
        'group:everyone',
        'must be a tag, or an owner listed in mesh.tailscale.tagOwnerAllowList (autogroup:admin)',
      ],
    ]) {
      const message = await failure(
        runAction(grant, { owners: ['autogroup:admin', owner] }),
      );
      expect(message).toBe(`Invalid input: owners "${owner}": ${problem}`);
    }
    expect((await client.getPolicy()).etag).toBe(before.etag);
  });
});

describe('the status backend, with a reader that may list Secrets but never get one', () => {
  // The API server's RBAC is the judge: list and watch (which the backend asks for as metadata
  // only) are granted, `get` is not, so a read of cacerts' data would be refused with 403.
  const reader = 'tailmesh-status-reader';
  const rbac = () => kubeConfig(cluster).makeApiClient(RbacAuthorizationV1Api);
  const apps = () => kubeConfig(cluster).makeApiClient(AppsV1Api);
  let token = '';

  beforeAll(async () => {
    // A plugged-in CA from the mesh root, whose root fingerprint is in cacerts' metadata.
    const ca = await runAction(createCaIssueIntermediateAction(deps), {
      cluster,
      createRootIfMissing: true,
    });
    texts.push(...ca.logs);
    // Before istiod publishes istio-ca-root-cert, the backend must learn the root from cacerts:
    // istiod stopped (its Deployment stays), its root ConfigMap gone.
    await apps().patchNamespacedDeploymentScale(
      { name: 'istiod', namespace: ns, body: { spec: { replicas: 0 } } },
      mergePatch,
    );
    // Once its pod is gone (the test bed stops the istiod process with it), nothing recreates
    // the ConfigMap.
    for (let i = 0; ; i++) {
      const pods = await core().listNamespacedPod({
        namespace: ns,
        labelSelector: 'app=istiod',
      });
      if (pods.items.length === 0) break;
      if (i > 300) throw new Error('istiod pods did not go');
      await new Promise(r => setTimeout(r, 100));
    }
    await new Promise(r => setTimeout(r, 2000));
    await core()
      .deleteNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace: ns })
      .catch(() => undefined);

    await core().createNamespacedServiceAccount({
      namespace: 'kube-system',
      body: { metadata: { name: reader } },
    });
    await rbac().createClusterRole({
      body: {
        metadata: { name: reader },
        rules: [
          {
            apiGroups: [''],
            resources: [
              'namespaces',
              'nodes',
              'services',
              'configmaps',
              'pods',
            ],
            verbs: ['get', 'list', 'watch'],
          },
          { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch'] },
          { apiGroups: [''], resources: ['services/proxy'], verbs: ['get'] },
          {
            apiGroups: ['apps'],
            resources: ['deployments'],
            verbs: ['get', 'list', 'watch'],
          },
          {
            apiGroups: ['discovery.k8s.io'],
            resources: ['endpointslices'],
            verbs: ['get', 'list', 'watch'],
          },
          {
            apiGroups: ['networking.k8s.io'],
            resources: ['networkpolicies'],
            verbs: ['get', 'list', 'watch'],
          },
        ],
      },
    });
    await rbac().createClusterRoleBinding({
      body: {
        metadata: { name: reader },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: reader,
        },
        subjects: [
          { kind: 'ServiceAccount', name: reader, namespace: 'kube-system' },
        ],
      },
    });
    const request = await core().createNamespacedServiceAccountToken({
      name: reader,
      namespace: 'kube-system',
      // No audiences: the API server's own.
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    token = request.status!.token;
  });

  it("learns the plugged-in root from cacerts' metadata; a read of its data would be refused", async () => {
    const appConfig = testbedAppConfig([cluster]);
    const asReader = new ConfigReader({
      ...appConfig,
      mesh: {
        ...appConfig.mesh,
        clusters: appConfig.mesh.clusters.map(c => ({
          ...c,
          serviceAccountToken: token,
        })),
      },
    });
    const logs: string[] = [];
    const cache = MeshStateCache.fromConfig(asReader, {
      logger: capturingLogger(logs),
    });
    cache.start();
    try {
      const cacerts = await core().readNamespacedSecret({
        name: 'cacerts',
        namespace: ns,
      });
      const fingerprint =
        cacerts.metadata?.annotations?.['tailmesh.dev/root-fingerprint'];
      expect(fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      for (let i = 0; ; i++) {
        const s = cache.snapshots().find(x => x.cluster === cluster);
        if (cache.health(cluster).state === 'ok' && s?.rootFingerprint) {
          expect(s.rootFingerprint).toBe(fingerprint);
          break;
        }
        if (i > 300)
          throw new Error(
            `no root fingerprint for ${cluster}: ${JSON.stringify(cache.health(cluster))}`,
          );
        await new Promise(r => setTimeout(r, 100));
      }
      expect(logs.join('\n')).not.toMatch(/cacerts|403|forbidden/i);
      // What the backend would have needed to read the key, the reader may not do.
      const admin = kubeConfig(cluster);
      const readerKc = new KubeConfig();
      readerKc.loadFromOptions({
        clusters: admin.clusters,
        users: [{ name: reader, token }],
        contexts: [
          {
            name: reader,
            cluster: admin.getCurrentCluster()!.name,
            user: reader,
          },
        ],
        currentContext: reader,
      });
      await expect(
        readerKc
          .makeApiClient(CoreV1Api)
          .readNamespacedSecret({ name: 'cacerts', namespace: ns }),
      ).rejects.toMatchObject({ code: 403 });
    } finally {
      await cache.stop();
    }
  });
});
