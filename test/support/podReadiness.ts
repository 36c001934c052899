import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  V1Pod,
  V1PodCondition,
  setHeaderOptions,
} from '@kubernetes/client-node';

// kwok leaves the status of a pod with this annotation (value `custom`) to others (see the test
// bed's kwok flags), so the status written here plays the kubelet's.
const KWOK_CUSTOM_STATUS = 'kwok.x-k8s.io/status';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Marks one pod Ready or not, as its kubelet would after a readiness probe. */
export async function setPodReady(
  kc: KubeConfig,
  pod: V1Pod,
  ready: boolean,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const name = pod.metadata!.name!;
  const namespace = pod.metadata!.namespace!;
  if (!ready) {
    await core.patchNamespacedPod(
      {
        name,
        namespace,
        body: { metadata: { annotations: { [KWOK_CUSTOM_STATUS]: 'custom' } } },
      },
      mergePatch,
    );
  }
  const status = ready ? 'True' : 'False';
  const now = new Date();
  const conditions = (pod.status?.conditions ?? []).map((c): V1PodCondition =>
    c.type === 'Ready' || c.type === 'ContainersReady'
      ? { ...c, status, lastTransitionTime: now }
      : c,
  );
  await core.patchNamespacedPodStatus(
    {
      name,
      namespace,
      body: {
        status: {
          conditions,
          containerStatuses: (pod.status?.containerStatuses ?? []).map(s => ({
            ...s,
            ready,
          })),
        },
      },
    },
    mergePatch,
  );
  if (ready) {
    await core.patchNamespacedPod(
      {
        name,
        namespace,
        body: { metadata: { annotations: { [KWOK_CUSTOM_STATUS]: null } } },
      },
      mergePatch,
    );
  }
}

/** The live pods of a Deployment. */
export async function deploymentPods(
  kc: KubeConfig,
  namespace: string,
  deployment: string,
): Promise<V1Pod[]> {
  const d = await kc
    .makeApiClient(AppsV1Api)
    .readNamespacedDeployment({ name: deployment, namespace });
  const labelSelector = Object.entries(d.spec!.selector.matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const pods = await kc
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace, labelSelector });
  return pods.items.filter(p => !p.metadata?.deletionTimestamp);
}

/** Marks every live pod of a Deployment Ready or not; throws when it has none. */
export async function setDeploymentPodsReady(
  kc: KubeConfig,
  namespace: string,
  deployment: string,
  ready: boolean,
): Promise<void> {
  const live = await deploymentPods(kc, namespace, deployment);
  if (live.length === 0)
    throw new Error(`Deployment ${namespace}/${deployment} has no live pod`);
  for (const pod of live) await setPodReady(kc, pod, ready);
}
