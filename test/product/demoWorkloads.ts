import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  V1Pod,
  setHeaderOptions,
} from '@kubernetes/client-node';

/** The demo's own field manager: its objects are the user's workloads, not Tailmesh's. */
const FIELD_MANAGER = 'tailmesh-demo';

export interface DemoService {
  namespace: string;
  name: string;
  image: string;
  containerPort: number;
  servicePort: number;
  /** Argument list per cluster, so each cluster's copy answers with its own name. */
  args?: (cluster: string) => string[];
  clusters: string[];
}

/**
 * The example catalog's services (examples/entities.yaml) and where they run: the recipe's `echo`
 * in cluster1 and cluster2, Istio's helloworld sample in cluster2 only. Their pods are kwok's.
 */
export const demoServices: DemoService[] = [
  {
    namespace: 'default',
    name: 'echo',
    image: 'hashicorp/http-echo',
    containerPort: 5678,
    servicePort: 80,
    args: cluster => [`-text=${cluster}`],
    clusters: ['cluster1', 'cluster2'],
  },
  {
    namespace: 'sample',
    name: 'helloworld',
    image: 'docker.io/istio/examples-helloworld-v1',
    containerPort: 5000,
    servicePort: 5000,
    clusters: ['cluster2'],
  },
];

/** Namespace, Deployment (two replicas, one per zone's node) and Service of one demo service. */
export function demoManifests(
  service: DemoService,
  cluster: string,
): KubernetesObject[] {
  const labels = { app: service.name };
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      // Sidecar injection on, as the recipe labels `default`: istiod sends traffic across networks
      // only to endpoints whose pods run a sidecar (mTLS), so uninjected pods stay local-only.
      metadata: {
        name: service.namespace,
        labels: { 'istio-injection': 'enabled' },
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: service.name, namespace: service.namespace, labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: service.name,
                image: service.image,
                args: service.args?.(cluster),
                ports: [{ containerPort: service.containerPort }],
              },
            ],
          },
        },
      },
    } as KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: service.name, namespace: service.namespace, labels },
      spec: {
        selector: labels,
        ports: [
          {
            name: 'http',
            port: service.servicePort,
            targetPort: service.containerPort,
          },
        ],
      },
    } as KubernetesObject,
  ];
}

/**
 * Applies every demo service to its clusters by server-side apply: a re-run changes nothing.
 * `kubeConfigOf` returns the admin kubeconfig of a cluster; `placeOn` maps the demo's cluster
 * names (cluster1, cluster2) to the clusters to use instead.
 */
export async function deployDemoServices(
  kubeConfigOf: (cluster: string) => KubeConfig,
  log: (line: string) => void,
  placeOn: (demoCluster: string) => string = c => c,
): Promise<void> {
  for (const service of demoServices) {
    for (const cluster of service.clusters.map(placeOn)) {
      const api = KubernetesObjectApi.makeApiClient(kubeConfigOf(cluster));
      for (const object of demoManifests(service, cluster)) {
        await api.patch(
          object,
          undefined,
          undefined,
          FIELD_MANAGER,
          true,
          PatchStrategy.ServerSideApply,
        );
      }
      log(`${cluster}: ${service.namespace}/${service.name} deployed`);
    }
  }
}

/**
 * The demo's pods are made before the demo joins install istiod, so they run without a sidecar,
 * and istiod sends traffic across networks only to pods with one. As a user does after installing
 * Istio into a labelled namespace (https://istio.io/latest/docs/setup/additional-setup/sidecar-injection/:
 * "restart the pods"), this restarts each demo Deployment in `members` that has a pod without
 * `istio-proxy` (what `kubectl rollout restart` writes) and waits until every pod has one and is
 * ready. A re-run with injected pods changes nothing.
 */
export async function injectDemoSidecars(
  kubeConfigOf: (cluster: string) => KubeConfig,
  members: string[],
  log: (line: string) => void,
  timeoutMs = 120_000,
): Promise<void> {
  const injected = (pod: V1Pod) =>
    [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].some(
      c => c.name === 'istio-proxy',
    );
  for (const service of demoServices) {
    for (const cluster of service.clusters.filter(c => members.includes(c))) {
      const kc = kubeConfigOf(cluster);
      const core = kc.makeApiClient(CoreV1Api);
      const apps = kc.makeApiClient(AppsV1Api);
      const { namespace, name } = service;
      const pods = async () =>
        (await core.listNamespacedPod({ namespace, labelSelector: `app=${name}` })).items.filter(
          p => !p.metadata?.deletionTimestamp,
        );
      if ((await pods()).every(injected)) continue;
      await apps.patchNamespacedDeployment(
        {
          name,
          namespace,
          fieldManager: FIELD_MANAGER,
          body: {
            spec: {
              template: {
                metadata: {
                  annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() },
                },
              },
            },
          },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const now = await pods();
        const ready = now.filter(
          p => injected(p) && p.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True'),
        );
        if (now.length > 0 && ready.length === now.length) break;
        if (Date.now() > deadline)
          throw new Error(`${cluster}: ${namespace}/${name} pods did not all get a ready sidecar in ${timeoutMs / 1000} s`);
        await new Promise(r => setTimeout(r, 500));
      }
      log(`${cluster}: ${namespace}/${name} restarted with sidecars (istiod was installed after its pods)`);
    }
  }
}
