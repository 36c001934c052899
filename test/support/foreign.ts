import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import {
  ISTIO_NAMESPACE,
  remoteSecretName,
} from '@tailmesh/plugin-mesh-common';
import { chart, helm, kubeConfig } from './testbed';

// What a platform team already runs in a cluster before Tailmesh comes: made the way they make
// it (helm by hand, istioctl, an edited Corefile), never with Tailmesh's labels.

/** Values of the team's own on istiod, which a plain `helm upgrade -f` would drop. */
export const TEAM_ISTIOD_VALUES = { TEAM_TUNING: 'kept', cpu: '750m' } as const;

/** `istio-base` and `istiod` installed with helm by hand, with {@link TEAM_ISTIOD_VALUES}. */
export async function installIstioByHand(cluster: string): Promise<void> {
  await helm(cluster, [
    'install',
    'istio-base',
    chart('istio-base'),
    '-n',
    ISTIO_NAMESPACE,
    '--create-namespace',
  ]);
  await helm(cluster, [
    'install',
    'istiod',
    chart('istiod'),
    '-n',
    ISTIO_NAMESPACE,
    '--set',
    `pilot.env.TEAM_TUNING=${TEAM_ISTIOD_VALUES.TEAM_TUNING}`,
    '--set',
    `pilot.resources.requests.cpu=${TEAM_ISTIOD_VALUES.cpu}`,
  ]);
}

/**
 * A remote secret for `peer` in `cluster`, as istioctl makes one: applied with kubectl, which
 * copies the whole object, kubeconfig and token included, into its last-applied annotation.
 */
export async function createRemoteSecretByHand(
  cluster: string,
  peer: string,
  token: string,
): Promise<void> {
  const kubeconfig = `apiVersion: v1\nkind: Config\nusers:\n- name: ${peer}\n  user:\n    token: ${token}\n`;
  await kubeConfig(cluster)
    .makeApiClient(CoreV1Api)
    .createNamespacedSecret({
      namespace: ISTIO_NAMESPACE,
      body: {
        metadata: {
          name: remoteSecretName(peer),
          namespace: ISTIO_NAMESPACE,
          labels: { 'istio/multiCluster': 'true' },
          annotations: {
            'networking.istio.io/cluster': peer,
            'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({
              stringData: { [peer]: kubeconfig },
            }),
          },
        },
        stringData: { [peer]: kubeconfig },
      },
    });
}

/** The cluster's Corefile (the `coredns` ConfigMap in kube-system). */
export async function readCorefile(cluster: string): Promise<string> {
  const cm = await kubeConfig(cluster)
    .makeApiClient(CoreV1Api)
    .readNamespacedConfigMap({ name: 'coredns', namespace: 'kube-system' });
  return cm.data!.Corefile;
}

/** Appends a server block of the team's own to the cluster's Corefile. */
export async function addCorefileBlockByHand(
  cluster: string,
  block: string,
): Promise<void> {
  const before = await readCorefile(cluster);
  await kubeConfig(cluster)
    .makeApiClient(CoreV1Api)
    .patchNamespacedConfigMap(
      {
        name: 'coredns',
        namespace: 'kube-system',
        body: { data: { Corefile: `${before.trimEnd()}\n${block}` } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
}
