import {
  AppsV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import {
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
  LABEL_ISTIO_NETWORK,
  LABEL_MESH_ID,
} from '@tailmesh/plugin-mesh-common';
import { eventually } from './eventually';
import { kubeConfig } from './testbed';

/**
 * A test bed cluster made a mesh member (and not) by the objects the backend reads, without the
 * Join template: istio-system's network and mesh labels and an istiod Deployment, scaled to zero
 * (not ready: the audit's `istiod-not-ready`). For the backend's tests of what it records; each
 * undoes what it did with `restore`.
 */
export function objectMembership(
  cluster: string,
  labels: { network: string; meshId: string },
) {
  const core = () => kubeConfig(cluster).makeApiClient(CoreV1Api);
  const apps = () => kubeConfig(cluster).makeApiClient(AppsV1Api);
  let createdNamespace = false;

  async function setMeshLabels(present: boolean) {
    const value = present
      ? {
          [LABEL_ISTIO_NETWORK]: labels.network,
          [LABEL_MESH_ID]: labels.meshId,
        }
      : { [LABEL_ISTIO_NETWORK]: null, [LABEL_MESH_ID]: null };
    await core().patchNamespace(
      { name: ISTIO_NAMESPACE, body: { metadata: { labels: value } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  async function removeIstiod() {
    await apps()
      .deleteNamespacedDeployment({
        name: ISTIOD_DEPLOYMENT,
        namespace: ISTIO_NAMESPACE,
      })
      .catch(e => {
        if ((e as { code?: number }).code !== 404) throw e;
      });
  }

  return {
    setMeshLabels,
    removeIstiod,
    /** Labels istio-system (made if missing) and adds an istiod Deployment with no replica. */
    async join() {
      const existing = (await core().listNamespace()).items.some(
        n => n.metadata?.name === ISTIO_NAMESPACE,
      );
      if (!existing) {
        await core().createNamespace({
          body: { metadata: { name: ISTIO_NAMESPACE } },
        });
        createdNamespace = true;
      }
      await setMeshLabels(true);
      // Membership needs an istiod Deployment, not a running one: scaled to zero it costs no
      // pod and is exactly what the audit calls not ready.
      const match = { app: 'istiod' };
      await apps().createNamespacedDeployment({
        namespace: ISTIO_NAMESPACE,
        body: {
          metadata: { name: ISTIOD_DEPLOYMENT },
          spec: {
            replicas: 0,
            selector: { matchLabels: match },
            template: {
              metadata: { labels: match },
              spec: {
                containers: [
                  { name: 'discovery', image: 'docker.io/istio/pilot:1.28.0' },
                ],
              },
            },
          },
        },
      });
    },
    /** Undoes `join`: the Deployment, and the namespace if `join` made it, else the labels. */
    async restore() {
      await removeIstiod().catch(() => undefined);
      if (createdNamespace) {
        await core()
          .deleteNamespace({ name: ISTIO_NAMESPACE })
          .catch(() => undefined);
        await eventually(`istio-system of ${cluster} to be gone`, async () =>
          (await core().listNamespace()).items.some(
            n => n.metadata?.name === ISTIO_NAMESPACE,
          )
            ? undefined
            : true,
        );
      } else {
        await setMeshLabels(false).catch(() => undefined);
      }
    },
  };
}
