import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  V1Secret,
} from '@kubernetes/client-node';
import { LoggerService } from '@backstage/backend-plugin-api';
import { isNotFound } from './kubeErrors';
import { waitUntil } from './waitUntil';

/** Waits until a Deployment reports Available with all its replicas updated and ready. */
export async function waitForDeploymentAvailable(
  kc: KubeConfig,
  namespace: string,
  name: string,
  opts: {
    cluster: string;
    timeoutSeconds: number;
    logger: LoggerService;
    signal?: AbortSignal;
  },
): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  await waitUntil(
    async () => {
      let d;
      try {
        d = await apps.readNamespacedDeployment({ name, namespace });
      } catch (e) {
        if (isNotFound(e))
          return { done: false, progress: 'Deployment not created yet' };
        throw e;
      }
      const want = d.spec?.replicas ?? 1;
      const ready = d.status?.readyReplicas ?? 0;
      const updated = d.status?.updatedReplicas ?? 0;
      const available = d.status?.conditions?.some(
        c => c.type === 'Available' && c.status === 'True',
      );
      const current =
        (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
      if (available && current && ready >= want && updated >= want)
        return { done: true, value: undefined };
      return {
        done: false,
        progress: `${ready}/${want} ready, ${updated}/${want} updated`,
      };
    },
    {
      what: `Deployment ${namespace}/${name} Available on ${opts.cluster}`,
      ...opts,
    },
  );
  opts.logger.info(
    `${opts.cluster}: Deployment ${namespace}/${name} is Available`,
  );
}

/**
 * Whether a running pod of `selector` started no later than the last write of Secret `secret`:
 * it read the Secret's files before they held what they hold now. istiod reads the plugged-in
 * CA (`cacerts`) once, at start (istio/istio `pilot/pkg/bootstrap/istio_ca.go`
 * createIstioCA), so an istiod that was already running when the cluster's intermediate was
 * written (a hand-installed one that a join adopts) keeps signing with, and handing out, the root
 * it had.
 */
export async function podsOlderThanSecret(
  kc: KubeConfig,
  namespace: string,
  selector: string,
  secret: string,
): Promise<boolean> {
  let s: V1Secret;
  try {
    s = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: secret, namespace });
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
  const writes = [
    s.metadata?.creationTimestamp,
    ...(s.metadata?.managedFields ?? []).map(f => f.time),
  ].flatMap(t => (t ? [new Date(t).getTime()] : []));
  if (!writes.length) return false;
  const lastWrite = Math.max(...writes);
  const pods = await kc
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace, labelSelector: selector });
  return pods.items.some(
    p =>
      !p.metadata?.deletionTimestamp &&
      p.status?.phase === 'Running' &&
      p.status.startTime !== undefined &&
      new Date(p.status.startTime).getTime() <= lastWrite,
  );
}
