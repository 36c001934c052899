import { CoreV1Api } from '@kubernetes/client-node';
import {
  ISTIO_MESH_CONFIGMAP,
  ISTIO_MESH_NETWORKS_KEY,
  ISTIO_MULTI_CLUSTER_VALUE,
  ISTIO_NAMESPACE,
  LABEL_ISTIO_MULTI_CLUSTER,
  LABEL_MESH_ID,
  parseMeshNetworks,
  remoteSecretName,
} from '@tailmesh/plugin-mesh-common';
import { TailscaleClient } from '@tailmesh/plugin-mesh-node';
import request from 'supertest';
import { parse } from 'yaml';
import {
  ProductBackend,
  TaskResult,
  joinValues as joinValuesFor,
  startProductBackend,
  template,
} from '../support/productBackend';
import { testbedConfig } from '../support/meshConfig';
import {
  kubeConfig,
  setTailnetHttps,
  releaseClusters,
  testbed,
} from '../support/testbed';

// The templates run by the real scaffolder engine (plugin-scaffolder-backend in a test backend
// with the mesh module), on clusters 10-12, which only this file uses.
const clusters = ['cluster10', 'cluster11', 'cluster12'];

let backend: ProductBackend;

beforeAll(async () => {
  backend = await startProductBackend(clusters);
});

afterAll(async () => {
  await backend?.stop();
  await releaseClusters(clusters);
}, 180_000);

const networkOf = (c: string) =>
  testbed().clusters.find(x => x.name === c)!.network;
const joinValues = (cluster: string) =>
  joinValuesFor(cluster, 'templates-mesh');
const tasks: TaskResult[] = [];
const runTemplate = async (name: string, values: Record<string, unknown>) => {
  const task = await backend.runTemplate(name, values);
  tasks.push(task);
  return task;
};

/** Every step ran, the last one, mesh:verify, judging by what the real istiods report. */
function expectJoined(task: TaskResult) {
  if (task.status !== 'completed')
    throw new Error(`task ${task.status}:\n${task.log.slice(-30).join('\n')}`);
}

async function memberState(cluster: string) {
  const core = kubeConfig(cluster).makeApiClient(CoreV1Api);
  const ns = await core.readNamespace({ name: ISTIO_NAMESPACE });
  const secrets = await core.listNamespacedSecret({
    namespace: ISTIO_NAMESPACE,
    labelSelector: `${LABEL_ISTIO_MULTI_CLUSTER}=${ISTIO_MULTI_CLUSTER_VALUE}`,
  });
  const mesh = await core.readNamespacedConfigMap({
    name: ISTIO_MESH_CONFIGMAP,
    namespace: ISTIO_NAMESPACE,
  });
  return {
    member: ns.metadata?.labels?.[LABEL_MESH_ID] !== undefined,
    remoteSecrets: secrets.items.map(s => s.metadata!.name!).sort(),
    networks: Object.keys(
      parseMeshNetworks(parse(mesh.data![ISTIO_MESH_NETWORKS_KEY])).networks,
    ).sort(),
  };
}

/** Every cluster is a member holding a remote secret for each other one and every network. */
async function expectFullMesh() {
  for (const c of clusters) {
    const state = await memberState(c);
    expect(state.member).toBe(true);
    expect(state.remoteSecrets).toEqual(
      clusters
        .filter(o => o !== c)
        .map(remoteSecretName)
        .sort(),
    );
    expect(state.networks).toEqual(clusters.map(networkOf).sort());
  }
}

describe('the templates, run by the real scaffolder engine', () => {
  it('lists every change of a join in a dry run without writing any', async () => {
    const res = await request(backend.server)
      .post('/api/scaffolder/v2/dry-run')
      .set('authorization', backend.auth())
      .send({
        template: template('join-cluster-to-mesh'),
        values: joinValues('cluster10'),
        directoryContents: [],
      });
    if (res.status !== 200)
      throw new Error(
        `dry run failed: ${JSON.stringify(res.body).slice(0, 2000)}`,
      );
    const log = (res.body.log as Array<{ body: { message?: string } }>)
      .map(l => l.body.message ?? '')
      .join('\n');
    expect(log).toMatch(
      /cluster10: helm release tailscale\/tailscale-operator would be installed/,
    );
    expect(log).toMatch(
      /cluster10: helm release istio-system\/istiod would be installed/,
    );
    // What earlier steps would create is reported as created, not failed on.
    expect(log).toMatch(
      /cluster10: DNSConfig ts-dns created \(dry run; not validated by the API server: kind DNSConfig .* is not served yet, made by an earlier step\)/,
    );
    expect(log).toMatch(
      /cluster10: Gateway istio-system\/cross-network-gateway created \(dry run; not validated/,
    );
    expect(log).toMatch(
      /cluster10: ConfigMap istio-system\/istio meshNetworks would be configured once cluster10 has its network and gateway/,
    );
    expect(log).toMatch(/would fail: cluster10 is not a mesh member/);
    const core = kubeConfig('cluster10').makeApiClient(CoreV1Api);
    await expect(
      core.readNamespace({ name: ISTIO_NAMESPACE }),
    ).rejects.toMatchObject({ code: 404 });
    await expect(
      core.readNamespace({ name: 'tailscale' }),
    ).rejects.toMatchObject({ code: 404 });
  });

  // Three whole joins, each ending in mesh:verify by the real istiods: more than the default
  // test timeout when the machine is busy.
  it('joins three clusters in turn, each wired to every earlier member', async () => {
    for (const cluster of clusters)
      await expectJoined(
        await runTemplate('join-cluster-to-mesh', joinValues(cluster)),
      );
    await expectFullMesh();
  }, 420_000);

  it('lets a member leave cleanly, then join again', async () => {
    const left = await runTemplate('leave-mesh', {
      cluster: 'cluster11',
      tailnet: testbed().tailnet,
    });
    await expectJoined(left);
    const gone = await memberState('cluster11');
    expect(gone.member).toBe(false);
    expect(gone.remoteSecrets).toEqual([]);
    for (const c of ['cluster10', 'cluster12']) {
      const state = await memberState(c);
      expect(state.remoteSecrets).toEqual([
        remoteSecretName(c === 'cluster10' ? 'cluster12' : 'cluster10'),
      ]);
      expect(state.networks).toEqual(
        ['cluster10', 'cluster12'].map(networkOf).sort(),
      );
    }

    await expectJoined(
      await runTemplate('join-cluster-to-mesh', joinValues('cluster11')),
    );
    await expectFullMesh();
  });

  it('completes every task, mesh:verify included', () => {
    expect(tasks.length).toBeGreaterThan(0);
    expect(tasks.map(t => t.status)).toEqual(tasks.map(() => 'completed'));
  });

  /** What a join could have written first: the operator release and the policy file. */
  async function writableState(cluster: string) {
    const core = kubeConfig(cluster).makeApiClient(CoreV1Api);
    const secrets = await core.listNamespacedSecret({ namespace: 'tailscale' });
    const ns = await core.readNamespace({ name: ISTIO_NAMESPACE });
    return {
      releases: secrets.items
        .filter(x => x.type === 'helm.sh/release.v1')
        .map(x => x.metadata!.name)
        .sort(),
      labels: ns.metadata?.labels,
      policy: (
        await TailscaleClient.fromConfig(testbedConfig(clusters)).getPolicy()
      ).etag,
    };
  }

  it("refuses a join on another member's network at its first step, before any write", async () => {
    const before = await writableState('cluster12');
    const task = await backend.runTemplate('join-cluster-to-mesh', {
      ...joinValues('cluster12'),
      network: networkOf('cluster10'),
    });
    expect(task.status).toBe('failed');
    expect(task.steps.preconditions).toBe('failed');
    expect(task.steps.operator).toBe('skipped');
    expect(task.log.join('\n')).toContain(
      `network "${networkOf('cluster10')}" is already cluster10's`,
    );
    expect(await writableState('cluster12')).toEqual(before);
  });

  it('refuses a join while tailnet HTTPS is off, before any write', async () => {
    const before = await writableState('cluster12');
    await setTailnetHttps(false);
    try {
      const task = await backend.runTemplate(
        'join-cluster-to-mesh',
        joinValues('cluster12'),
      );
      expect(task.status).toBe('failed');
      expect(task.steps.preconditions).toBe('failed');
      expect(task.log.join('\n')).toContain('Tailnet HTTPS is off');
    } finally {
      await setTailnetHttps(true);
    }
    expect(await writableState('cluster12')).toEqual(before);
  });
});
