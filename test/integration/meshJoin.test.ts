import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { JsonObject } from '@backstage/types';
import {
  CACERTS_KEYS,
  CACERTS_SECRET,
  ISTIO_MESH_CONFIGMAP,
  ISTIO_MESH_NETWORKS_KEY,
  ISTIO_NAMESPACE,
  parseMeshNetworks,
  remoteSecretName,
} from '@tailmesh/plugin-mesh-common';
import { TailscaleClient } from '@tailmesh/plugin-mesh-node';
import {
  createMeshActionDeps,
  createMeshActions,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import { TemplateAction } from '@backstage/plugin-scaffolder-node';
import { parse } from 'yaml';
import { ActionRun, expectNoSecrets, runAction } from '../support/actions';
import { testbedConfig, testbedSecrets } from '../support/meshConfig';
import { kubeConfig, releaseClusters, testbed } from '../support/testbed';

// Joins cluster1, cluster2 and cluster3 one by one into one mesh with all ten actions, in the
// order of the "Join cluster to mesh" template, the way a platform team would run it.
const MESH_ID = 'tailmesh-e2e';
const config = testbedConfig();
const actions = new Map(
  createMeshActions(createMeshActionDeps(config)).map(a => [
    a.id,
    a as TemplateAction<any, any, any>,
  ]),
);
const runs: ActionRun[] = [];
const tailnet = () => testbed().tailnet;

async function step(
  id: string,
  input: JsonObject,
  opts: Parameters<typeof runAction>[2] = {},
) {
  const action = actions.get(id);
  if (!action) throw new Error(`action ${id} is not registered`);
  const run = await runAction(action, input, opts);
  runs.push(run);
  return run;
}

/** The mesh:verify runs, whose verdict (istiod's) is asserted on its own. */
const verifyRuns = new WeakSet<ActionRun>();

/** One join: the new cluster is wired to every existing member, both ways. */
async function join(cluster: string, existing: string[], network: string) {
  const results: ActionRun[] = [];
  const r = async (id: string, input: JsonObject) => {
    // mesh:verify judges by what istiod reports; its verdict is asserted on its own (below), so
    // a join that fails only there still leaves the mesh wired for the other checks.
    const run = await step(id, input, { settled: id === 'mesh:verify' });
    if (id === 'mesh:verify') verifyRuns.add(run);
    results.push(run);
    return run;
  };
  await r('mesh:check-join', { cluster, network });
  await r('mesh:tailscale:install-operator', { cluster, timeoutSeconds: 120 });
  await r('mesh:tailscale:grant-access', {});
  await r('mesh:tailscale:configure-dns', {
    cluster,
    tailnet: tailnet(),
    timeoutSeconds: 120,
  });
  if (existing.length) {
    await r('mesh:tailscale:create-egress', {
      cluster,
      peers: existing,
      tailnet: tailnet(),
    });
    for (const peer of existing) {
      await r('mesh:tailscale:create-egress', {
        cluster: peer,
        peers: [cluster],
        tailnet: tailnet(),
      });
    }
  }
  await r('mesh:ca:issue-intermediate', {
    cluster,
    createRootIfMissing: existing.length === 0,
  });
  await r('mesh:istio:install', {
    cluster,
    meshId: MESH_ID,
    network,
    timeoutSeconds: 120,
  });
  if (existing.length) {
    await r('mesh:istio:create-remote-secrets', {
      cluster,
      peers: existing,
      tailnet: tailnet(),
    });
  }
  await r('mesh:istio:deploy-eastwest-gateway', {
    cluster,
    network,
    tailnet: tailnet(),
    timeoutSeconds: 120,
  });
  const members = [...existing, cluster];
  await r('mesh:istio:configure-networks', {
    members,
    tailnet: tailnet(),
    timeoutSeconds: 120,
  });
  await r('mesh:verify', { members, tailnet: tailnet() });
  return results;
}

const clusters = ['cluster1', 'cluster2', 'cluster3'];
const networkOf = (c: string) =>
  testbed().clusters.find(x => x.name === c)!.network;

/** The first time: each cluster joins the members that joined before it. */
async function joinOneByOne() {
  const all: ActionRun[] = [];
  for (let i = 0; i < clusters.length; i++) {
    all.push(
      ...(await join(
        clusters[i],
        clusters.slice(0, i),
        networkOf(clusters[i]),
      )),
    );
  }
  return all;
}

/** Re-running the join of every cluster against the mesh as it is now (all other members). */
async function rejoinEach() {
  const all: ActionRun[] = [];
  for (const c of clusters) {
    all.push(
      ...(await join(
        c,
        clusters.filter(o => o !== c),
        networkOf(c),
      )),
    );
  }
  return all;
}

afterAll(() => releaseClusters(clusters), 180_000);

describe('joining three clusters one by one with every action', () => {
  it('has the ten recipe actions registered (beside the membership, precondition and removal ones)', () => {
    expect([...actions.keys()]).toEqual(
      expect.arrayContaining([
        'mesh:ca:issue-intermediate',
        'mesh:istio:configure-networks',
        'mesh:istio:create-remote-secrets',
        'mesh:istio:deploy-eastwest-gateway',
        'mesh:istio:install',
        'mesh:tailscale:configure-dns',
        'mesh:tailscale:create-egress',
        'mesh:tailscale:grant-access',
        'mesh:tailscale:install-operator',
        'mesh:verify',
      ]),
    );
  });

  let first: ActionRun[] = [];

  // Three whole joins, each with helm installs and waits and mesh:verify by the real istiods:
  // 137 s with this file alone on 2 cores, more than the default test timeout beside other work.

  it('builds the mesh with the real objects in every cluster', async () => {
    first = await joinOneByOne();
    expect(first.filter(r => r.error && !verifyRuns.has(r))).toEqual([]);

    const tailnetName = tailnet();
    const roots = new Set<string>();
    for (const c of clusters) {
      const core = kubeConfig(c).makeApiClient(CoreV1Api);
      const peers = clusters.filter(p => p !== c);
      for (const peer of peers) {
        const secret = await core.readNamespacedSecret({
          name: remoteSecretName(peer),
          namespace: ISTIO_NAMESPACE,
        });
        const kubeconfig = parse(
          Buffer.from(secret.data![peer], 'base64').toString('utf8'),
        );
        expect(kubeconfig.clusters[0].cluster.server).toBe(
          `https://${peer}-k8s-operator.${tailnetName}`,
        );
      }
      const mesh = await core.readNamespacedConfigMap({
        name: ISTIO_MESH_CONFIGMAP,
        namespace: ISTIO_NAMESPACE,
      });
      const networks = parseMeshNetworks(
        parse(mesh.data![ISTIO_MESH_NETWORKS_KEY]),
      );
      expect(Object.keys(networks.networks).sort()).toEqual(
        clusters.map(networkOf).sort(),
      );
      const cacerts = await core.readNamespacedSecret({
        name: CACERTS_SECRET,
        namespace: ISTIO_NAMESPACE,
      });
      roots.add(cacerts.data![CACERTS_KEYS.rootCert]);
      const istiod = await kubeConfig(c)
        .makeApiClient(AppsV1Api)
        .readNamespacedDeployment({
          name: 'istiod',
          namespace: ISTIO_NAMESPACE,
        });
      expect(
        istiod.status?.conditions?.find(x => x.type === 'Available')?.status,
      ).toBe('True');
    }
    expect(roots.size).toBe(1);

    // The admin's comments survive in the policy file, next to the grants the mesh needs.
    const policy = await TailscaleClient.fromConfig(config).getPolicy();
    expect(policy.text).toContain('// Prometheus scrapers');
    expect(policy.text).toContain('tailmesh:istio-remote-readers');
  }, 420_000);

  it('and mesh:verify passes: every istiod syncs every peer', () => {
    expect(
      first.filter(r => r.output.ok === false).map(r => r.error?.message),
    ).toEqual([]);
    expect(first.at(-1)!.output.ok).toBe(true);
  });

  it("refuses, before anything is written, a join on another member's network", async () => {
    // cluster3 re-joining with cluster1's network: mesh:check-join reads every other member.
    await expect(
      step('mesh:check-join', {
        cluster: 'cluster3',
        network: networkOf('cluster1'),
      }),
    ).rejects.toThrow(
      `network "${networkOf('cluster1')}" is already cluster1's; every member needs a network of its own`,
    );
    await expect(
      step('mesh:check-join', {
        cluster: 'cluster3',
        network: networkOf('cluster3'),
      }),
    ).resolves.toMatchObject({ output: { warnings: [] } });
  });

  it('changes nothing on a second full run, the policy file included', async () => {
    const policyBefore = await TailscaleClient.fromConfig(config).getPolicy();
    const second = await rejoinEach();
    const changed = second.filter(r => r.output.changed === true);
    expect(changed.map(r => r.output.changes)).toEqual([]);
    const policyAfter = await TailscaleClient.fromConfig(config).getPolicy();
    expect(policyAfter.etag).toBe(policyBefore.etag);
  }, 420_000);

  it('converges when a join is killed midway and run again', async () => {
    // Break cluster3's membership the way a killed task leaves it: the gateway and the
    // remote secrets of its join are gone, then the join is aborted during its first wait.
    const core3 = kubeConfig('cluster3').makeApiClient(CoreV1Api);
    for (const peer of ['cluster1', 'cluster2']) {
      await core3.deleteNamespacedSecret({
        name: remoteSecretName(peer),
        namespace: ISTIO_NAMESPACE,
      });
    }
    const abort = new AbortController();
    const killed = step(
      'mesh:tailscale:install-operator',
      { cluster: 'cluster3', timeoutSeconds: 120 },
      { signal: abort.signal },
    );
    abort.abort();
    await expect(killed).rejects.toThrow();
    await expect(
      step('mesh:verify', { members: clusters, tailnet: tailnet() }),
    ).rejects.toThrow(/remote secret/);

    const rerun = await join(
      'cluster3',
      ['cluster1', 'cluster2'],
      networkOf('cluster3'),
    );
    // Converged: mesh:verify finds nothing, istiod's own view included.
    const verify = rerun.at(-1)!;
    expect(verify.output.problems ?? []).toEqual([]);
    expect(verify.output.ok).toBe(true);
    for (const peer of ['cluster1', 'cluster2']) {
      await expect(
        core3.readNamespacedSecret({
          name: remoteSecretName(peer),
          namespace: ISTIO_NAMESPACE,
        }),
      ).resolves.toBeDefined();
    }
  });

  it('never shows a secret in any log or output of those runs', async () => {
    const caDir = config.getString('mesh.ca.store.directory');
    const rootKey = fs.readFileSync(path.join(caDir, 'root-key.pem'), 'utf8');
    const core = kubeConfig('cluster1').makeApiClient(CoreV1Api);
    const cacerts = await core.readNamespacedSecret({
      name: CACERTS_SECRET,
      namespace: ISTIO_NAMESPACE,
    });
    const intermediateKey = Buffer.from(
      cacerts.data![CACERTS_KEYS.caKey],
      'base64',
    ).toString('utf8');
    const pemBody = (pem: string) =>
      pem
        .split('\n')
        .filter(l => l && !l.startsWith('-----'))
        .join('');
    const texts = runs.flatMap(r => [...r.logs, JSON.stringify(r.output)]);
    expect(texts.length).toBeGreaterThan(50);
    expectNoSecrets(texts, [
      ...testbedSecrets(),
      pemBody(rootKey),
      pemBody(intermediateKey),
    ]);
    // The chain in every cluster verifies against the one root.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chain-'));
    try {
      for (const c of clusters) {
        const s = await kubeConfig(c)
          .makeApiClient(CoreV1Api)
          .readNamespacedSecret({
            name: CACERTS_SECRET,
            namespace: ISTIO_NAMESPACE,
          });
        for (const key of [CACERTS_KEYS.rootCert, CACERTS_KEYS.caCert]) {
          fs.writeFileSync(
            path.join(dir, key),
            Buffer.from(s.data![key], 'base64'),
          );
        }
        const out = execFileSync('openssl', [
          'verify',
          '-CAfile',
          path.join(dir, CACERTS_KEYS.rootCert),
          path.join(dir, CACERTS_KEYS.caCert),
        ]).toString();
        expect(out).toContain(': OK');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
