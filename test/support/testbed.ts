import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  AppsV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { ISTIO_NAMESPACE } from '@tailmesh/plugin-mesh-common';
import { eventually } from './eventually';
import { binDir, chartsDir } from '../testbed/src/layout';
import { testbedRequest } from '../testbed/src/testbed';
import {
  readState,
  TestbedClusterState,
  TestbedState,
} from '../testbed/src/state';

const run = promisify(execFile);

/** The test bed the Jest global setup started for this run. */
export function testbed(): TestbedState {
  const stateDir = process.env.TAILMESH_TESTBED_STATE_DIR;
  const state = stateDir ? readState(stateDir) : undefined;
  if (!state || state.phase !== 'ready') {
    throw new Error(
      'no running test bed: run integration tests through test/jest.config.js',
    );
  }
  return state;
}

export function cluster(name: string): TestbedClusterState {
  const found = testbed().clusters.find(c => c.name === name);
  if (!found) throw new Error(`test bed has no cluster ${name}`);
  return found;
}

export function kubeConfig(name: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster(name).kubeconfigPath);
  return kc;
}

/**
 * `kubectl rollout restart deployment/istiod -n istio-system`: a new pod, so the test bed starts a
 * fresh istiod that reads its CA and remotes anew.
 */
export async function restartIstiod(name: string): Promise<void> {
  await restartDeployment(name, ISTIO_NAMESPACE, 'istiod');
}

/** `kubectl rollout restart deployment/<name>`: a new pod template, so new pods replace the old. */
export async function restartDeployment(
  cluster: string,
  namespace: string,
  name: string,
): Promise<void> {
  await kubeConfig(cluster)
    .makeApiClient(AppsV1Api)
    .patchNamespacedDeployment(
      {
        name,
        namespace,
        body: {
          spec: {
            template: {
              metadata: {
                annotations: {
                  'kubectl.kubernetes.io/restartedAt': new Date().toISOString(),
                },
              },
            },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
}

/** Scales every Deployment of the given clusters to zero, kube-system's aside. */
async function stopWorkloads(clusters: string[]): Promise<void> {
  await Promise.all(
    clusters.map(async name => {
      const apps = kubeConfig(name).makeApiClient(AppsV1Api);
      const { items } = await apps.listDeploymentForAllNamespaces();
      await Promise.all(
        items
          .filter(
            d =>
              d.metadata?.namespace !== 'kube-system' &&
              (d.spec?.replicas ?? 1) > 0,
          )
          .map(d =>
            apps.patchNamespacedDeploymentScale(
              {
                name: d.metadata!.name!,
                namespace: d.metadata!.namespace!,
                body: { spec: { replicas: 0 } },
              },
              setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
            ),
          ),
      );
    }),
  );
}

/**
 * For the afterAll of the file that owns `clusters`, when no other file uses them
 * (clusterOwners.ts says which file owns which). Scales their Deployments to zero and waits until
 * the test bed has stopped the real processes it ran for their pods (istiod, the gateway and
 * sidecar stand-ins), then parks them: their controller-managers, schedulers and kwok stop, and
 * their apiservers keep answering reads (other files' actions list every configured cluster).
 * The files after it then do not share the two cores with an idle mesh nobody reads any more.
 */
export async function releaseClusters(clusters: string[]): Promise<void> {
  await stopWorkloads(clusters);
  const { stateDir } = testbed();
  const running = async () =>
    (
      await Promise.all(
        (['istiods', 'proxies'] as const).map(command =>
          testbedRequest<
            Array<{ cluster: string; namespace: string; pod: string }>
          >(stateDir, { command }),
        ),
      )
    )
      .flat()
      .filter(p => clusters.includes(p.cluster));
  let last: Awaited<ReturnType<typeof running>> = [];
  await eventually(
    `the test bed to stop the processes of ${clusters.join(', ')} after their Deployments were scaled to zero`,
    async () => {
      last = await running();
      return last.length === 0 ? true : undefined;
    },
    {
      timeoutMs: 90_000,
      describeLast: () =>
        `; still running: ${last.map(p => `${p.cluster} ${p.namespace}/${p.pod}`).join(', ')}`,
    },
  );
  for (const cluster of clusters) {
    await testbedRequest(stateDir, { command: 'park-cluster', cluster });
  }
}

export function tailscaleCredentials(): {
  clientId: string;
  clientSecret: string;
} {
  const file = testbed().tailscaleApi?.credentialsPath;
  if (!file) throw new Error('test bed has no Tailscale API stand-in');
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** The tailnet's HTTPS setting, through the API stand-in (`PATCH /tailnet/-/settings`), as an admin would. */
export async function setTailnetHttps(enabled: boolean): Promise<void> {
  const { url } = testbed().tailscaleApi!;
  const { clientId, clientSecret } = tailscaleCredentials();
  const token = await fetch(`${url}/api/v2/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret,
    }),
  }).then(r => r.json() as Promise<{ access_token: string }>);
  const res = await fetch(`${url}/api/v2/tailnet/-/settings`, {
    method: 'PATCH',
    headers: {
      authorization: `Bearer ${token.access_token}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ httpsEnabled: enabled }),
  });
  if (!res.ok)
    throw new Error(`PATCH settings: ${res.status} ${await res.text()}`);
  // The tailnet model re-reads at once.
  await testbedRequest(testbed().stateDir, { command: 'tailnet-devices' });
}

export const chart = (name: string) => path.join(chartsDir, name);

/** The real helm binary against one test bed cluster. */
export async function helm(
  clusterName: string,
  args: string[],
): Promise<string> {
  const { stdout } = await run(path.join(binDir, 'helm'), args, {
    env: {
      ...process.env,
      KUBECONFIG: cluster(clusterName).kubeconfigPath,
      HELM_CACHE_HOME: path.join(testbed().stateDir, 'helm-cache'),
      HELM_CONFIG_HOME: path.join(testbed().stateDir, 'helm-config'),
    },
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}
