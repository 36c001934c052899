import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObject,
} from '@kubernetes/client-node';
import {
  createIstioConfigureNetworksAction,
  createIstioCreateRemoteSecretsAction,
  createIstioDeployEastWestGatewayAction,
  createIstioInstallAction,
  createMeshActionDeps,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import { parse } from 'yaml';
import { expectNoSecrets, runAction } from '../../support/actions';
import { testbedConfig, testbedSecrets } from '../../support/meshConfig';
import { chart, helm, kubeConfig, testbed } from '../../support/testbed';

// cluster5 and cluster6 are shared with the CA action tests only (see support/clusterOwners.ts),
// which own the cacerts Secret in cluster5: nothing here reads or writes it.
const meshId = 'mesh-wiring-test';
const members = [
  { cluster: 'cluster5', network: 'network5' },
  { cluster: 'cluster6', network: 'network6' },
] as const;
const timeoutSeconds = 120;
const ns = 'istio-system';

const core = (cluster: string) => kubeConfig(cluster).makeApiClient(CoreV1Api);
const apps = (cluster: string) => kubeConfig(cluster).makeApiClient(AppsV1Api);
const readSecret = (cluster: string, name: string) =>
  core(cluster).readNamespacedSecret({ name, namespace: ns });
const readMeshConfigMap = (cluster: string) =>
  core(cluster).readNamespacedConfigMap({ name: 'istio', namespace: ns });
const restartedAt = async (cluster: string) =>
  (
    await apps(cluster).readNamespacedDeployment({
      name: 'istiod',
      namespace: ns,
    })
  ).spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'];

describe('Istio wiring actions: remote secrets, east-west gateways, meshNetworks', () => {
  const deps = createMeshActionDeps(testbedConfig());
  const tailnet = testbed().tailnet;
  const secrets = testbedSecrets();
  const texts: string[] = [];
  const keep = (run: { logs: string[]; output: Record<string, unknown> }) => {
    texts.push(...run.logs, JSON.stringify(run.output));
    return run;
  };

  beforeAll(async () => {
    const install = createIstioInstallAction(deps);
    for (const { cluster, network } of members) {
      await runAction(install, { cluster, meshId, network, timeoutSeconds });
    }
  }, 300_000);

  afterAll(() => expectNoSecrets(texts, secrets));

  describe('mesh:istio:create-remote-secrets', () => {
    const action = createIstioCreateRemoteSecretsAction(deps);

    it('rejects the cluster as its own peer and unknown peers before writing anything', async () => {
      await expect(
        runAction(action, { cluster: 'cluster5', peers: ['cluster5'] }),
      ).rejects.toThrow(
        'Invalid input: peers must not include the cluster itself ("cluster5")',
      );
      await expect(
        runAction(action, {
          cluster: 'cluster5',
          peers: ['cluster6', 'nowhere'],
        }),
      ).rejects.toThrow('Unknown cluster "nowhere"');
      await expect(
        readSecret('cluster5', 'istio-remote-secret-cluster6'),
      ).rejects.toMatchObject({ code: 404 });
    });

    it('in a dry run, shows the Secrets with their data redacted and writes nothing', async () => {
      const run = keep(
        await runAction(
          action,
          { cluster: 'cluster5', peers: ['cluster6'], tailnet },
          { dryRun: true },
        ),
      );
      expect(run.output.changes).toEqual([
        'cluster5: Secret istio-system/istio-remote-secret-cluster6 created',
        'cluster6: Secret istio-system/istio-remote-secret-cluster5 created',
      ]);
      const manifests = run.output.manifests as string;
      expect(manifests).toContain('name: istio-remote-secret-cluster6');
      expect(manifests).toContain('cluster6: <redacted>');
      expect(manifests).not.toContain(tailnet);
      await expect(
        readSecret('cluster5', 'istio-remote-secret-cluster6'),
      ).rejects.toMatchObject({ code: 404 });
      await expect(
        readSecret('cluster6', 'istio-remote-secret-cluster5'),
      ).rejects.toMatchObject({ code: 404 });
    });

    it('creates both Secrets as istioctl shapes them, pointing at the peer API server proxy; a re-run changes nothing', async () => {
      // No tailnet input: it comes from mesh.tailscale.dnsName.
      const first = keep(
        await runAction(action, { cluster: 'cluster5', peers: ['cluster6'] }),
      );
      expect(first.output.changed).toBe(true);

      for (const [holder, peer] of [
        ['cluster5', 'cluster6'],
        ['cluster6', 'cluster5'],
      ]) {
        const secret = await readSecret(holder, `istio-remote-secret-${peer}`);
        expect(secret.metadata?.labels).toMatchObject({
          'istio/multiCluster': 'true',
        });
        expect(secret.metadata?.annotations).toMatchObject({
          'networking.istio.io/cluster': peer,
        });
        expect(Object.keys(secret.data ?? {})).toEqual([peer]);
        const kubeconfig = parse(
          Buffer.from(secret.data![peer], 'base64').toString('utf8'),
        );
        expect(kubeconfig).toEqual({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            {
              name: peer,
              cluster: { server: `https://${peer}-k8s-operator.${tailnet}` },
            },
          ],
          contexts: [{ name: peer, context: { cluster: peer, user: peer } }],
          'current-context': peer,
          preferences: {},
          users: [{ name: peer, user: { token: 'unused' } }],
        });
      }

      const second = keep(
        await runAction(action, {
          cluster: 'cluster5',
          peers: ['cluster6'],
          tailnet,
        }),
      );
      expect(second.output).toEqual({
        changed: false,
        changes: [
          'cluster5: Secret istio-system/istio-remote-secret-cluster6 unchanged',
          'cluster6: Secret istio-system/istio-remote-secret-cluster5 unchanged',
        ],
      });
      expect(second.logs.filter(l => l.includes('unchanged'))).toHaveLength(2);
    });
  });

  describe('mesh:istio:deploy-eastwest-gateway and mesh:istio:configure-networks', () => {
    const gateway = createIstioDeployEastWestGatewayAction(deps);
    const networks = createIstioConfigureNetworksAction(deps);
    const addresses: Record<string, string> = {};

    const deploy = async (cluster: string, network: string) => {
      const run = keep(
        await runAction(gateway, { cluster, network, tailnet, timeoutSeconds }),
      );
      const svc = await core(cluster).readNamespacedService({
        name: 'istio-eastwestgateway',
        namespace: ns,
      });
      const ingress = svc.status?.loadBalancer?.ingress ?? [];
      expect(run.output.gatewayAddress).toBe(
        ingress.find(i => i.hostname)?.hostname,
      );
      expect(run.output.gatewayIp).toBe(ingress.find(i => i.ip)?.ip);
      addresses[cluster] = run.output.gatewayAddress as string;
      return { run, svc };
    };

    it('refuses a network other than the one istio-system is labelled with', async () => {
      await expect(
        runAction(gateway, {
          cluster: 'cluster5',
          network: 'network6',
          tailnet,
          timeoutSeconds,
        }),
      ).rejects.toThrow(
        'Invalid input: network "network6" does not match cluster5\'s network: namespace istio-system is labelled topology.istio.io/network="network5"',
      );
      expect(
        JSON.parse(
          await helm('cluster5', [
            'list',
            '-n',
            ns,
            '--filter',
            'istio-eastwestgateway',
            '-o',
            'json',
          ]),
        ),
      ).toEqual([]);
    });

    it('in a dry run, renders the release and the Gateway and writes nothing', async () => {
      const run = keep(
        await runAction(
          gateway,
          { cluster: 'cluster5', network: 'network5', tailnet, timeoutSeconds },
          { dryRun: true },
        ),
      );
      expect(run.output.changes).toEqual([
        'cluster5: helm release istio-eastwestgateway installed',
        'cluster5: Gateway istio-system/cross-network-gateway created',
      ]);
      expect(run.output.manifests).toContain('loadBalancerClass: tailscale');
      expect(run.output.manifests).toContain('kind: Gateway');
      expect(run.output.gatewayAddress).toBe(
        `cluster5-istio-eastwestgateway.${tailnet}`,
      );
      expect(
        JSON.parse(
          await helm('cluster5', ['list', '-n', ns, '-o', 'json']),
        ).map((r: { name: string }) => r.name),
      ).not.toContain('istio-eastwestgateway');
      await expect(
        core('cluster5').readNamespacedService({
          name: 'istio-eastwestgateway',
          namespace: ns,
        }),
      ).rejects.toMatchObject({
        code: 404,
      });
    });

    it("deploys cluster5's gateway as a Tailscale LoadBalancer with the cross-network Gateway; a re-run changes nothing", async () => {
      const { run, svc } = await deploy('cluster5', 'network5');
      expect(run.output.changes).toEqual([
        'cluster5: helm release istio-eastwestgateway installed',
        'cluster5: Gateway istio-system/cross-network-gateway created',
      ]);
      expect(svc.spec?.type).toBe('LoadBalancer');
      expect(svc.spec?.loadBalancerClass).toBe('tailscale');
      expect(svc.metadata?.annotations).toMatchObject({
        'tailscale.com/hostname': 'cluster5-istio-eastwestgateway',
        'tailscale.com/tags': 'tag:istio-eastwestgateway',
      });
      // No network label: with it istiod would take the gateway's load-balancer address, the
      // 100.x tailnet IP no pod can route to (meshNetworks names the gateway instead).
      expect(svc.metadata?.labels).toMatchObject({ istio: 'eastwestgateway' });
      expect(svc.metadata?.labels?.['topology.istio.io/network']).toBeUndefined();
      expect(svc.spec?.selector).toEqual({
        app: 'istio-eastwestgateway',
        istio: 'eastwestgateway',
      });
      expect(svc.spec?.ports?.map(p => [p.name, p.port, p.targetPort])).toEqual(
        [
          ['status-port', 15021, 15021],
          ['tls', 15443, 15443],
        ],
      );
      expect(addresses.cluster5).toBe(
        `cluster5-istio-eastwestgateway.${tailnet}`,
      );
      expect(run.output.gatewayIp).toMatch(/^100\./);

      const gw = (await kubeConfig('cluster5')
        .makeApiClient(CustomObjectsApi)
        .getNamespacedCustomObject({
          group: 'networking.istio.io',
          version: 'v1',
          namespace: ns,
          plural: 'gateways',
          name: 'cross-network-gateway',
        })) as KubernetesObject & { spec: unknown };
      expect(gw.spec).toEqual({
        selector: { istio: 'eastwestgateway' },
        servers: [
          {
            port: { number: 15443, name: 'tls', protocol: 'TLS' },
            tls: { mode: 'AUTO_PASSTHROUGH' },
            hosts: ['*.local'],
          },
        ],
      });

      const second = keep(
        await runAction(gateway, {
          cluster: 'cluster5',
          network: 'network5',
          tailnet,
          timeoutSeconds,
        }),
      );
      expect(second.output.changed).toBe(false);
      expect(second.output.changes).toEqual([
        'cluster5: helm release istio-eastwestgateway unchanged',
        'cluster5: Gateway istio-system/cross-network-gateway unchanged',
      ]);
      expect(second.output.gatewayAddress).toBe(addresses.cluster5);
      expect(
        JSON.parse(
          await helm('cluster5', [
            'history',
            'istio-eastwestgateway',
            '-n',
            ns,
            '-o',
            'json',
          ]),
        ),
      ).toHaveLength(1);
    });

    it('refuses meshNetworks while a member has no east-west gateway, and writes nowhere', async () => {
      const before = await Promise.all(
        ['cluster5', 'cluster6'].map(readMeshConfigMap),
      );
      await expect(
        runAction(networks, {
          members: ['cluster5', 'cluster6'],
          tailnet,
          timeoutSeconds,
        }),
      ).rejects.toThrow(
        'Cannot configure meshNetworks, nothing was changed: cluster6 has no east-west gateway address: Service istio-system/istio-eastwestgateway does not exist (run mesh:istio:deploy-eastwest-gateway)',
      );
      const after = await Promise.all(
        ['cluster5', 'cluster6'].map(readMeshConfigMap),
      );
      expect(after.map(c => c.metadata?.resourceVersion)).toEqual(
        before.map(c => c.metadata?.resourceVersion),
      );
      expect(await restartedAt('cluster5')).toBeUndefined();
    });

    it("deploys cluster6's gateway", async () => {
      const { run } = await deploy('cluster6', 'network6');
      expect(run.output.changed).toBe(true);
      expect(addresses.cluster6).toBe(
        `cluster6-istio-eastwestgateway.${tailnet}`,
      );
      const second = keep(
        await runAction(gateway, {
          cluster: 'cluster6',
          network: 'network6',
          timeoutSeconds,
        }),
      );
      expect(second.output.changed).toBe(false);
      expect(
        JSON.parse(
          await helm('cluster6', [
            'history',
            'istio-eastwestgateway',
            '-n',
            ns,
            '-o',
            'json',
          ]),
        ),
      ).toHaveLength(1);
    });

    it('gives both members the same meshNetworks through the istiod release values, restarts each istiod once when asked, and a re-run or retry changes nothing', async () => {
      const input = {
        members: ['cluster5', 'cluster6'],
        tailnet,
        restartIstiod: true,
        timeoutSeconds,
      };
      const meshBefore = await Promise.all(
        ['cluster5', 'cluster6'].map(
          async c => (await readMeshConfigMap(c)).data?.mesh,
        ),
      );
      const checkpoints = new Map<string, unknown>();
      const first = keep(await runAction(networks, input, { checkpoints }));
      expect(first.output.changes).toEqual([
        'cluster5: ConfigMap istio-system/istio meshNetworks configured',
        'cluster5: Deployment istio-system/istiod restarted',
        'cluster6: ConfigMap istio-system/istio meshNetworks configured',
        'cluster6: Deployment istio-system/istiod restarted',
      ]);
      expect(first.output.restarted).toEqual(['cluster5', 'cluster6']);
      expect(first.output.diff).toContain(
        `+       - address: ${addresses.cluster6}`,
      );

      const expected = {
        networks: {
          network5: {
            endpoints: [{ fromRegistry: 'cluster5' }],
            gateways: [{ address: addresses.cluster5, port: 15443 }],
          },
          network6: {
            endpoints: [{ fromRegistry: 'cluster6' }],
            gateways: [{ address: addresses.cluster6, port: 15443 }],
          },
        },
      };
      const restarts: Record<string, string | undefined> = {};
      for (const [i, cluster] of ['cluster5', 'cluster6'].entries()) {
        const cm = await readMeshConfigMap(cluster);
        expect(parse(cm.data!.meshNetworks)).toEqual(expected);
        // Kept in the release's values, so `helm upgrade --reuse-values` keeps it.
        const values = JSON.parse(
          await helm(cluster, ['get', 'values', 'istiod', '-n', ns, '-o', 'json']),
        ) as { global: { meshNetworks?: unknown } };
        expect(values.global.meshNetworks).toEqual(expected.networks);
        // Helm owns the rest of the ConfigMap; only meshNetworks was touched.
        expect(cm.data!.mesh).toBe(meshBefore[i]);
        restarts[cluster] = await restartedAt(cluster);
        expect(restarts[cluster]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        const istiod = await apps(cluster).readNamespacedDeployment({
          name: 'istiod',
          namespace: ns,
        });
        expect(
          istiod.status?.conditions?.find(c => c.type === 'Available')?.status,
        ).toBe('True');
      }

      // The scaffolder retrying the same task: its checkpoints hold the restarts already done.
      const retry = keep(await runAction(networks, input, { checkpoints }));
      expect(retry.output.restarted).toEqual(['cluster5', 'cluster6']);
      for (const cluster of ['cluster5', 'cluster6'])
        expect(await restartedAt(cluster)).toBe(restarts[cluster]);

      const second = keep(
        await runAction(networks, {
          ...input,
          members: ['cluster6', 'cluster5'],
        }),
      );
      expect(second.output).toMatchObject({
        changed: false,
        changes: [
          'cluster6: ConfigMap istio-system/istio meshNetworks unchanged',
          'cluster5: ConfigMap istio-system/istio meshNetworks unchanged',
        ],
        restarted: [],
        diff: '',
      });
      expect(
        second.logs.filter(l => l.includes('meshNetworks unchanged')),
      ).toHaveLength(2);
      for (const cluster of ['cluster5', 'cluster6'])
        expect(await restartedAt(cluster)).toBe(restarts[cluster]);
    });

    it('in a dry run of a changed member list, shows the diff and writes nothing', async () => {
      const before = await readMeshConfigMap('cluster5');
      const restartedBefore = await restartedAt('cluster5');
      const run = keep(
        await runAction(
          networks,
          { members: ['cluster5'], tailnet, timeoutSeconds },
          { dryRun: true },
        ),
      );
      // istiod reloads meshNetworks itself: no restart unless asked.
      expect(run.output.changes).toEqual([
        'cluster5: ConfigMap istio-system/istio meshNetworks configured',
      ]);
      expect(run.output.restarted).toEqual([]);
      expect(run.output.diff).toContain(
        '--- cluster5: ConfigMap istio-system/istio meshNetworks (current)',
      );
      expect(run.output.diff).toContain('-   network6:');
      expect(run.output.diff).toContain(
        `-       - address: ${addresses.cluster6}`,
      );
      const after = await readMeshConfigMap('cluster5');
      expect(after.metadata?.resourceVersion).toBe(
        before.metadata?.resourceVersion,
      );
      expect(await restartedAt('cluster5')).toBe(restartedBefore);
    });

    it('keeps a network written by hand (a VM network) and removes only what Tailmesh wrote', async () => {
      const vm = {
        endpoints: [{ fromCidr: '192.168.10.0/24' }],
        gateways: [{ address: 'vm-gateway.corp.example', port: 15443 }],
      };
      // How a platform team adds one: through the release values, as the chart documents.
      await helm('cluster5', [
        'upgrade', 'istiod', chart('istiod'), '-n', ns, '--reuse-values',
        '--set-json', `global.meshNetworks.vm-net=${JSON.stringify(vm)}`,
      ]);
      const run = keep(
        await runAction(networks, { members: ['cluster5', 'cluster6'], tailnet, timeoutSeconds }),
      );
      expect(run.logs.join('\n')).toContain(
        'cluster5: keeping network vm-net of ConfigMap istio-system/istio meshNetworks as it is: Tailmesh did not write it',
      );
      expect(run.output.changes).toContain('cluster5: ConfigMap istio-system/istio meshNetworks unchanged');
      expect(parse((await readMeshConfigMap('cluster5')).data!.meshNetworks).networks['vm-net']).toEqual(vm);

      // Without cluster6 (a dry run of it leaving): network6 goes, vm-net stays.
      const dry = keep(
        await runAction(networks, { members: ['cluster5'], tailnet, timeoutSeconds }, { dryRun: true }),
      );
      expect(dry.output.diff).toContain('-   network6:');
      expect(dry.output.diff).toContain('    vm-net:');
      expect(dry.output.diff).not.toContain('-   vm-net:');
    });
  });
});
