import { V1Secret } from '@kubernetes/client-node';
import {
  ANNOTATION_ISTIO_CLUSTER,
  ISTIO_MULTI_CLUSTER_VALUE,
  ISTIO_NAMESPACE,
  LABEL_ISTIO_MULTI_CLUSTER,
  LABEL_MANAGED_BY,
  MANAGED_BY_TAILMESH,
  operatorApiUrl,
  remoteSecretName,
} from '@tailmesh/plugin-mesh-common';
import { stringify } from 'yaml';

/**
 * The kubeconfig through which another cluster's istiod reads `cluster`, shaped like the one
 * `istioctl create-remote-secret` encodes (istioctl/pkg/multicluster/remote_secret.go
 * createBaseKubeconfig: cluster, context and user all named after the cluster; client-go's
 * encoder writes keys in alphabetical order and an empty `preferences`).
 *
 * The server is the cluster's Tailscale API server proxy. It serves a certificate for its
 * MagicDNS name from a public CA, so no `certificate-authority-data` is embedded. The proxy runs
 * in auth mode: it impersonates the caller's tailnet identity (the `tailscale.com/cap/kubernetes`
 * grant) and ignores the bearer token, which client-go still wants to see, hence `unused`.
 */
export function remoteSecretKubeconfig(
  cluster: string,
  tailnet: string,
): string {
  return stringify({
    apiVersion: 'v1',
    clusters: [
      { cluster: { server: operatorApiUrl(cluster, tailnet) }, name: cluster },
    ],
    contexts: [{ context: { cluster, user: cluster }, name: cluster }],
    'current-context': cluster,
    kind: 'Config',
    preferences: {},
    users: [{ name: cluster, user: { token: 'unused' } }],
  });
}

/**
 * The Istio remote secret giving access to `cluster`, to be applied in every peer: named, labelled
 * and annotated as istiod's secret controller expects, with the kubeconfig under the key
 * `<cluster>`. `data` rather than istioctl's `stringData`: the server stores only `data`, and
 * server-side apply compares what it stores, so a re-apply is recognised as unchanged.
 */
export function remoteSecretFor(cluster: string, tailnet: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: remoteSecretName(cluster),
      namespace: ISTIO_NAMESPACE,
      labels: {
        [LABEL_ISTIO_MULTI_CLUSTER]: ISTIO_MULTI_CLUSTER_VALUE,
        [LABEL_MANAGED_BY]: MANAGED_BY_TAILMESH,
      },
      annotations: { [ANNOTATION_ISTIO_CLUSTER]: cluster },
    },
    data: {
      [cluster]: Buffer.from(remoteSecretKubeconfig(cluster, tailnet)).toString(
        'base64',
      ),
    },
  };
}

/** Every (holder, secret) pair: each side gets the other's remote secret. */
export function remoteSecretPlan(
  cluster: string,
  peers: ReadonlyArray<string>,
  tailnet: string,
): Array<{ holder: string; secret: V1Secret }> {
  return peers.flatMap(peer => [
    { holder: cluster, secret: remoteSecretFor(peer, tailnet) },
    { holder: peer, secret: remoteSecretFor(cluster, tailnet) },
  ]);
}
