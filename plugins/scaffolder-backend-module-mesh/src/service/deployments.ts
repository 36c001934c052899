import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
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
