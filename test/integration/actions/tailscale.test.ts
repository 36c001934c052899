import fs from 'node:fs';
import path from 'node:path';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { TailscaleClient } from '@tailmesh/plugin-mesh-node';
import {
  createMeshActionDeps,
  createTailscaleConfigureDnsAction,
  createTailscaleCreateEgressAction,
  createTailscaleGrantAccessAction,
  createTailscaleInstallOperatorAction,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import { tailnetStanza } from '@tailmesh/plugin-scaffolder-backend-module-mesh/testUtils';
import { expectNoSecrets, runAction } from '../../support/actions';
import { testbedConfig, testbedSecrets } from '../../support/meshConfig';
import {
  helm,
  kubeConfig,
  tailscaleCredentials,
  testbed,
} from '../../support/testbed';
import { eventually } from '../../support/eventually';

// cluster4 is shared with the Istio install test only (see support/clusterOwners.ts).
const cluster = 'cluster4';
const config = testbedConfig();
const deps = createMeshActionDeps(config);
const core = () => kubeConfig(cluster).makeApiClient(CoreV1Api);
const texts = (run: { logs: string[]; output: Record<string, unknown> }) => [
  ...run.logs,
  JSON.stringify(run.output),
];

afterAll(async () => {
  // Leave cluster4's helm releases as the Istio install test expects to find them.
  await helm(cluster, [
    'uninstall',
    'tailscale-operator',
    '-n',
    'tailscale',
    '--ignore-not-found',
  ]);
});

describe('mesh:tailscale:install-operator', () => {
  const action = createTailscaleInstallOperatorAction(deps);
  const input = { cluster, timeoutSeconds: 120 };

  it('in a dry run, shows CRDs, release and binding with the OAuth secret redacted, and writes nothing', async () => {
    const run = await runAction(action, input, { dryRun: true });
    expect(run.output.changed).toBe(true);
    expect(run.output.changes).toEqual(
      expect.arrayContaining([
        `${cluster}: CustomResourceDefinition dnsconfigs.tailscale.com created`,
        `${cluster}: helm release tailscale-operator installed`,
        `${cluster}: ClusterRoleBinding tailmesh-istio-remote-readers created`,
      ]),
    );
    expect(run.output.manifests).toContain('name: operator-oauth');
    expect(run.output.manifests).toContain('client_secret: <redacted>');
    expectNoSecrets(texts(run), testbedSecrets());
    const crds = kubeConfig(cluster).makeApiClient(ApiextensionsV1Api);
    await expect(
      crds.readCustomResourceDefinition({ name: 'dnsconfigs.tailscale.com' }),
    ).rejects.toMatchObject({ code: 404 });
    expect(
      JSON.parse(
        await helm(cluster, ['list', '-n', 'tailscale', '-o', 'json']),
      ),
    ).toEqual([]);
  });

  it('installs CRDs, the operator and the reader binding, waits for the operator; a re-run changes nothing', async () => {
    const first = await runAction(action, input);
    expect(first.output.changed).toBe(true);

    const operator = await kubeConfig(cluster)
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name: 'operator', namespace: 'tailscale' });
    expect(
      operator.status?.conditions?.find(c => c.type === 'Available')?.status,
    ).toBe('True');
    const crds = await kubeConfig(cluster)
      .makeApiClient(ApiextensionsV1Api)
      .listCustomResourceDefinition();
    const crdFiles = fs.readdirSync(
      config.getString('mesh.charts.tailscaleOperatorCrds'),
    );
    expect(
      crds.items.filter(c => c.spec.group === 'tailscale.com'),
    ).toHaveLength(crdFiles.length);
    const binding = await kubeConfig(cluster)
      .makeApiClient(RbacAuthorizationV1Api)
      .readClusterRoleBinding({ name: 'tailmesh-istio-remote-readers' });
    expect(binding.roleRef.name).toBe('istio-reader-clusterrole-istio-system');
    expect(binding.subjects).toEqual([
      {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Group',
        name: 'tailmesh:istio-remote-readers',
      },
    ]);
    const values = JSON.parse(
      await helm(cluster, [
        'get',
        'values',
        'tailscale-operator',
        '-n',
        'tailscale',
        '-o',
        'json',
      ]),
    );
    // The operator's own client, not Backstage's policy-file client.
    expect(values.oauth.clientId).toBe(
      config.getString('mesh.tailscale.operatorOauth.clientId'),
    );
    expect(values.oauth.clientId).not.toBe(tailscaleCredentials().clientId);
    expect(values.operatorConfig.hostname).toBe('cluster4-k8s-operator');
    expect(values.apiServerProxyConfig.mode).toBe('true');

    const second = await runAction(action, input);
    expect(second.output.changed).toBe(false);
    expect(
      (second.output.changes as string[]).every(l => l.endsWith(' unchanged')),
    ).toBe(true);
    expect(second.logs.join('\n')).toContain(
      'helm release tailscale/tailscale-operator (tailscale-operator-0.1.0) unchanged',
    );
    const history = JSON.parse(
      await helm(cluster, [
        'history',
        'tailscale-operator',
        '-n',
        'tailscale',
        '-o',
        'json',
      ]),
    );
    expect(history).toHaveLength(1);
    expectNoSecrets([...texts(first), ...texts(second)], testbedSecrets());
  });

  it('rejects an unknown cluster before touching anything', async () => {
    await expect(
      runAction(action, { ...input, cluster: 'nowhere' }),
    ).rejects.toThrow(/Unknown cluster "nowhere"/);
  });

  it('refuses to put the policy-file client into a cluster, before touching it', async () => {
    const policyClient = config.getConfig('mesh.tailscale.oauth');
    const before = await helm(cluster, [
      'history',
      'tailscale-operator',
      '-n',
      'tailscale',
      '-o',
      'json',
    ]);
    const run = runAction(action, input, {
      secrets: {
        tailscaleOperatorClientId: policyClient.getString('clientId'),
        tailscaleOperatorClientSecret: policyClient.getString('clientSecret'),
      },
    });
    await expect(run).rejects.toThrow(
      /is the policy-file client; give the operator a client of its own/,
    );
    await expect(run).rejects.not.toThrow(
      policyClient.getString('clientSecret'),
    );
    expect(
      await helm(cluster, [
        'history',
        'tailscale-operator',
        '-n',
        'tailscale',
        '-o',
        'json',
      ]),
    ).toBe(before);
    // The operator's Secret holds the operator's own client, which cannot edit the policy file.
    const secret = await core().readNamespacedSecret({
      name: 'operator-oauth',
      namespace: 'tailscale',
    });
    const installed = Buffer.from(secret.data!.client_id, 'base64').toString(
      'utf8',
    );
    expect(installed).toBe(
      config.getString('mesh.tailscale.operatorOauth.clientId'),
    );
    const asOperator = TailscaleClient.fromConfig(config, {
      clientId: installed,
      clientSecret: Buffer.from(secret.data!.client_secret, 'base64').toString(
        'utf8',
      ),
    });
    expect(await asOperator.grantedScopes()).not.toContain('policy_file');
    await expect(asOperator.getPolicy()).rejects.toThrow(
      /refused \(HTTP 403\)/,
    );
  });
});

describe('mesh:tailscale:grant-access', () => {
  const action = createTailscaleGrantAccessAction(deps);
  const client = TailscaleClient.fromConfig(config);
  const fixture = fs.readFileSync(
    path.join(__dirname, '../../testbed/fixtures/tailnet-policy.hujson'),
    'utf8',
  );
  const adminComments = fixture
    .split('\n')
    .filter(l => l.trim().startsWith('//') || l.includes('// '));

  beforeAll(async () => {
    // The stand-in's policy file is shared by the whole test bed: start from the admin's file.
    const current = await client.getPolicy();
    if (current.text !== fixture) await client.setPolicy(fixture, current.etag);
  });

  it('in a dry run, returns the diff and writes nothing', async () => {
    const before = await client.getPolicy();
    const run = await runAction(action, {}, { dryRun: true });
    expect(run.output.changed).toBe(true);
    expect(run.output.policyDiff).toContain(
      '+\t\t"tag:k8s": ["tag:k8s-operator"],',
    );
    expect(run.output.policyDiff).toContain(
      '"impersonate": {"groups": ["tailmesh:istio-remote-readers"]}',
    );
    expect((await client.getPolicy()).etag).toBe(before.etag);
  });

  it("lands two concurrent runs, keeping the admin's comments; a re-run writes nothing", async () => {
    const [plain, withOwner] = await Promise.all([
      runAction(action, {}),
      runAction(action, { owners: ['autogroup:admin', 'tag:ci'] }),
    ]);
    expect(plain.output.changed || withOwner.output.changed).toBe(true);

    const after = await client.getPolicy();
    for (const comment of adminComments) expect(after.text).toContain(comment);
    expect(after.text).toContain(
      '"tag:k8s-operator": ["autogroup:admin", "tag:ci"]',
    );
    expect(after.text).toContain(
      '"tag:istio-eastwestgateway": ["autogroup:admin", "tag:k8s-operator", "tag:ci"]',
    );
    expect(after.text).toContain('"tag:k8s": ["tag:k8s-operator"]');
    expect(after.text.match(/"tailscale.com\/cap\/kubernetes"/g)).toHaveLength(
      1,
    );
    expect(after.text).toContain(
      '{"src": ["tag:tailmesh-egress"], "dst": ["tag:istio-eastwestgateway"], "ip": ["tcp:15443"]}',
    );
    expect(after.text).toContain(
      '{"src": ["tag:tailmesh-egress"], "dst": ["tag:k8s-operator"], "ip": ["tcp:443"], "app":',
    );
    expect(after.text).not.toContain('system:masters');

    const again = await runAction(action, { owners: ['tag:ci'] });
    expect(again.output).toEqual({
      changed: false,
      changes: [],
      policyDiff: '',
    });
    expect(again.logs.join('\n')).toContain('unchanged');
    expect((await client.getPolicy()).etag).toBe(after.etag);
    expectNoSecrets(
      [...texts(plain), ...texts(withOwner), ...texts(again)],
      testbedSecrets(),
    );
  });

  it('uses the OAuth client from task secrets over configuration', async () => {
    await expect(
      runAction(
        action,
        {},
        {
          secrets: {
            tailscaleClientId: 'someone-else',
            tailscaleClientSecret: 'wrong',
          },
        },
      ),
    ).rejects.toThrow(/Tailscale refused the OAuth client someone-else/);
  });
});

describe('mesh:tailscale:configure-dns', () => {
  const action = createTailscaleConfigureDnsAction(deps);
  const input = { cluster, timeoutSeconds: 60 };
  const tailnet = testbed().tailnet;

  it('in a dry run, shows the DNSConfig and writes nothing', async () => {
    const before = await core().readNamespacedConfigMap({
      name: 'coredns',
      namespace: 'kube-system',
    });
    const run = await runAction(action, input, { dryRun: true });
    expect(run.output.changes).toEqual([
      `${cluster}: DNSConfig ts-dns created`,
      `${cluster}: ConfigMap kube-system/coredns configured (${tailnet} stanza added)`,
    ]);
    expect(run.output.manifests).toContain('tag: stable');
    const after = await core().readNamespacedConfigMap({
      name: 'coredns',
      namespace: 'kube-system',
    });
    expect(after.metadata?.resourceVersion).toBe(
      before.metadata?.resourceVersion,
    );
    await expect(
      kubeConfig(cluster)
        .makeApiClient(CustomObjectsApi)
        .getClusterCustomObject({
          group: 'tailscale.com',
          version: 'v1alpha1',
          plural: 'dnsconfigs',
          name: 'ts-dns',
        }),
    ).rejects.toMatchObject({ code: 404 });
  });

  it("forwards the tailnet to the operator's nameserver with one stanza; a re-run changes nothing", async () => {
    const before = await core().readNamespacedConfigMap({
      name: 'coredns',
      namespace: 'kube-system',
    });
    const original = before.data!.Corefile;
    const first = await runAction(action, input);
    const ip = first.output.nameserverIp as string;
    const nameserver = await core().readNamespacedService({
      name: 'nameserver',
      namespace: 'tailscale',
    });
    expect(ip).toBe(nameserver.spec?.clusterIP);

    const after = await core().readNamespacedConfigMap({
      name: 'coredns',
      namespace: 'kube-system',
    });
    expect(after.data!.Corefile).toBe(
      `${original}${tailnetStanza(tailnet, ip)}\n`,
    );

    const second = await runAction(action, input);
    expect(second.output.changed).toBe(false);
    expect(second.output.changes).toEqual([
      `${cluster}: DNSConfig ts-dns unchanged`,
      `${cluster}: ConfigMap kube-system/coredns unchanged`,
    ]);
    const again = await core().readNamespacedConfigMap({
      name: 'coredns',
      namespace: 'kube-system',
    });
    expect(again.metadata?.resourceVersion).toBe(
      after.metadata?.resourceVersion,
    );
  });
});

describe('mesh:tailscale:create-egress', () => {
  const action = createTailscaleCreateEgressAction(deps);
  const peers = ['cluster1', 'cluster2'];
  const input = { cluster, peers };
  const proxyName = (name: string) =>
    eventually(`the operator to rewrite ${name}`, async () => {
      const svc = await core().readNamespacedService({
        name,
        namespace: 'tailscale',
      });
      const ready = svc.status?.conditions?.some(
        c => c.type === 'TailscaleProxyReady' && c.status === 'True',
      );
      return ready && svc.spec?.externalName !== 'placeholder'
        ? svc.spec?.externalName
        : undefined;
    });

  it('creates one egress Service per peer, which the operator takes over; a re-run keeps its value', async () => {
    const first = await runAction(action, input);
    expect(first.output.changes).toEqual([
      `${cluster}: Service tailscale/cluster1-k8s-operator created`,
      `${cluster}: NetworkPolicy tailscale/cluster1-k8s-operator-istiod-only created`,
      `${cluster}: Service tailscale/cluster1-istio-eastwestgateway created`,
      `${cluster}: Service tailscale/cluster2-k8s-operator created`,
      `${cluster}: NetworkPolicy tailscale/cluster2-k8s-operator-istiod-only created`,
      `${cluster}: Service tailscale/cluster2-istio-eastwestgateway created`,
    ]);
    // To each peer's east-west gateway too, tagged like the API proxy's, for the grants.
    for (const peer of peers) {
      const gw = await core().readNamespacedService({
        name: `${peer}-istio-eastwestgateway`,
        namespace: 'tailscale',
      });
      expect(gw.metadata?.annotations).toMatchObject({
        'tailscale.com/tailnet-fqdn': `${peer}-istio-eastwestgateway.${testbed().tailnet}`,
        'tailscale.com/tags': 'tag:tailmesh-egress',
      });
      expect(gw.spec?.ports).toEqual([
        { name: 'tls', port: 15443, protocol: 'TCP', targetPort: 15443 },
      ]);
    }
    const tailnet = testbed().tailnet;
    const rewritten: Record<string, string> = {};
    const versions: Record<string, string | undefined> = {};
    for (const peer of peers) {
      const svc = await core().readNamespacedService({
        name: `${peer}-k8s-operator`,
        namespace: 'tailscale',
      });
      expect(svc.metadata?.annotations?.['tailscale.com/tailnet-fqdn']).toBe(
        `${peer}-k8s-operator.${tailnet}`,
      );
      expect(svc.metadata?.labels?.['tailmesh.dev/peer']).toBe(peer);
      expect(svc.spec?.ports).toEqual([
        { name: 'https', port: 443, protocol: 'TCP', targetPort: 443 },
      ]);
      rewritten[peer] = await proxyName(`${peer}-k8s-operator`);
      expect(rewritten[peer]).toMatch(
        new RegExp(
          `^ts-${peer}-k8s-operator-\\w+\\.tailscale\\.svc\\.cluster\\.local$`,
        ),
      );
      versions[peer] = (
        await core().readNamespacedService({
          name: `${peer}-k8s-operator`,
          namespace: 'tailscale',
        })
      ).metadata?.resourceVersion;
    }

    const second = await runAction(action, input);
    expect(second.output.changed).toBe(false);
    expect(second.logs.filter(l => l.includes(' unchanged'))).toHaveLength(6);
    for (const peer of peers) {
      const svc = await core().readNamespacedService({
        name: `${peer}-k8s-operator`,
        namespace: 'tailscale',
      });
      expect(svc.spec?.externalName).toBe(rewritten[peer]);
      expect(svc.metadata?.resourceVersion).toBe(versions[peer]);
    }
  });

  it('refuses the cluster itself as a peer', async () => {
    await expect(
      runAction(action, { cluster, peers: ['cluster1', cluster] }),
    ).rejects.toThrow('peers must not include the cluster itself ("cluster4")');
  });
});
